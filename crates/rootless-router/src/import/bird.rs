//! A DN42-style BIRD 2 config to `[router]`, `[[bgp]]` and `[roa]` sections.
//!
//! What it is: a small tolerant tokenizer for BIRD's syntax (`#` and `/* */` comments,
//! strings, `{}` blocks, `;`-terminated statements; any bytes in, never a panic), a
//! statement tree, and the mapping of what a DN42 node's config (the DN42 wiki's
//! "Bird2" page) says: `define OWNAS/OWNIP/OWNIPv6/OWNNET/OWNNETv6`, `router id`,
//! `template bgp` / `protocol bgp ... from TEMPLATE` (neighbor, interface, AS numbers,
//! passive, timers, channels with their policies, import limits, extended next hop),
//! ROA tables fed by `include` files or an RPKI (RTR) server, and static routes that
//! originate our prefixes. Filters that call the wiki's functions map to `"dn42"`.
//! `include` is followed (relative to the including file's directory; `*` globs in
//! the file name); anything else is reported as not translated, with file and line.
//!
//! What it is not: a BIRD parser or filter interpreter. Custom filter code is reported,
//! never translated; BIRD's grammar is only approximated (statements, blocks, words).

use super::{comment_text, network, parse_net, toml_list, toml_str, Note};
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

/// Deepest `{ }` nesting kept in the statement tree (BIRD configs use a handful).
const MAX_NESTING: usize = 32;

/// Deepest `include` nesting followed.
const MAX_INCLUDE_DEPTH: usize = 16;

/// The DN42 wiki's function names (Bird2 and BGP-communities pages): calling them is
/// what `import = "dn42"` / `export = "dn42"` do.
const WIKI_FUNCTIONS: &[&str] = &[
    "is_self_net",
    "is_self_net_v6",
    "is_valid_network",
    "is_valid_network_v6",
    "update_latency",
    "update_bandwidth",
    "update_crypto",
    "update_flags",
    "dn42_import_filter",
    "dn42_export_filter",
];

/// Words the wiki's import/export filters use besides its functions.
const WIKI_FILTER_WORDS: &[&str] = &[
    "if",
    "then",
    "else",
    "accept",
    "reject",
    "net",
    "roa_check",
    "bgp_path",
    "last",
    "last_nonaggregated",
    "ROA_VALID",
    "print",
    "source",
    "RTS_STATIC",
    "RTS_BGP",
    "filter",
    "where",
    "return",
];

// ---------------------------------------------------------------------------------
// Tokens and statements

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// Anything between separators: keywords, names, numbers, addresses, operators.
    Word(String),
    /// A `"..."` or `'...'` string, without its quotes.
    Str(String),
    /// One of `; { } [ ] ( ) , =`.
    Punct(char),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    tok: Tok,
    line: usize,
}

impl Token {
    fn text(&self) -> String {
        match &self.tok {
            Tok::Word(w) => w.clone(),
            Tok::Str(s) => format!("\"{s}\""),
            Tok::Punct(c) => c.to_string(),
        }
    }

    /// A word's or string's value.
    fn value(&self) -> Option<&str> {
        match &self.tok {
            Tok::Word(w) | Tok::Str(w) => Some(w),
            Tok::Punct(_) => None,
        }
    }
}

const PUNCT: &[char] = &[';', '{', '}', '[', ']', '(', ')', ',', '='];

/// Splits BIRD config text into tokens; problems (an unterminated comment or string)
/// are returned as `(line, message)`.
fn tokenize(text: &str) -> (Vec<Token>, Vec<(usize, String)>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let mut line = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                let start = line;
                chars.next();
                let mut prev = ' ';
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                    }
                    if prev == '*' && c == '/' {
                        closed = true;
                        break;
                    }
                    prev = c;
                }
                if !closed {
                    problems.push((start, "unterminated /* comment".to_owned()));
                }
            }
            '"' | '\'' => {
                let (start, quote) = (line, c);
                let mut s = String::new();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(next) = chars.next() {
                                if next == '\n' {
                                    line += 1;
                                }
                                s.push(next);
                            }
                        }
                        c if c == quote => {
                            closed = true;
                            break;
                        }
                        c => {
                            if c == '\n' {
                                line += 1;
                            }
                            s.push(c);
                        }
                    }
                }
                if !closed {
                    problems.push((start, "unterminated string".to_owned()));
                }
                out.push(Token {
                    tok: Tok::Str(s),
                    line: start,
                });
            }
            c if PUNCT.contains(&c) => out.push(Token {
                tok: Tok::Punct(c),
                line,
            }),
            c => {
                let mut w = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || PUNCT.contains(&n) || n == '"' || n == '\'' || n == '#'
                    {
                        break;
                    }
                    w.push(n);
                    chars.next();
                }
                out.push(Token {
                    tok: Tok::Word(w),
                    line,
                });
            }
        }
    }
    (out, problems)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Tok(Token),
    Block { line: usize, body: Vec<Stmt> },
}

/// A statement: tokens and blocks up to `;`, or up to a closing block (unless `else`
/// or a bracket keeps it going).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stmt {
    line: usize,
    items: Vec<Item>,
}

impl Stmt {
    /// The words (and strings' values) before the first block or punctuation other
    /// than `=`.
    fn head(&self) -> Vec<&str> {
        let mut out = Vec::new();
        for item in &self.items {
            match item {
                Item::Tok(t) => match &t.tok {
                    Tok::Word(w) | Tok::Str(w) => out.push(w.as_str()),
                    Tok::Punct('=') => out.push("="),
                    Tok::Punct(_) => break,
                },
                Item::Block { .. } => break,
            }
        }
        out
    }

    fn block(&self) -> Option<&[Stmt]> {
        self.items.iter().find_map(|i| match i {
            Item::Block { body, .. } => Some(body.as_slice()),
            Item::Tok(_) => None,
        })
    }

    /// The tokens before the first block.
    fn tokens(&self) -> Vec<&Token> {
        self.items
            .iter()
            .map_while(|i| match i {
                Item::Tok(t) => Some(t),
                Item::Block { .. } => None,
            })
            .collect()
    }

    /// A short rendering for messages.
    fn text(&self) -> String {
        let mut s = String::new();
        for item in &self.items {
            if !s.is_empty() {
                s.push(' ');
            }
            match item {
                Item::Tok(t) => s.push_str(&t.text()),
                Item::Block { .. } => s.push_str("{ ... }"),
            }
            if s.chars().count() > 60 {
                let cut: String = s.chars().take(57).collect();
                return comment_text(&format!("{cut}..."));
            }
        }
        comment_text(&s)
    }

    /// Every token inside, blocks included.
    fn all_tokens(&self) -> Vec<&Token> {
        let mut out = Vec::new();
        let mut stack: Vec<&Stmt> = vec![self];
        while let Some(s) = stack.pop() {
            for item in &s.items {
                match item {
                    Item::Tok(t) => out.push(t),
                    Item::Block { body, .. } => stack.extend(body.iter()),
                }
            }
        }
        out
    }
}

/// Builds the statement tree without recursion (so no input nests deep enough to
/// overflow the stack). Stray `}` and unclosed `{` are reported.
fn parse(tokens: Vec<Token>) -> (Vec<Stmt>, Vec<(usize, String)>) {
    struct Frame {
        line: usize,
        stmts: Vec<Stmt>,
        cur: Vec<Item>,
        brackets: usize,
        closed_block: bool,
    }
    fn finish(f: &mut Frame) {
        if !f.cur.is_empty() {
            let items = std::mem::take(&mut f.cur);
            let line = match &items[0] {
                Item::Tok(t) => t.line,
                Item::Block { line, .. } => *line,
            };
            f.stmts.push(Stmt { line, items });
        }
        f.brackets = 0;
        f.closed_block = false;
    }
    let new = |line| Frame {
        line,
        stmts: Vec::new(),
        cur: Vec::new(),
        brackets: 0,
        closed_block: false,
    };
    let mut problems = Vec::new();
    let mut stack = vec![new(1)];
    // Blocks deeper than MAX_NESTING are flattened into their parent (and reported):
    // the tree's drop and clone recurse, so its depth stays bounded.
    let mut flattened = 0usize;
    for t in tokens {
        if flattened > 0 || (t.tok == Tok::Punct('{') && stack.len() > MAX_NESTING) {
            match t.tok {
                Tok::Punct('{') => {
                    if flattened == 0 {
                        problems.push((
                            t.line,
                            "blocks nest too deep: the inner ones are skipped".to_owned(),
                        ));
                    }
                    flattened += 1;
                }
                Tok::Punct('}') => flattened -= 1,
                _ => {}
            }
            continue;
        }
        let Some(top) = stack.last_mut() else {
            break;
        };
        if top.closed_block {
            top.closed_block = false;
            let continues = matches!(&t.tok, Tok::Word(w) if w == "else") || top.brackets > 0;
            if t.tok == Tok::Punct(';') {
                finish(top);
                continue;
            }
            if !continues {
                finish(top);
            }
        }
        match t.tok {
            Tok::Punct(';') => finish(top),
            Tok::Punct('{') => stack.push(new(t.line)),
            Tok::Punct('}') => {
                if stack.len() == 1 {
                    problems.push((t.line, "unbalanced `}`: skipped".to_owned()));
                    continue;
                }
                let Some(mut done) = stack.pop() else { break };
                finish(&mut done);
                if let Some(parent) = stack.last_mut() {
                    parent.cur.push(Item::Block {
                        line: done.line,
                        body: done.stmts,
                    });
                    parent.closed_block = true;
                }
            }
            Tok::Punct('[' | '(') => {
                top.brackets += 1;
                top.cur.push(Item::Tok(t));
            }
            Tok::Punct(']' | ')') => {
                top.brackets = top.brackets.saturating_sub(1);
                top.cur.push(Item::Tok(t));
            }
            _ => top.cur.push(Item::Tok(t)),
        }
    }
    while stack.len() > 1 {
        let Some(mut done) = stack.pop() else { break };
        problems.push((done.line, "`{` is never closed".to_owned()));
        finish(&mut done);
        if let Some(parent) = stack.last_mut() {
            parent.cur.push(Item::Block {
                line: done.line,
                body: done.stmts,
            });
        }
    }
    let mut top = stack.pop().unwrap_or_else(|| new(1));
    finish(&mut top);
    (top.stmts, problems)
}

// ---------------------------------------------------------------------------------
// What is translated

/// A policy of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pol {
    Dn42,
    All,
    None,
}

impl Pol {
    fn as_str(self) -> &'static str {
        match self {
            Pol::Dn42 => "dn42",
            Pol::All => "all",
            Pol::None => "none",
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Channel {
    /// "ipv4" or "ipv6".
    family: &'static str,
    import: Option<Pol>,
    export: Option<Pol>,
    /// `(limit, action)`; limit 0 = off.
    limit: Option<(u32, &'static str)>,
    extended_next_hop: Option<bool>,
}

#[derive(Debug, Clone, Default)]
struct Bgp {
    neighbor: Option<IpAddr>,
    interface: Option<String>,
    remote_asn: Option<u32>,
    local_asn: Option<u32>,
    port: Option<u16>,
    passive: Option<bool>,
    hold_time: Option<u16>,
    keepalive: Option<u16>,
    connect_retry: Option<u16>,
    description: Option<String>,
    /// Protocol-level (BIRD 1 style) `import` / `export`.
    import: Option<Pol>,
    export: Option<Pol>,
    channels: Vec<Channel>,
}

/// The result of translating a BIRD config.
#[derive(Debug)]
pub struct Output {
    pub toml: String,
    pub notes: Vec<Note>,
}

#[derive(Default)]
struct Ctx {
    notes: Vec<Note>,
    /// Files read, for the header (and cycle detection).
    files: Vec<PathBuf>,
    follow_includes: bool,
    depth: usize,
    defines: HashMap<String, String>,
    filters: HashMap<String, Stmt>,
    templates: HashMap<String, Bgp>,
    asn: Option<u32>,
    router_id: Option<Ipv4Addr>,
    addresses: Vec<String>,
    announce: Vec<String>,
    region: Option<u16>,
    country: Option<u16>,
    roa_files: Vec<String>,
    rtr: Vec<String>,
    /// `(name, file, line, settings)` of each `protocol bgp`.
    sessions: Vec<(String, String, usize, Bgp)>,
}

/// Reads `path` (and its includes) and translates it.
pub fn translate_file(path: &Path) -> Result<Output> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let mut cx = Ctx {
        follow_includes: true,
        ..Ctx::default()
    };
    cx.files
        .push(path.canonicalize().unwrap_or(path.to_path_buf()));
    let dir = path.parent().unwrap_or(Path::new("."));
    cx.file(&path.display().to_string(), dir, &text);
    Ok(cx.finish(&[path.display().to_string()]))
}

/// Translates config text without following `include`s (each is reported).
#[cfg(test)]
fn translate_text(file: &str, text: &str) -> Output {
    let mut cx = Ctx::default();
    cx.file(file, Path::new("."), text);
    cx.finish(&[file.to_owned()])
}

fn on_off(word: Option<&&str>) -> Option<bool> {
    match word.map(|w| w.to_ascii_lowercase()) {
        None => Some(true),
        Some(w) => match w.as_str() {
            "on" | "yes" | "true" => Some(true),
            "off" | "no" | "false" => Some(false),
            _ => None,
        },
    }
}

impl Ctx {
    fn note(&mut self, file: &str, line: usize, message: impl Into<String>) {
        self.notes.push(Note::new(file, line, message));
    }

    fn not_translated(&mut self, file: &str, s: &Stmt, hint: &str) {
        let text = s.text();
        // Secrets are never echoed: a note names the setting, not its value.
        let first = text.split_whitespace().next().unwrap_or("");
        if matches!(first, "password" | "authentication" | "key" | "keys") {
            self.note(
                file,
                s.line,
                format!(
                    "`{first} ...`: not translated: TCP-MD5 / TCP-AO session authentication is not supported (the value is not shown)"
                ),
            );
            return;
        }
        self.note(file, s.line, format!("`{text}`: not translated{hint}"));
    }

    /// A value with `define`d names replaced (one level, as BIRD constants are).
    fn resolve<'a>(&'a self, word: &'a str) -> &'a str {
        self.defines.get(word).map_or(word, String::as_str)
    }

    fn file(&mut self, file: &str, dir: &Path, text: &str) {
        let (tokens, problems) = tokenize(text);
        let (stmts, more) = parse(tokens);
        for (line, p) in problems.into_iter().chain(more) {
            self.note(file, line, p);
        }
        for s in &stmts {
            self.top(file, dir, s);
        }
    }

    fn top(&mut self, file: &str, dir: &Path, s: &Stmt) {
        let head = s.head();
        let first = head
            .first()
            .map(|w| w.to_ascii_lowercase())
            .unwrap_or_default();
        match first.as_str() {
            "define" => self.define(file, s),
            "router" if head.get(1) == Some(&"id") => {
                let value = head.get(2).map(|w| self.resolve(w).to_owned());
                match value.as_deref().map(str::parse::<Ipv4Addr>) {
                    Some(Ok(id)) => self.router_id = Some(id),
                    _ => self.not_translated(
                        file,
                        s,
                        ": not an IPv4 address; set [router] router_id",
                    ),
                }
            }
            "include" => self.include(file, dir, s),
            "function" => {
                let name = head.get(1).map(|n| n.trim_end_matches("()")).unwrap_or("");
                if !WIKI_FUNCTIONS.contains(&name) {
                    self.note(
                        file,
                        s.line,
                        format!(
                            "function {}: not translated: custom filter code; write a [[policy]] \
                             (README: \"Policies\")",
                            comment_text(name)
                        ),
                    );
                }
            }
            "filter" => {
                if let Some(name) = head.get(1) {
                    self.filters.insert((*name).to_owned(), s.clone());
                }
            }
            "roa4" | "roa6" if head.get(1) == Some(&"table") => {}
            "protocol" | "template" => self.protocol(file, dir, s, first == "template"),
            "log" | "debug" | "timeformat" | "mrtdump" | "watchdog" => {
                self.not_translated(file, s, ": logging is set with RUST_LOG")
            }
            _ => self.not_translated(file, s, ""),
        }
    }

    fn define(&mut self, file: &str, s: &Stmt) {
        let head = s.head();
        let (Some(name), Some(&"=")) = (head.get(1), head.get(2)) else {
            return self.not_translated(file, s, ": not `define NAME = VALUE`");
        };
        let name = (*name).to_owned();
        let value: Vec<String> = s.tokens().iter().skip(3).map(|t| t.text()).collect();
        let value = value.join(" ");
        self.defines.insert(name.clone(), value.clone());
        let shown = comment_text(&value);
        let bad = |cx: &mut Ctx, what: &str| {
            cx.note(
                file,
                s.line,
                format!("define {name} = {shown}: not {what}: not translated"),
            )
        };
        match name.as_str() {
            "OWNAS" => match value.parse::<u32>() {
                Ok(asn) if asn != 0 => self.asn = Some(asn),
                _ => bad(self, "an AS number"),
            },
            "OWNIP" | "OWNIPv6" => match value.parse::<IpAddr>() {
                Ok(ip) => {
                    let len = if ip.is_ipv4() { 32 } else { 128 };
                    push_unique(&mut self.addresses, format!("{ip}/{len}"));
                }
                Err(_) => bad(self, "an address"),
            },
            "OWNNET" | "OWNNETv6" => match parse_net(&value) {
                Some((ip, len)) => push_unique(&mut self.announce, network(ip, len)),
                None => bad(self, "a prefix"),
            },
            // `[OWNNET+]`: what `is_self_net()` checks, done by every policy of ours.
            "OWNNETSET" | "OWNNETSETv6" => {}
            "DN42_REGION" => match value.parse::<u16>() {
                Ok(v) if (41..=70).contains(&v) => self.region = Some(v),
                _ => bad(self, "a DN42 region (41..70)"),
            },
            "DN42_COUNTRY" => match value.parse::<u16>() {
                Ok(v) if (1000..=1999).contains(&v) => self.country = Some(v),
                _ => bad(self, "a DN42 country (1000..1999)"),
            },
            _ => self.note(
                file,
                s.line,
                format!(
                    "define {}: not translated (used only where this import reads it)",
                    comment_text(&name)
                ),
            ),
        }
    }

    fn include(&mut self, file: &str, dir: &Path, s: &Stmt) {
        let head = s.head();
        let Some(target) = head.get(1) else {
            return self.not_translated(file, s, ": no file name");
        };
        if !self.follow_includes {
            return self.not_translated(file, s, ": includes are not followed here");
        }
        if self.depth >= MAX_INCLUDE_DEPTH {
            return self.not_translated(file, s, ": includes nest too deep");
        }
        let path = dir.join(target);
        let paths = expand(&path);
        if paths.is_empty() {
            return self.note(
                file,
                s.line,
                format!(
                    "include {}: no such file: not followed (import it separately, or fix the path)",
                    comment_text(&path.display().to_string())
                ),
            );
        }
        for p in paths {
            let canonical = p.canonicalize().unwrap_or(p.clone());
            if self.files.contains(&canonical) {
                self.note(
                    file,
                    s.line,
                    format!(
                        "include {}: already read: skipped",
                        comment_text(&p.display().to_string())
                    ),
                );
                continue;
            }
            match std::fs::read(&p) {
                Ok(bytes) => {
                    self.files.push(canonical);
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    let sub = p.display().to_string();
                    let subdir = p.parent().unwrap_or(Path::new(".")).to_path_buf();
                    self.depth += 1;
                    self.file(&sub, &subdir, &text);
                    self.depth -= 1;
                }
                Err(e) => self.note(
                    file,
                    s.line,
                    format!(
                        "include {}: {e}: not followed",
                        comment_text(&p.display().to_string())
                    ),
                ),
            }
        }
    }

    fn protocol(&mut self, file: &str, dir: &Path, s: &Stmt, template: bool) {
        let head = s.head();
        let kind = head
            .get(1)
            .map(|k| k.to_ascii_lowercase())
            .unwrap_or_default();
        let Some(body) = s.block() else {
            return self.not_translated(file, s, ": no `{ ... }` body");
        };
        // `protocol KIND [NAME] [from TEMPLATE]`
        let mut name = None;
        let mut from = None;
        let mut rest = head.iter().skip(2);
        while let Some(w) = rest.next() {
            if *w == "from" {
                from = rest.next().copied();
            } else if name.is_none() {
                name = Some(*w);
            }
        }
        match kind.as_str() {
            "bgp" => {
                let mut bgp = match from {
                    Some(t) => match self.templates.get(t) {
                        Some(b) => b.clone(),
                        None => {
                            self.note(
                                file,
                                s.line,
                                format!(
                                    "template {}: not defined before this point",
                                    comment_text(t)
                                ),
                            );
                            Bgp::default()
                        }
                    },
                    None => Bgp::default(),
                };
                for st in body {
                    self.bgp_stmt(file, st, &mut bgp);
                }
                let name = name.unwrap_or("bgp").to_owned();
                if template {
                    self.templates.insert(name, bgp);
                } else {
                    self.sessions.push((name, file.to_owned(), s.line, bgp));
                }
            }
            _ if template => self.not_translated(file, s, ": only bgp templates are translated"),
            "device" => {}
            "kernel" => self.note(
                file,
                s.line,
                "protocol kernel: not needed: the router programs its own forwarding table",
            ),
            "direct" => self.note(
                file,
                s.line,
                "protocol direct: not needed: the tunnels' addresses are the router's own",
            ),
            "static" => self.static_protocol(file, dir, body),
            "rpki" => self.rpki(file, body),
            _ => self.not_translated(file, s, ""),
        }
    }

    /// `protocol static`: ROA includes become `[roa] files`, `route P reject` (and
    /// blackhole/unreachable/prohibit) our announced prefixes.
    fn static_protocol(&mut self, file: &str, dir: &Path, body: &[Stmt]) {
        for st in body {
            let head = st.head();
            match head.first().map(|w| w.to_ascii_lowercase()).as_deref() {
                Some("roa4" | "roa6" | "ipv4" | "ipv6") => {}
                Some("include") => match head.get(1) {
                    Some(f) => {
                        let path = dir.join(f).display().to_string();
                        push_unique(&mut self.roa_files, path);
                    }
                    None => self.not_translated(file, st, ""),
                },
                Some("route") => {
                    let prefix = head.get(1).map(|p| self.resolve(p).to_owned());
                    let originate = matches!(
                        head.get(2).map(|w| w.to_ascii_lowercase()).as_deref(),
                        Some("reject" | "blackhole" | "unreachable" | "prohibit")
                    );
                    match prefix.as_deref().and_then(parse_net) {
                        Some((ip, len)) if originate => {
                            push_unique(&mut self.announce, network(ip, len))
                        }
                        _ => self.not_translated(
                            file,
                            st,
                            ": add a [[route]] (prefix, interface, gateway), or the prefix to \
                             [router] announce",
                        ),
                    }
                }
                _ => self.not_translated(file, st, ""),
            }
        }
    }

    /// `protocol rpki`: `remote HOST [port N]` becomes a `[roa] rtr` server.
    fn rpki(&mut self, file: &str, body: &[Stmt]) {
        for st in body {
            let head = st.head();
            match head.first().map(|w| w.to_ascii_lowercase()).as_deref() {
                Some("roa4" | "roa6" | "retry" | "refresh" | "expire") => {}
                Some("remote") => {
                    let Some(host) = head.get(1) else {
                        self.not_translated(file, st, "");
                        continue;
                    };
                    let port = match (head.get(2), head.get(3)) {
                        (Some(&"port"), Some(p)) => p.parse::<u16>().ok(),
                        _ => Some(323),
                    };
                    match port {
                        Some(port) if host.parse::<std::net::Ipv6Addr>().is_ok() => {
                            push_unique(&mut self.rtr, format!("[{host}]:{port}"))
                        }
                        Some(port) => push_unique(&mut self.rtr, format!("{host}:{port}")),
                        None => self.not_translated(file, st, ": bad port"),
                    }
                }
                _ => self.not_translated(file, st, ""),
            }
        }
    }

    fn bgp_stmt(&mut self, file: &str, st: &Stmt, b: &mut Bgp) {
        let head = st.head();
        let lower: Vec<String> = head.iter().map(|w| w.to_ascii_lowercase()).collect();
        let words: Vec<&str> = lower.iter().map(String::as_str).collect();
        match words.as_slice() {
            ["local", ..] => {
                let mut it = head.iter().skip(1);
                while let Some(w) = it.next() {
                    match w.to_ascii_lowercase().as_str() {
                        "as" => match it.next().map(|a| self.resolve(a).parse::<u32>()) {
                            Some(Ok(asn)) => b.local_asn = Some(asn),
                            _ => self.not_translated(file, st, ": not an AS number"),
                        },
                        _ => {
                            self.not_translated(
                                file,
                                st,
                                ": the source address is the router's own on the tunnel",
                            );
                            break;
                        }
                    }
                }
            }
            ["neighbor", ..] => self.neighbor(file, st, &head[1..], b),
            ["interface", name] => {
                b.interface = Some(head[1].to_owned()).filter(|_| !name.is_empty())
            }
            ["passive", rest @ ..] => match on_off(rest.first()) {
                Some(v) => b.passive = Some(v),
                None => self.not_translated(file, st, ""),
            },
            ["hold", "time", n] => match n.parse() {
                Ok(v) => b.hold_time = Some(v),
                Err(_) => self.not_translated(file, st, ": not a number of seconds"),
            },
            ["keepalive", "time", n] => match n.parse() {
                Ok(v) => b.keepalive = Some(v),
                Err(_) => self.not_translated(file, st, ": not a number of seconds"),
            },
            ["connect", "retry", "time", n] => match n.parse::<u16>() {
                Ok(v) if v > 0 => b.connect_retry = Some(v),
                _ => self.not_translated(file, st, ": not a number of seconds"),
            },
            ["description", ..] => b.description = head.get(1).map(|d| (*d).to_owned()),
            // What rootless-router always does: compare AS path lengths, keep filtered
            // routes for `ctl show routes filtered`, talk to directly connected peers.
            ["path", "metric"] | ["path", "metric", "on" | "yes" | "1"] => {}
            ["import", "keep", "filtered", ..] | ["direct"] => {}
            ["ipv4" | "ipv6", ..] if st.block().is_some() || words.len() == 1 => {
                let family = if words[0] == "ipv4" { "ipv4" } else { "ipv6" };
                let pos = match b.channels.iter().position(|c| c.family == family) {
                    Some(p) => p,
                    None => {
                        b.channels.push(Channel {
                            family,
                            ..Channel::default()
                        });
                        b.channels.len() - 1
                    }
                };
                if words.len() > 1 {
                    self.not_translated(file, st, ": only unicast channels");
                }
                let mut ch = b.channels[pos].clone();
                for cs in st.block().unwrap_or(&[]) {
                    self.channel_stmt(file, cs, &mut ch);
                }
                b.channels[pos] = ch;
            }
            ["import" | "export", ..] => {
                let mut ch = Channel::default();
                self.channel_stmt(file, st, &mut ch);
                if ch.import.is_some() {
                    b.import = ch.import;
                }
                if ch.export.is_some() {
                    b.export = ch.export;
                }
            }
            _ => self.not_translated(file, st, ""),
        }
    }

    /// `neighbor [IP[%IFACE]] [% 'IFACE'] [port N] [as N]`.
    fn neighbor(&mut self, file: &str, st: &Stmt, words: &[&str], b: &mut Bgp) {
        let mut it = words.iter().peekable();
        while let Some(w) = it.next() {
            match *w {
                "as" => match it.next().map(|a| self.resolve(a).to_owned()) {
                    Some(a) => match a.parse::<u32>() {
                        Ok(asn) if asn != 0 => b.remote_asn = Some(asn),
                        _ => self.not_translated(file, st, ": set remote_asn"),
                    },
                    None => self.not_translated(file, st, ""),
                },
                "port" => match it.next().and_then(|p| p.parse::<u16>().ok()) {
                    Some(p) if p != 0 => b.port = Some(p),
                    _ => self.not_translated(file, st, ": not a port"),
                },
                "%" => b.interface = it.next().map(|i| (*i).to_owned()),
                "range" => {
                    return self.not_translated(
                        file,
                        st,
                        ": dynamic neighbors: give each neighbor its own [[bgp]]",
                    )
                }
                other => {
                    let (addr, iface) = match other.split_once('%') {
                        Some((a, i)) => (a, Some(i)),
                        None => (other, None),
                    };
                    match self.resolve(addr).parse::<IpAddr>() {
                        Ok(ip) => {
                            b.neighbor = Some(ip);
                            match iface {
                                Some("") => {
                                    b.interface = it.next().map(|i| (*i).to_owned());
                                }
                                Some(i) => b.interface = Some(i.to_owned()),
                                None => {}
                            }
                        }
                        Err(_) => return self.not_translated(file, st, ": not an address"),
                    }
                }
            }
        }
    }

    fn channel_stmt(&mut self, file: &str, st: &Stmt, ch: &mut Channel) {
        let head = st.head();
        let lower: Vec<String> = head.iter().map(|w| w.to_ascii_lowercase()).collect();
        let words: Vec<&str> = lower.iter().map(String::as_str).collect();
        match words.as_slice() {
            ["import" | "export", "keep", "filtered", ..] => {}
            ["import", "limit", n, rest @ ..] => {
                let limit = if *n == "off" {
                    Some(0)
                } else {
                    n.parse::<u32>().ok()
                };
                let action = match rest {
                    [] => Some("disable"),
                    ["action", a] => match *a {
                        "warn" => Some("warn"),
                        "block" => Some("block"),
                        "restart" => Some("restart"),
                        "disable" => Some("disable"),
                        _ => None,
                    },
                    _ => None,
                };
                match (limit, action) {
                    (Some(l), Some(a)) => ch.limit = Some((l, a)),
                    _ => self.not_translated(file, st, ""),
                }
            }
            [dir @ ("import" | "export"), what, ..] => {
                let pol = match *what {
                    "none" => Some(Pol::None),
                    "all" => Some(Pol::All),
                    "filter" | "where" => Some(self.classify(file, st, dir)),
                    _ => None,
                };
                match (pol, *dir) {
                    (Some(p), "import") => ch.import = Some(p),
                    (Some(p), _) => ch.export = Some(p),
                    (None, _) => self.not_translated(file, st, ""),
                }
            }
            ["extended", "next", "hop", rest @ ..] => match on_off(rest.first()) {
                Some(v) => ch.extended_next_hop = Some(v),
                None => self.not_translated(file, st, ""),
            },
            _ => self.not_translated(file, st, ""),
        }
    }

    /// A filter (inline, named, or `where`): `"dn42"` when it calls the wiki's
    /// functions, with a note for anything beyond them; a custom one is reported and
    /// becomes `"dn42"` too (the safe choice).
    fn classify(&mut self, file: &str, st: &Stmt, dir: &str) -> Pol {
        let toks = st.all_tokens();
        // `import filter NAME;`: a named filter's body.
        let named = match toks.get(2).map(|t| &t.tok) {
            Some(Tok::Word(n)) if toks.len() == 3 && toks[1].value() == Some("filter") => {
                Some(n.clone())
            }
            _ => None,
        };
        let body: Vec<Token> = match &named {
            Some(n) => match self.filters.get(n) {
                Some(f) => f.all_tokens().into_iter().skip(2).cloned().collect(),
                None => {
                    self.note(
                        file,
                        st.line,
                        format!(
                            "{dir} filter {}: not defined: {dir} = \"dn42\" used",
                            comment_text(n)
                        ),
                    );
                    return Pol::Dn42;
                }
            },
            None => toks.iter().skip(1).map(|t| (*t).clone()).collect(),
        };
        let mut wiki = false;
        let mut unknown: Vec<String> = Vec::new();
        for (i, t) in body.iter().enumerate() {
            let Tok::Word(w) = &t.tok else { continue };
            for piece in w.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if !piece.starts_with(|c: char| c.is_ascii_alphabetic()) {
                    continue;
                }
                if WIKI_FUNCTIONS.contains(&piece) {
                    wiki = true;
                    if piece == "dn42_import_filter" || piece == "dn42_export_filter" {
                        self.link_note(file, t.line, &body[i + 1..]);
                    }
                } else if !WIKI_FILTER_WORDS.contains(&piece)
                    && !piece.starts_with("dn42_roa")
                    && !unknown.iter().any(|u| u == piece)
                {
                    unknown.push(piece.to_owned());
                }
            }
        }
        let what = named.map_or_else(|| format!("{dir} filter"), |n| format!("{dir} filter {n}"));
        if !wiki {
            self.note(
                file,
                st.line,
                format!(
                    "{}: custom filter: not translated; {dir} = \"dn42\" used instead; write a \
                     [[policy]] for it (README: \"Policies\")",
                    comment_text(&what)
                ),
            );
        } else if !unknown.is_empty() {
            self.note(
                file,
                st.line,
                format!(
                    "{}: beyond the DN42 wiki's filter ({}): not translated; {dir} = \"dn42\" \
                     used; write a [[policy]] for the rest (README: \"Policies\")",
                    comment_text(&what),
                    comment_text(&unknown.join(", "))
                ),
            );
        }
        Pol::Dn42
    }

    /// `dn42_import_filter(3,24,34)`: the tunnel's link communities.
    fn link_note(&mut self, file: &str, line: usize, after: &[Token]) {
        let nums: Vec<&str> = after
            .iter()
            .take(6)
            .filter_map(|t| match &t.tok {
                Tok::Word(w) => Some(self.resolve(w)),
                _ => None,
            })
            .collect();
        if let [l, b, c, ..] = nums.as_slice() {
            let (l, b, c) = (comment_text(l), comment_text(b), comment_text(c));
            let message = format!(
                "dn42_import_filter / dn42_export_filter ({l},{b},{c}): the tunnel's DN42 link \
                 communities: set latency = {l}, bandwidth = {b}, crypto = {c} on its [[interface]]"
            );
            // Once per file: the same numbers usually appear on every channel.
            if !self
                .notes
                .iter()
                .any(|n| n.file == file && n.message == message)
            {
                self.note(file, line, message);
            }
        }
    }

    /// The TOML text; notes for sessions that cannot be written.
    fn finish(mut self, sources: &[String]) -> Output {
        let mut t = String::from("# Generated by `rootless-router import bird` from:\n");
        for s in sources {
            t.push_str(&format!("#   {}\n", comment_text(s)));
        }
        for f in self.files.iter().skip(1) {
            t.push_str(&format!(
                "#   {} (included)\n",
                comment_text(&f.display().to_string())
            ));
        }
        t.push_str(
            "# Complete it with the [[interface]] sections of the tunnels\n\
             # (`rootless-router import wg-quick`), then run `rootless-router check`.\n\n",
        );
        let sessions = std::mem::take(&mut self.sessions);
        if self.asn.is_none() {
            // `local as N` of the sessions, when OWNAS was not defined.
            self.asn = sessions.iter().find_map(|(_, _, _, b)| b.local_asn);
        }
        t.push_str("[router]\n");
        match self.asn {
            Some(a) => t.push_str(&format!("asn = {a}\n")),
            None => t.push_str("# asn = ?  (no `define OWNAS` or `local as` found)\n"),
        }
        if let Some(id) = self.router_id {
            t.push_str(&format!("router_id = {}\n", toml_str(&id.to_string())));
        }
        if !self.addresses.is_empty() {
            t.push_str(&format!("addresses = {}\n", toml_list(&self.addresses)));
        }
        if !self.announce.is_empty() {
            t.push_str(&format!("announce = {}\n", toml_list(&self.announce)));
        }
        if let Some(r) = self.region {
            t.push_str(&format!("region = {r}\n"));
        }
        if let Some(c) = self.country {
            t.push_str(&format!("country = {c}\n"));
        }
        if !self.roa_files.is_empty() || !self.rtr.is_empty() {
            t.push_str("\n[roa]\n");
            if !self.roa_files.is_empty() {
                t.push_str(&format!("files = {}\n", toml_list(&self.roa_files)));
            }
            if !self.rtr.is_empty() {
                t.push_str(&format!("rtr = {}\n", toml_list(&self.rtr)));
            }
        }
        for (name, file, line, b) in sessions {
            if let Some(s) = self.session(&name, &file, line, &b) {
                t.push('\n');
                t.push_str(&s);
            }
        }
        Output {
            toml: t,
            notes: self.notes,
        }
    }

    fn session(&mut self, name: &str, file: &str, line: usize, b: &Bgp) -> Option<String> {
        let label = format!("protocol bgp {}", comment_text(name));
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            self.note(
                file,
                line,
                format!("{label}: not translated: not a usable name"),
            );
            return None;
        }
        let Some(neighbor) = b.neighbor else {
            self.note(
                file,
                line,
                format!("{label}: not translated: no neighbor address"),
            );
            return None;
        };
        let Some(remote_asn) = b.remote_asn else {
            self.note(
                file,
                line,
                format!("{label}: not translated: no neighbor AS (`neighbor ... as N`)"),
            );
            return None;
        };
        if let (Some(local), Some(asn)) = (b.local_asn, self.asn) {
            if local != asn {
                self.note(
                    file,
                    line,
                    format!("{label}: local as {local} differs from [router] asn {asn}: the router has one AS"),
                );
            }
        }
        let link_local = match neighbor {
            IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
            IpAddr::V4(v4) => v4.is_link_local(),
        };
        if link_local && b.interface.is_none() {
            self.note(
                file,
                line,
                format!("{label}: not translated: link-local neighbor {neighbor} without an interface (`%IFACE` or `interface`)"),
            );
            return None;
        }
        let mut s = format!("# From {}:{line} ({label})", comment_text(file));
        if let Some(d) = &b.description {
            s.push_str(&format!(": {}", comment_text(d)));
        }
        s.push_str(&format!("\n[[bgp]]\nname = {}\n", toml_str(name)));
        s.push_str(&format!("neighbor = {}\n", toml_str(&neighbor.to_string())));
        if let Some(i) = &b.interface {
            s.push_str(&format!("interface = {}\n", toml_str(i)));
        }
        s.push_str(&format!("remote_asn = {remote_asn}\n"));
        if let Some(p) = b.port {
            s.push_str(&format!("port = {p}\n"));
        }
        // BIRD without channels: the neighbor address's family.
        let families: Vec<&str> = if b.channels.is_empty() {
            vec![if neighbor.is_ipv4() { "ipv4" } else { "ipv6" }]
        } else {
            b.channels.iter().map(|c| c.family).collect()
        };
        s.push_str(&format!("families = {}\n", toml_list(&families)));
        let v4 = b.channels.iter().find(|c| c.family == "ipv4");
        match v4.and_then(|c| c.extended_next_hop) {
            Some(e) => s.push_str(&format!("extended_next_hop = {e}\n")),
            None if neighbor.is_ipv6() && families.contains(&"ipv4") => {
                s.push_str("extended_next_hop = false\n");
                self.note(
                    file,
                    line,
                    format!(
                        "{label}: IPv4 over an IPv6 session without `extended next hop on`: \
                         extended_next_hop = false, as in BIRD; set it to true to carry IPv4 here \
                         (RFC 8950, the DN42 norm)"
                    ),
                );
            }
            None => {}
        }
        if let Some(p) = b.passive {
            s.push_str(&format!("passive = {p}\n"));
        }
        match b.hold_time {
            Some(h @ (1 | 2)) => self.note(
                file,
                line,
                format!(
                    "{label}: hold time {h}: must be 0 or at least 3 (RFC 4271): not translated"
                ),
            ),
            Some(h) => s.push_str(&format!("hold_time = {h}\n")),
            None => {}
        }
        if let Some(k) = b.keepalive {
            match b.hold_time {
                Some(h) if h != 0 && k >= h => self.note(
                    file,
                    line,
                    format!(
                        "{label}: keepalive time {k} is not below hold time {h}: not translated"
                    ),
                ),
                _ => s.push_str(&format!("keepalive = {k}\n")),
            }
        }
        if let Some(c) = b.connect_retry {
            s.push_str(&format!("connect_retry = {c}\n"));
        }
        for (dir, session, get) in [
            (
                "import",
                b.import,
                (|c: &Channel| c.import) as fn(&Channel) -> Option<Pol>,
            ),
            ("export", b.export, |c: &Channel| c.export),
        ] {
            let mut values: Vec<Pol> = b.channels.iter().filter_map(get).collect();
            values.dedup();
            let chosen = match (values.as_slice(), session) {
                ([], s) => s,
                ([one], _) => Some(*one),
                ([first, ..], _) => {
                    self.note(
                        file,
                        line,
                        format!(
                            "{label}: the channels' {dir} policies differ; one {dir} policy per \
                             session: {dir} = \"{}\" (the first channel's); per-family \
                             differences go in {dir}_policy_ipv4/_ipv6",
                            first.as_str()
                        ),
                    );
                    Some(*first)
                }
            };
            if let Some(p) = chosen {
                s.push_str(&format!("{dir} = \"{}\"\n", p.as_str()));
            }
        }
        let mut limits: Vec<(u32, &str)> = b.channels.iter().filter_map(|c| c.limit).collect();
        limits.dedup();
        if let Some(&(limit, action)) = limits.first() {
            if limits.len() > 1 {
                self.note(
                    file,
                    line,
                    format!("{label}: the channels' import limits differ; one limit per session: the first channel's ({limit}) is used"),
                );
            }
            s.push_str(&format!("import_limit = {limit}\n"));
            s.push_str(&format!("import_limit_action = \"{action}\"\n"));
        }
        Some(s)
    }
}

fn push_unique(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// The files a path names; a `*` in its file name matches any characters.
fn expand(path: &Path) -> Vec<PathBuf> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains('*') {
        return if path.is_file() {
            vec![path.to_path_buf()]
        } else {
            Vec::new()
        };
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| glob_match(&name, &n.to_string_lossy()))
        })
        .collect();
    out.sort();
    out
}

/// `*`-only glob matching (no `?`, no classes), iterative.
fn glob_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut rest = name;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(pos) => rest = &rest[pos + part.len()..],
                None => return false,
            }
        }
    }
    rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_comments_strings_lines() {
        let (toks, problems) = tokenize("a /* x\ny */ b # c\n\"s;t\" 'u'{ } fe80::1%wg0;");
        assert!(problems.is_empty());
        let texts: Vec<(String, usize)> = toks.iter().map(|t| (t.text(), t.line)).collect();
        assert_eq!(
            texts,
            [
                ("a".into(), 1),
                ("b".into(), 2),
                ("\"s;t\"".into(), 3),
                ("\"u\"".into(), 3),
                ("{".into(), 3),
                ("}".into(), 3),
                ("fe80::1%wg0".into(), 3),
                (";".into(), 3)
            ]
        );
        let (_, problems) = tokenize("x /* never closed");
        assert_eq!(problems, [(1, "unterminated /* comment".to_owned())]);
    }

    #[test]
    fn statements_end_after_blocks_but_not_before_else_or_in_sets() {
        let (stmts, problems) = parse(
            tokenize("protocol a { x; } protocol b { if c then { d; } else e; } f = [ 1.0.0.0/8{9,10}, 2 ]; }")
                .0,
        );
        assert_eq!(problems, [(1, "unbalanced `}`: skipped".to_owned())]);
        let heads: Vec<Vec<&str>> = stmts.iter().map(|s| s.head()).collect();
        assert_eq!(
            heads,
            [vec!["protocol", "a"], vec!["protocol", "b"], vec!["f", "="]]
        );
        let inner = stmts[1].block().unwrap();
        assert_eq!(inner.len(), 1, "{inner:?}");
    }

    #[test]
    fn glob() {
        assert!(glob_match("*", "x.conf"));
        assert!(glob_match("*.conf", "x.conf"));
        assert!(!glob_match("*.conf", "x.conf.bak"));
        assert!(glob_match("a*b*c", "aXbYc"));
        assert!(!glob_match("a*b", "ab_"));
    }

    #[test]
    fn neighbor_forms() {
        for (text, iface) in [
            ("neighbor fe80::1%wg-a as 4242420002;", "wg-a"),
            ("neighbor fe80::1 % 'wg-a' as 4242420002;", "wg-a"),
            ("neighbor fe80::1%'wg-a' as 4242420002;", "wg-a"),
            (
                "neighbor fe80::1 as 4242420002; interface \"wg-a\";",
                "wg-a",
            ),
        ] {
            let out = translate_text(
                "t.conf",
                &format!("define OWNAS = 4242420001; protocol bgp p {{ {text} ipv6; }}"),
            );
            assert!(out.notes.is_empty(), "{text}: {:?}", out.notes);
            assert!(out.toml.contains("neighbor = \"fe80::1\""), "{}", out.toml);
            assert!(
                out.toml.contains(&format!("interface = \"{iface}\"")),
                "{}",
                out.toml
            );
            assert!(out.toml.contains("remote_asn = 4242420002"), "{}", out.toml);
        }
    }

    #[test]
    fn custom_filters_are_reported_and_become_dn42() {
        let out = translate_text(
            "t.conf",
            "protocol bgp p {\n neighbor 172.20.0.2 as 4242420002;\n ipv4 {\n  import filter { if net ~ [10.0.0.0/8+] then accept; reject; };\n  export where is_valid_network() && bgp_large_community ~ [(1,2,3)];\n };\n}\n",
        );
        let notes: Vec<String> = out.notes.iter().map(|n| n.to_string()).collect();
        assert!(
            notes[0].starts_with("t.conf:4: import filter: custom filter"),
            "{notes:?}"
        );
        assert!(
            notes[1].starts_with(
                "t.conf:5: export filter: beyond the DN42 wiki's filter (bgp_large_community)"
            ),
            "{notes:?}"
        );
        assert!(
            out.toml.contains("import = \"dn42\"\nexport = \"dn42\""),
            "{}",
            out.toml
        );
    }

    /// A TCP-MD5 password is reported by name; its value appears in no note.
    #[test]
    fn passwords_are_never_echoed() {
        let out = translate_text(
            "t.conf",
            "protocol bgp p {\n neighbor 172.20.0.2 as 4242420002;\n password \"hunter2secret\";\n ipv4 { import all; export all; };\n}\n",
        );
        let notes: Vec<String> = out.notes.iter().map(|n| n.to_string()).collect();
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with("t.conf:3: `password ...`")),
            "{notes:?}"
        );
        assert!(!notes.iter().any(|n| n.contains("hunter2")), "{notes:?}");
        assert!(!out.toml.contains("hunter2"), "{}", out.toml);
    }

    /// Any bytes in, no panic out: the wiki's config, mutated many ways.
    #[test]
    fn mutated_input_never_panics() {
        let base = include_str!("../../tests/data/import/bird/bird.conf");
        let inserts = [
            "{", "}", "\"", "'", "/*", "*/", "#", ";", "%", "[", "(", "\u{0}", "é", "=",
        ];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for _ in 0..400 {
            let mut text: Vec<char> = base.chars().collect();
            for _ in 0..1 + next(8) {
                let pos = next(text.len() + 1);
                match next(3) {
                    0 if pos < text.len() => {
                        text.remove(pos);
                    }
                    1 => text
                        .splice(pos..pos, inserts[next(inserts.len())].chars())
                        .for_each(drop),
                    _ => text.truncate(pos),
                }
            }
            let text: String = text.into_iter().collect();
            let _ = translate_text("m.conf", &text);
        }
        // Deep nesting is handled without recursion.
        let _ = translate_text("deep.conf", &"protocol bgp x {".repeat(100_000));
        let _ = translate_text("deep.conf", &"}".repeat(1000));
    }
}
