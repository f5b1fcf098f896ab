//! `[metrics]`: the Prometheus address, its default (absent), and every validation rule
//! with its line and key.

use rr_config::{Config, ConfigErrors, MetricsConfig};
use std::path::Path;

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse(text, "test.toml", Path::new("/nonexistent-dir"))
}

/// `[router]`: 2 lines.
const ROUTER: &str = "[router]\naddresses = [\"172.20.0.1/32\"]\n";

/// The single error of `ROUTER` + `rest`: (line, key, message).
fn single(rest: &str) -> (Option<usize>, String, String) {
    let errs = match parse(&format!("{ROUTER}{rest}")) {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e,
    };
    assert_eq!(errs.errors.len(), 1, "expected one error, got:\n{errs}");
    let e = &errs.errors[0];
    (e.line, e.key.clone(), e.message.clone())
}

#[test]
fn absent_means_no_metrics_and_listen_is_read() {
    assert_eq!(parse(ROUTER).unwrap().metrics, None);
    for addr in ["127.0.0.1:9324", "[::1]:9324", "0.0.0.0:9324", "[::]:1"] {
        let c = parse(&format!("{ROUTER}[metrics]\nlisten = \"{addr}\"\n")).unwrap();
        assert_eq!(
            c.metrics,
            Some(MetricsConfig {
                listen: addr.parse().unwrap()
            })
        );
    }
}

#[test]
fn metrics_errors_name_line_and_key() {
    let (line, key, m) = single("[metrics]\n");
    assert_eq!((line, key.as_str()), (Some(3), "metrics.listen"));
    assert!(m.contains("missing required key `listen`"), "{m}");

    let (line, key, m) = single("[metrics]\nlisten = \"127.0.0.1:9324\"\nport = 1\n");
    assert_eq!((line, key.as_str()), (Some(5), "metrics.port"));
    assert!(m.contains("unknown key `port`"), "{m}");

    let (line, key, m) = single("[metrics]\n\nlisten = \"127.0.0.1\"\n");
    assert_eq!((line, key.as_str()), (Some(5), "metrics.listen"));
    assert!(m.contains("the port is missing"), "{m}");

    let (_, _, m) = single("[metrics]\nlisten = \"localhost:9324\"\n");
    assert!(m.contains("no host names"), "{m}");
    let (_, _, m) = single("[metrics]\nlisten = \"127.0.0.1:0\"\n");
    assert!(m.contains("port 0 is not a port"), "{m}");
    let (_, _, m) = single("[metrics]\nlisten = \"[ff02::1]:9324\"\n");
    assert!(m.contains("cannot be listened on"), "{m}");
    let (_, key, m) = single("[metrics]\nlisten = 9324\n");
    assert_eq!(key, "metrics.listen");
    assert!(m.contains("expected a string"), "{m}");

    let (line, key, m) = single("[[metrics]]\nlisten = \"127.0.0.1:9324\"\n");
    assert_eq!((line, key.as_str()), (Some(3), "metrics"));
    assert!(m.contains("expected a table"), "{m}");
}

#[test]
fn a_tcp_forward_on_the_same_address_is_refused() {
    let forward =
        "[[forward]]\nname = \"web\"\nlisten = \"0.0.0.0:9324\"\nconnect = \"172.20.1.1:80\"\n";
    let (line, key, m) = single(&format!(
        "{forward}[metrics]\nlisten = \"127.0.0.1:9324\"\n"
    ));
    assert_eq!((line, key.as_str()), (Some(8), "metrics.listen"));
    assert!(
        m.contains("tcp 127.0.0.1:9324 is already taken by forward \"web\""),
        "{m}"
    );
    // A UDP forward on that port is no conflict.
    let udp = forward.replace("[[forward]]\n", "[[forward]]\nprotocol = \"udp\"\n");
    assert!(parse(&format!(
        "{ROUTER}{udp}[metrics]\nlisten = \"127.0.0.1:9324\"\n"
    ))
    .is_ok());
}
