//! `[looking_glass]`: the web page's address, its default (absent), and its validation
//! rules with line and key, including the clash with `[metrics]`.

use rr_config::{Config, ConfigErrors, LookingGlassConfig};
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
fn absent_means_no_looking_glass_and_listen_is_read() {
    assert_eq!(parse(ROUTER).unwrap().looking_glass, None);
    for addr in ["127.0.0.1:8042", "[::1]:8042", "0.0.0.0:80"] {
        let c = parse(&format!("{ROUTER}[looking_glass]\nlisten = \"{addr}\"\n")).unwrap();
        assert_eq!(
            c.looking_glass,
            Some(LookingGlassConfig {
                listen: addr.parse().unwrap()
            })
        );
    }
    // Next to [metrics] on another port.
    let c = parse(&format!(
        "{ROUTER}[metrics]\nlisten = \"127.0.0.1:9324\"\n[looking_glass]\nlisten = \"127.0.0.1:8042\"\n"
    ))
    .unwrap();
    assert!(c.metrics.is_some() && c.looking_glass.is_some());
}

#[test]
fn looking_glass_errors_name_line_and_key() {
    let (line, key, m) = single("[looking_glass]\n");
    assert_eq!((line, key.as_str()), (Some(3), "looking_glass.listen"));
    assert!(m.contains("missing required key `listen`"), "{m}");

    let (line, key, m) = single("[looking_glass]\nlisten = \"127.0.0.1:8042\"\nweb = 1\n");
    assert_eq!((line, key.as_str()), (Some(5), "looking_glass.web"));
    assert!(m.contains("unknown key `web`"), "{m}");

    let (_, _, m) = single("[looking_glass]\nlisten = \"localhost:8042\"\n");
    assert!(m.contains("no host names"), "{m}");
    let (_, _, m) = single("[looking_glass]\nlisten = \"127.0.0.1:0\"\n");
    assert!(m.contains("port 0 is not a port"), "{m}");
    let (_, _, m) = single("[looking_glass]\nlisten = \"255.255.255.255:80\"\n");
    assert!(m.contains("cannot be listened on"), "{m}");
}

#[test]
fn the_metrics_address_or_a_tcp_forward_is_refused() {
    let (line, key, m) = single(
        "[metrics]\nlisten = \"0.0.0.0:9324\"\n[looking_glass]\nlisten = \"127.0.0.1:9324\"\n",
    );
    assert_eq!((line, key.as_str()), (Some(6), "looking_glass.listen"));
    assert!(
        m.contains("tcp 127.0.0.1:9324 is already taken by [metrics]"),
        "{m}"
    );
    let forward =
        "[[forward]]\nname = \"web\"\nlisten = \"[::]:8042\"\nconnect = \"172.20.1.1:80\"\n";
    let (line, key, m) = single(&format!(
        "{forward}[looking_glass]\nlisten = \"[::1]:8042\"\n"
    ));
    assert_eq!((line, key.as_str()), (Some(8), "looking_glass.listen"));
    assert!(m.contains("already taken by forward \"web\""), "{m}");
}
