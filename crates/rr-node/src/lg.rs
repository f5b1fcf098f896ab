//! `[looking_glass]`: a read-only web page about the node, over plain HTTP/1.1 on a host
//! address.
//!
//! What it is: one thread with its own `poll` loop ([`crate::http`]:
//! bounded heads, read and write deadlines, at most
//! [`MAX_CONNS`](crate::http::MAX_CONNS) connections, one answer each) serving four
//! pages, `GET` or `HEAD` only:
//!
//! - `/`: the BGP sessions (`show bgp`) and a form;
//! - `/route?q=ADDR` or `/route?q=PREFIX`: the routes of the longest prefix matching an
//!   address, or of exactly that prefix, with every attribute and the routes not chosen
//!   or filtered (`show routes for ADDR all`);
//! - `/ping?q=ADDR`: [`PINGS`] echo requests from the node's own stack;
//! - `/traceroute?q=ADDR`: at most [`HOPS`] hops from the node's own stack.
//!
//! Every input is one query parameter `q`, at most [`MAX_INPUT`] characters once
//! decoded, that must parse as an IP address (or, for `/route`, a prefix) with std /
//! ipnet; anything else is a 400 page. Everything shown is HTML-escaped ([`esc`]); the
//! pages carry no script and a Content-Security-Policy that allows none. Only questions
//! that read are ever asked (`show bgp`, `show routes`, probes): nothing here changes
//! the router. One probe runs at a time for all clients (on its own thread, so that the
//! other pages stay served); a second one meanwhile gets a 503 page.
//!
//! What it is not: TLS, authentication, rate limiting per client beyond the above (put it
//! on loopback or behind a proxy), a BGP "show route" for whole tables, or an API (the
//! control socket is that).

use crate::control::{ControlMsg, ProbeMode, ProbeRequest};
use crate::http::Answer;
use crate::metrics::query;
use crate::shared::{NodeError, Shared};
use ipnet::IpNet;
use rr_ctl::{BgpSessionStatus, Request, Response, RouteEntry};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// Echo requests of one ping.
pub(crate) const PINGS: u32 = 3;
/// Hops of one traceroute at most.
pub(crate) const HOPS: u8 = 16;
/// The longest query string read (`q=` and its percent-encoded value).
const MAX_QUERY: usize = 256;
/// The longest input once decoded (the longest IPv6 prefix is 49 characters).
pub(crate) const MAX_INPUT: usize = 64;
/// Routes shown for one lookup at most.
const MAX_ROUTES: usize = 256;
/// How long a client waits for a probe's page before it is dropped.
const PROBE_TIME: Duration = Duration::from_secs(40);
/// How long the control thread has between two lines of a probe's answer.
const PROBE_LINE_WAIT: Duration = Duration::from_secs(10);

/// Binds the looking glass listener (non-blocking), at start or for a reload.
pub(crate) fn bind(listen: SocketAddr) -> Result<TcpListener, NodeError> {
    let err = |source| NodeError::LookingGlass { listen, source };
    let l = TcpListener::bind(listen).map_err(err)?;
    l.set_nonblocking(true).map_err(err)?;
    Ok(l)
}

/// Why an input is refused; shown (escaped) on the 400 page.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum InputError {
    #[error("enter an IP address")]
    Missing,
    #[error("the input is too long (at most {MAX_INPUT} characters)")]
    TooLong,
    #[error("the only parameter is q")]
    UnknownParameter,
    #[error("the input is not valid percent-encoded UTF-8")]
    BadEncoding,
    #[error("\"{0}\" is not an IP address")]
    NotAnAddress(String),
    #[error("\"{0}\" is not an IP address or prefix")]
    NotAnAddressOrPrefix(String),
    #[error("{given} has host bits set; the prefix is {canonical}")]
    HostBits { given: IpNet, canonical: IpNet },
    #[error("{0} cannot be probed from here (unspecified, multicast, broadcast or link-local)")]
    NotProbeable(IpAddr),
}

/// What `/route` looks up.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(crate) enum Target {
    Addr(IpAddr),
    Prefix(IpNet),
}

/// A page asked for.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(crate) enum Page {
    Sessions,
    Route(Target),
    Ping(IpAddr),
    Traceroute(IpAddr),
}

/// Why a request gets no page.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not an HTTP/1.x request line.
    Malformed,
    NotFound,
    MethodNotAllowed,
    /// A page with a bad input (the form is shown again with the reason).
    Input(InputError),
}

/// A request line read: the page and whether only the head is wanted (`HEAD`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Asked {
    pub page: Page,
    pub head_only: bool,
}

/// Reads the request line of a complete head.
pub(crate) fn parse_request(head: &[u8]) -> Result<Asked, (Refusal, bool)> {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Ok(line) = std::str::from_utf8(line) else {
        return Err((Refusal::Malformed, false));
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err((Refusal::Malformed, false));
    };
    if !matches!(version, "HTTP/1.0" | "HTTP/1.1") || !target.starts_with('/') {
        return Err((Refusal::Malformed, false));
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Err((Refusal::MethodNotAllowed, false)),
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let page = match path {
        "/" => Ok(Page::Sessions),
        "/route" => input(query).and_then(|q| target_of(&q)).map(Page::Route),
        "/ping" => input(query).and_then(|q| probe_addr(&q)).map(Page::Ping),
        "/traceroute" => input(query)
            .and_then(|q| probe_addr(&q))
            .map(Page::Traceroute),
        _ => return Err((Refusal::NotFound, head_only)),
    };
    page.map(|page| Asked { page, head_only })
        .map_err(|e| (Refusal::Input(e), head_only))
}

/// The decoded value of the one parameter `q` of a query string, trimmed.
pub(crate) fn input(query: &str) -> Result<String, InputError> {
    if query.len() > MAX_QUERY {
        return Err(InputError::TooLong);
    }
    let mut value = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("q", v)) if value.is_none() => value = Some(v),
            _ => return Err(InputError::UnknownParameter),
        }
    }
    let decoded = percent_decode(value.unwrap_or_default())?;
    let q = decoded.trim();
    if q.is_empty() {
        return Err(InputError::Missing);
    }
    if q.chars().count() > MAX_INPUT {
        return Err(InputError::TooLong);
    }
    Ok(q.to_string())
}

/// Form encoding: `+` is a space, `%XX` a byte; the bytes must be UTF-8.
fn percent_decode(v: &str) -> Result<String, InputError> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b.get(i + 1..i + 3).ok_or(InputError::BadEncoding)?;
                let hex = std::str::from_utf8(hex).map_err(|_| InputError::BadEncoding)?;
                let byte = u8::from_str_radix(hex, 16).map_err(|_| InputError::BadEncoding)?;
                out.push(byte);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| InputError::BadEncoding)
}

/// An address or a prefix (without host bits).
pub(crate) fn target_of(q: &str) -> Result<Target, InputError> {
    if q.contains('/') {
        let net: IpNet = q
            .parse()
            .map_err(|_| InputError::NotAnAddressOrPrefix(q.to_string()))?;
        if net.trunc() != net {
            return Err(InputError::HostBits {
                given: net,
                canonical: net.trunc(),
            });
        }
        Ok(Target::Prefix(net))
    } else {
        q.parse()
            .map(Target::Addr)
            .map_err(|_| InputError::NotAnAddressOrPrefix(q.to_string()))
    }
}

/// An address a probe may go to: unicast, and not link-local (which needs a tunnel).
pub(crate) fn probe_addr(q: &str) -> Result<IpAddr, InputError> {
    let addr: IpAddr = q
        .parse()
        .map_err(|_| InputError::NotAnAddress(q.to_string()))?;
    let refused = addr.is_unspecified()
        || addr.is_multicast()
        || match addr {
            IpAddr::V4(a) => a == Ipv4Addr::BROADCAST || a.is_link_local(),
            IpAddr::V6(a) => (a.segments()[0] & 0xffc0) == 0xfe80,
        };
    if refused {
        return Err(InputError::NotProbeable(addr));
    }
    Ok(addr)
}

/// Text made safe for HTML text and quoted attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\0' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// The one probe running, for all clients; cleared when its thread ends.
struct ProbeSlot(Arc<AtomicBool>);

impl Drop for ProbeSlot {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// Serves until shutdown or `stop` (a reload moved or removed it); the connections are
/// [`crate::http`]'s.
pub(crate) fn serve(shared: &Arc<Shared>, listener: TcpListener, stop: &AtomicBool) {
    let busy = Arc::new(AtomicBool::new(false));
    crate::http::serve(
        shared,
        listener,
        stop,
        "looking glass",
        |head| answer(shared, &busy, head),
        || {
            respond(
                431,
                "Request Header Fields Too Large",
                &message_page("Request too large", "The request is too large."),
                false,
            )
        },
    );
}

fn answer(shared: &Arc<Shared>, busy: &Arc<AtomicBool>, head: &[u8]) -> Answer {
    let asked = match parse_request(head) {
        Ok(a) => a,
        Err((refusal, head_only)) => return Answer::Now(refused(&refusal, head_only)),
    };
    let head_only = asked.head_only;
    let unavailable = || {
        respond(
            503,
            "Service Unavailable",
            &message_page("Try again", "The node did not answer in time."),
            head_only,
        )
    };
    match asked.page {
        Page::Sessions => Answer::Now(match query(shared, Request::ShowBgp { name: None }) {
            Some(Response::Bgp {
                sessions,
                fib_v4,
                fib_v6,
            }) => respond(
                200,
                "OK",
                &sessions_page(&sessions, fib_v4, fib_v6),
                head_only,
            ),
            Some(Response::Error { message }) => node_error(&message, head_only),
            _ => unavailable(),
        }),
        Page::Route(target) => Answer::Now(match routes(shared, target) {
            Some(Ok(routes)) => respond(200, "OK", &route_page(target, &routes), head_only),
            Some(Err(message)) => node_error(&message, head_only),
            None => unavailable(),
        }),
        Page::Ping(addr) => probe(
            shared,
            busy,
            addr,
            ProbeMode::Ping { count: PINGS },
            head_only,
        ),
        Page::Traceroute(addr) => probe(
            shared,
            busy,
            addr,
            ProbeMode::Traceroute { max_hops: HOPS },
            head_only,
        ),
    }
}

/// The routes for a lookup: `None` when the node did not answer, `Err` with its error.
/// An address: every route of its longest match; a prefix: that prefix's routes (one
/// question of the table's index, whatever the table's size).
fn routes(shared: &Shared, target: Target) -> Option<Result<Vec<RouteEntry>, String>> {
    let (for_addr, prefix) = match target {
        Target::Addr(a) => (Some(a), None),
        Target::Prefix(net) => (None, Some(net)),
    };
    query(
        shared,
        Request::ShowRoutes {
            for_addr,
            all: true,
            filtered: false,
            prefix,
        },
    )
    .map(|r| match r {
        Response::Routes { routes } => Ok(routes),
        Response::Error { message } => Err(message),
        _ => Err("unexpected answer".to_string()),
    })
}

/// Starts a probe on its own thread, unless one is running.
fn probe(
    shared: &Arc<Shared>,
    busy: &Arc<AtomicBool>,
    addr: IpAddr,
    mode: ProbeMode,
    head_only: bool,
) -> Answer {
    let busy_page = || {
        Answer::Now(respond(
            503,
            "Service Unavailable",
            &message_page(
                "Busy",
                "Another ping or traceroute is running; try again in a few seconds.",
            ),
            head_only,
        ))
    };
    if busy.swap(true, Ordering::SeqCst) {
        return busy_page();
    }
    let slot = ProbeSlot(busy.clone());
    let (tx, rx) = mpsc::channel();
    let s = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("lg-probe".into())
        .stack_size(256 * 1024)
        .spawn(move || {
            let _slot = slot;
            let lines = run_probe(&s, addr, mode);
            let page = match lines {
                Some(lines) => respond(200, "OK", &probe_page(addr, mode, &lines), head_only),
                None => respond(
                    503,
                    "Service Unavailable",
                    &message_page("Try again", "The node did not answer in time."),
                    head_only,
                ),
            };
            let _ = tx.send(page);
        });
    match spawned {
        Ok(_) => Answer::Later(rx, PROBE_TIME),
        // The slot went with the closure and is free again.
        Err(_) => busy_page(),
    }
}

/// A probe's answer lines through the final one; `None` when the node did not take or
/// finish it.
fn run_probe(shared: &Shared, addr: IpAddr, mode: ProbeMode) -> Option<Vec<Response>> {
    let (tx, rx) = mpsc::channel();
    shared
        .control
        .try_send(ControlMsg::Probe(ProbeRequest {
            addr,
            scope: None,
            mode,
            reply: tx,
        }))
        .ok()?;
    let mut lines = Vec::new();
    // The node sends one line per ping or hop and a final one; the bound is a guard.
    while lines.len() <= usize::from(HOPS) + PINGS as usize + 1 {
        let r = rx.recv_timeout(PROBE_LINE_WAIT).ok()?;
        let last = r.is_final();
        lines.push(r);
        if last {
            return Some(lines);
        }
    }
    None
}

/// A whole HTTP answer with the page's security headers.
fn respond(code: u16, reason: &str, html: &str, head_only: bool) -> Vec<u8> {
    let allow = if code == 405 {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\n{allow}Content-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\n\
         Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'\r\n\
         X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\nX-Frame-Options: DENY\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        html.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(html.as_bytes());
    }
    out
}

fn refused(r: &Refusal, head_only: bool) -> Vec<u8> {
    match r {
        Refusal::Malformed => respond(
            400,
            "Bad Request",
            &message_page("Bad request", "Not an HTTP/1.x request."),
            head_only,
        ),
        Refusal::NotFound => respond(
            404,
            "Not Found",
            &message_page("Not found", "There is no such page."),
            head_only,
        ),
        Refusal::MethodNotAllowed => respond(
            405,
            "Method Not Allowed",
            &message_page("Read only", "Only GET and HEAD are served."),
            head_only,
        ),
        Refusal::Input(e) => respond(
            400,
            "Bad Request",
            &message_page("Bad input", &e.to_string()),
            head_only,
        ),
    }
}

fn node_error(message: &str, head_only: bool) -> Vec<u8> {
    respond(
        500,
        "Internal Server Error",
        &message_page("The node refused", message),
        head_only,
    )
}

/// The page frame (title and body are HTML already escaped by the caller).
const FRAME_HEAD: &str = include_str!("lg/head.html");

fn frame(title: &str, body: &str) -> String {
    let mut out = FRAME_HEAD.replace("{title}", &esc(title));
    out.push_str(body);
    out.push_str("</main></body></html>\n");
    out
}

/// A page with a message (escaped here) and the form.
pub(crate) fn message_page(title: &str, message: &str) -> String {
    frame(title, &format!("<p class=\"err\">{}</p>", esc(message)))
}

/// `3d 4h`, `5h 2m`, `4m 3s`, `12s`.
fn ago(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

pub(crate) fn sessions_page(sessions: &[BgpSessionStatus], fib_v4: u64, fib_v6: u64) -> String {
    let mut b = format!(
        "<h2>BGP sessions</h2><p>Forwarding table: {fib_v4} IPv4 and {fib_v6} IPv6 routes.</p>"
    );
    if sessions.is_empty() {
        b.push_str("<p>No BGP sessions are configured.</p>");
        return frame("Sessions", &b);
    }
    b.push_str(
        // State first after the name: on a phone the rest scrolls sideways.
        "<div class=\"t\"><table><tr><th>Session</th><th>State</th><th>Since</th>\
         <th>Neighbor</th><th>AS</th><th>Imported v4/v6</th><th>Filtered</th>\
         <th>Exported</th><th>Last error</th></tr>",
    );
    for s in sessions {
        let cls = if s.state == "Established" {
            "up"
        } else {
            "down"
        };
        let _ = write!(
            b,
            "<tr><td>{}</td><td class=\"{cls}\">{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{} / {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&s.name),
            esc(&s.state),
            ago(s.since_secs),
            esc(&s.neighbor),
            s.remote_asn,
            s.imported_v4,
            s.imported_v6,
            s.filtered,
            s.exported,
            esc(s.last_error.as_deref().unwrap_or("")),
        );
    }
    b.push_str("</table></div>");
    frame("Sessions", &b)
}

pub(crate) fn route_page(target: Target, routes: &[RouteEntry]) -> String {
    let what = match target {
        Target::Addr(a) => a.to_string(),
        Target::Prefix(p) => p.to_string(),
    };
    let mut b = format!("<h2>Routes for {}</h2>", esc(&what));
    if routes.is_empty() {
        b.push_str("<p>No route.</p>");
    }
    for r in routes.iter().take(MAX_ROUTES) {
        let status = if r.filtered {
            format!(
                "filtered ({})",
                r.reason.as_deref().unwrap_or("no reason given")
            )
        } else if r.best {
            "best".to_string()
        } else {
            "not chosen".to_string()
        };
        let source = match &r.peer {
            Some(p) => format!("{} from {p}", r.source),
            None => r.source.clone(),
        };
        let via = match (&r.gateway, r.interface.is_empty()) {
            (Some(g), false) => format!("{g} on {}", r.interface),
            (Some(g), true) => g.clone(),
            (None, false) => format!("on {}", r.interface),
            (None, true) => "unresolved".to_string(),
        };
        let rows: [(&str, Option<String>); 11] = [
            ("Prefix", Some(r.prefix.clone())),
            ("Status", Some(status)),
            ("Source", Some(source)),
            ("Next hop", Some(via)),
            ("ROA", r.roa.clone()),
            ("AS path", r.as_path.clone()),
            ("Origin", r.origin.clone()),
            ("MED", r.med.map(|v| v.to_string())),
            ("Local pref", r.local_pref.map(|v| v.to_string())),
            (
                "Communities",
                (!r.communities.is_empty()).then(|| r.communities.join(" ")),
            ),
            (
                "Large communities",
                (!r.large_communities.is_empty()).then(|| r.large_communities.join(" ")),
            ),
        ];
        let cls = if r.best { "route best" } else { "route" };
        let _ = write!(b, "<section class=\"{cls}\"><dl>");
        for (k, v) in rows {
            if let Some(v) = v {
                let _ = write!(b, "<dt>{k}</dt><dd>{}</dd>", esc(&v));
            }
        }
        b.push_str("</dl></section>");
    }
    if routes.len() > MAX_ROUTES {
        let _ = write!(b, "<p>{} more not shown.</p>", routes.len() - MAX_ROUTES);
    }
    frame(&format!("Route {what}"), &b)
}

fn ms(rtt: Option<f64>) -> String {
    rtt.map_or_else(|| "*".to_string(), |v| format!("{v:.1} ms"))
}

pub(crate) fn probe_page(addr: IpAddr, mode: ProbeMode, lines: &[Response]) -> String {
    let (title, head) = match mode {
        ProbeMode::Ping { .. } => (
            "Ping",
            "<tr><th>Seq</th><th>From</th><th>TTL</th><th>Time</th></tr>",
        ),
        ProbeMode::Traceroute { .. } => (
            "Traceroute",
            "<tr><th>Hop</th><th>From</th><th>Time</th></tr>",
        ),
    };
    let mut b = format!(
        "<h2>{title} {addr}</h2><div class=\"t\"><table>{head}",
        addr = esc(&addr.to_string())
    );
    let mut tail = String::new();
    for l in lines {
        match l {
            Response::PingReply {
                seq,
                from,
                ttl,
                rtt_ms,
                error,
            } => {
                let time = match error {
                    Some(e) => esc(e),
                    None => ms(*rtt_ms),
                };
                let _ = write!(
                    b,
                    "<tr><td>{seq}</td><td>{}</td><td>{}</td><td>{time}</td></tr>",
                    esc(from.as_deref().unwrap_or("*")),
                    ttl.map_or_else(|| "*".to_string(), |t| t.to_string()),
                );
            }
            Response::Hop {
                ttl, from, rtt_ms, ..
            } => {
                let _ = write!(
                    b,
                    "<tr><td>{ttl}</td><td>{}</td><td>{}</td></tr>",
                    esc(from.as_deref().unwrap_or("*")),
                    ms(*rtt_ms),
                );
            }
            Response::PingDone { sent, received } => {
                tail = format!("<p>{sent} sent, {received} received.</p>");
            }
            Response::TracerouteDone { reached } => {
                tail = if *reached {
                    "<p>Destination reached.</p>".to_string()
                } else {
                    format!("<p>Not reached within {HOPS} hops.</p>")
                };
            }
            Response::Error { message } => {
                tail = format!("<p class=\"err\">{}</p>", esc(message));
            }
            _ => {}
        }
    }
    b.push_str("</table></div>");
    b.push_str(&tail);
    frame(&format!("{title} {addr}"), &b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(target: &str) -> Result<Asked, (Refusal, bool)> {
        parse_request(format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
    }

    fn bad_input(target: &str) -> InputError {
        match get(target) {
            Err((Refusal::Input(e), false)) => e,
            other => panic!("{target}: expected an input error, got {other:?}"),
        }
    }

    #[test]
    fn escaping_covers_every_special_character() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(esc("a\0b"), "a\u{fffd}b");
        assert_eq!(esc("AS4242420001 (64511,3) ✓"), "AS4242420001 (64511,3) ✓");
    }

    #[test]
    fn good_inputs_are_read() {
        let page = |t| get(t).map(|a| a.page);
        assert_eq!(page("/"), Ok(Page::Sessions));
        assert_eq!(
            page("/route?q=172.20.1.5"),
            Ok(Page::Route(Target::Addr("172.20.1.5".parse().unwrap())))
        );
        assert_eq!(
            page("/route?q=fd00%3A9%3A%3A%2F48"),
            Ok(Page::Route(Target::Prefix("fd00:9::/48".parse().unwrap())))
        );
        assert_eq!(
            page("/ping?q=+172.20.0.53+"),
            Ok(Page::Ping("172.20.0.53".parse().unwrap()))
        );
        assert_eq!(
            page("/traceroute?q=fd42%3A%3A1"),
            Ok(Page::Traceroute("fd42::1".parse().unwrap()))
        );
        let head = parse_request(b"HEAD /route?q=10.0.0.1 HTTP/1.0\n\n").unwrap();
        assert!(head.head_only);
    }

    #[test]
    fn hostile_inputs_are_refused() {
        assert_eq!(
            bad_input("/route?q=%3Cscript%3Ealert(1)%3C/script%3E"),
            InputError::NotAnAddressOrPrefix("<script>alert(1)</script>".into())
        );
        assert_eq!(
            bad_input("/ping?q=1.2.3.4%00"),
            InputError::NotAnAddress("1.2.3.4\0".into())
        );
        assert_eq!(
            bad_input("/ping?q=1.2.3.4%3B+rm+-rf+%2F"),
            InputError::NotAnAddress("1.2.3.4; rm -rf /".into())
        );
        assert_eq!(
            bad_input("/traceroute?q=example.com"),
            InputError::NotAnAddress("example.com".into())
        );
        assert_eq!(
            bad_input("/route?q=..%2F..%2Fetc%2Fpasswd"),
            InputError::NotAnAddressOrPrefix("../../etc/passwd".into())
        );
        assert_eq!(
            bad_input("/route?q=%EF%BC%91.2.3.4"),
            InputError::NotAnAddressOrPrefix("１.2.3.4".into())
        );
        let long = format!("/route?q={}", "1".repeat(10 * 1024));
        assert_eq!(bad_input(&long), InputError::TooLong);
        assert_eq!(
            bad_input(&format!("/route?q={}", "%20".repeat(20) + &"a".repeat(65))),
            InputError::TooLong
        );
        assert_eq!(bad_input("/route?q=%ff%fe"), InputError::BadEncoding);
        assert_eq!(bad_input("/route?q=%zz"), InputError::BadEncoding);
        assert_eq!(bad_input("/route?q=1.2.3.4%"), InputError::BadEncoding);
        assert_eq!(bad_input("/route?q="), InputError::Missing);
        assert_eq!(bad_input("/ping"), InputError::Missing);
        assert_eq!(
            bad_input("/ping?q=1.1.1.1&q=2.2.2.2"),
            InputError::UnknownParameter
        );
        assert_eq!(
            bad_input("/ping?q=1.1.1.1&count=1000"),
            InputError::UnknownParameter
        );
        assert_eq!(
            bad_input("/route?q=172.20.0.1%2F24"),
            InputError::HostBits {
                given: "172.20.0.1/24".parse().unwrap(),
                canonical: "172.20.0.0/24".parse().unwrap()
            }
        );
        assert_eq!(
            bad_input("/route?q=10.0.0.0%2F33"),
            InputError::NotAnAddressOrPrefix("10.0.0.0/33".into())
        );
        for a in [
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "ff02::1",
            "fe80::1",
            "::",
        ] {
            assert_eq!(
                bad_input(&format!("/ping?q={a}")),
                InputError::NotProbeable(a.parse().unwrap())
            );
        }
        // A prefix is no ping target.
        assert_eq!(
            bad_input("/ping?q=10.0.0.0%2F8"),
            InputError::NotAnAddress("10.0.0.0/8".into())
        );
    }

    #[test]
    fn paths_and_methods_other_than_the_pages_are_refused() {
        assert_eq!(get("/../etc/passwd"), Err((Refusal::NotFound, false)));
        assert_eq!(get("/route/../"), Err((Refusal::NotFound, false)));
        assert_eq!(get("/metrics"), Err((Refusal::NotFound, false)));
        assert_eq!(
            parse_request(b"POST /ping?q=1.1.1.1 HTTP/1.1\r\n\r\n"),
            Err((Refusal::MethodNotAllowed, false))
        );
        assert_eq!(
            parse_request(b"GET /ping?q=<x> HTTP/1.1 extra\r\n\r\n"),
            Err((Refusal::Malformed, false))
        );
        assert_eq!(
            parse_request(b"GET http://x/ HTTP/1.1\r\n\r\n"),
            Err((Refusal::Malformed, false))
        );
        assert_eq!(
            parse_request(b"GET /\xff HTTP/1.1\r\n\r\n"),
            Err((Refusal::Malformed, false))
        );
    }

    #[test]
    fn pages_escape_what_they_show() {
        let page = message_page(
            "Bad input",
            &InputError::NotAnAddress("<img src=x onerror=alert(1)>".into()).to_string(),
        );
        assert!(!page.contains("<img"), "{page}");
        assert!(
            page.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{page}"
        );

        let s = BgpSessionStatus {
            name: "<b>peer</b>".into(),
            neighbor: "fe80::2%peer-a".into(),
            state: "Established".into(),
            last_error: Some("Received: \"<x>\"".into()),
            ..BgpSessionStatus::default()
        };
        let page = sessions_page(&[s], 3, 4);
        assert!(page.contains("&lt;b&gt;peer&lt;/b&gt;"), "{page}");
        assert!(page.contains("Received: &quot;&lt;x&gt;&quot;"), "{page}");
        assert!(!page.contains("<b>"), "{page}");

        let r = RouteEntry {
            prefix: "172.20.1.0/24".into(),
            interface: "t<0>".into(),
            gateway: Some("fe80::2".into()),
            source: "bgp".into(),
            peer: Some("a&b".into()),
            best: true,
            as_path: Some("4242420002 4242420003".into()),
            communities: vec!["(64511,3)".into(), "<c>".into()],
            large_communities: vec!["(4242420001,1,2)".into()],
            ..RouteEntry::default()
        };
        let page = route_page(Target::Addr("172.20.1.5".parse().unwrap()), &[r]);
        assert!(page.contains("<dd>4242420002 4242420003</dd>"), "{page}");
        assert!(page.contains("<dd>(64511,3) &lt;c&gt;</dd>"), "{page}");
        assert!(page.contains("fe80::2 on t&lt;0&gt;"), "{page}");
        assert!(page.contains("bgp from a&amp;b"), "{page}");

        let lines = [
            Response::PingReply {
                seq: 1,
                from: Some("<x>".into()),
                ttl: Some(64),
                rtt_ms: Some(1.25),
                error: None,
            },
            Response::PingDone {
                sent: 3,
                received: 1,
            },
        ];
        let page = probe_page(
            "172.20.0.53".parse().unwrap(),
            ProbeMode::Ping { count: PINGS },
            &lines,
        );
        assert!(
            page.contains("<td>&lt;x&gt;</td><td>64</td><td>1.2 ms</td>"),
            "{page}"
        );
        assert!(page.contains("3 sent, 1 received."), "{page}");
    }

    #[test]
    fn answers_carry_the_security_headers() {
        let out = String::from_utf8(respond(200, "OK", "<p>x</p>", true)).unwrap();
        for h in [
            "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline';",
            "X-Content-Type-Options: nosniff\r\n",
            "Referrer-Policy: no-referrer\r\n",
            "Content-Length: 8\r\n",
        ] {
            assert!(out.contains(h), "{h} missing in {out}");
        }
        assert!(out.ends_with("\r\n\r\n"), "HEAD has no body: {out}");
        let out = String::from_utf8(refused(&Refusal::MethodNotAllowed, false)).unwrap();
        assert!(out.starts_with("HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n"));
    }

    #[test]
    fn durations_read_like_birdc() {
        assert_eq!(ago(12), "12s");
        assert_eq!(ago(243), "4m 3s");
        assert_eq!(ago(5 * 3600 + 120), "5h 2m");
        assert_eq!(ago(3 * 86_400 + 4 * 3600 + 5), "3d 4h");
    }
}
