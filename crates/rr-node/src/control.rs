//! The control thread: WireGuard timers, packets for the node itself, and probes.
//!
//! What it is: a loop over one channel and one epoll. Packets the forwarding plane
//! delivers locally arrive on the channel; answers to the node's own probes (`ctl ping`, `ctl traceroute`) are
//! matched, the rest goes to the node's TCP/UDP stack. Every 100 ms it drives each
//! tunnel's handshake/keepalive timers; every second it refills the handshake limiters.
//! It also owns the BGP speaker ([`crate::bgp`]): its sessions run on the stack here (or
//! on host sockets whose threads report through the same channel), and the relays of
//! programs under `exec` and of the gateways ([`crate::exec`]), whose descriptors are in
//! the epoll. When there is nothing to do it sleeps in `epoll_wait`; senders on the
//! channel kick its eventfd only then ([`crate::shared::Waker`]).
//!
//! What it is not: on the forwarding path. Transit packets never come here.

use crate::bgp::{Bgp, HostMsg};
use crate::exec::{Exec, ExecCall};
use crate::shared::{batch_buffer, BatchSink, NodeError, NodeSink, Shared};
use rr_config::{Config, TunnelAction};
use rr_ctl::Response;
use rr_dataplane::forward::Forwarder;
use rr_dataplane::probe::{self, AnswerKind};
use rr_dataplane::tunnel::MAX_DATAGRAM;
use rr_fib::IfIndex;
use rr_stack::Stack;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What other threads ask of the control thread.
pub(crate) enum ControlMsg {
    /// A packet for one of the node's addresses, and the tunnel it arrived on.
    Local(IfIndex, Vec<u8>),
    /// Start a probe; results go to `reply`, the last one final.
    Probe(ProbeRequest),
    /// Something from a BGP host-socket thread.
    Host(HostMsg),
    /// A question only the control thread can answer (BGP sessions, the route table).
    Query(rr_ctl::Request, mpsc::Sender<Response>),
    /// An operation of a program under `exec`.
    Exec(ExecCall),
    /// The config file re-read for a reload (by a helper thread: loading resolves host
    /// names), and where the answer goes.
    Reloaded(
        Box<Result<Config, rr_config::ConfigErrors>>,
        mpsc::Sender<Response>,
    ),
    Shutdown,
}

pub(crate) struct ProbeRequest {
    pub addr: IpAddr,
    pub scope: Option<IfIndex>,
    pub mode: ProbeMode,
    pub reply: mpsc::Sender<Response>,
}

#[derive(Clone, Copy)]
pub(crate) enum ProbeMode {
    Ping { count: u32 },
    Traceroute { max_hops: u8 },
}

/// How long one probe waits for its answer, and the interval between pings.
const PROBE_WAIT: Duration = Duration::from_secs(1);
const TICK: Duration = Duration::from_millis(100);
/// Messages handled between two passes over timers and the stack.
const MAX_DRAIN: usize = 256;

struct ActiveProbe {
    req: ProbeRequest,
    src: IpAddr,
    ident: u16,
    seq: u16,
    /// TTL of the outstanding probe (traceroute) or 64.
    ttl: u8,
    sent_at: Instant,
    answered: bool,
    sent: u32,
    received: u32,
    done: bool,
}

impl ActiveProbe {
    /// Sends one result; a client that has gone away ends the probe.
    fn emit(&mut self, r: Response) {
        if self.req.reply.send(r).is_err() {
            self.done = true;
        }
    }
}

pub(crate) struct Control {
    shared: Arc<Shared>,
    forwarder: Forwarder,
    /// The node's own TCP/UDP endpoints (BGP and `exec` build on it).
    stack: Stack,
    probes: Vec<ActiveProbe>,
    next_ident: u16,
    buf: Vec<u8>,
    /// Gathers the stack's encrypted packets for segmented sends.
    batch: Vec<u8>,
    bgp: Bgp,
    exec: Exec,
    /// Per tunnel: what the last tick saw, to log each state change once.
    watches: Vec<crate::logging::TunnelWatch>,
    /// The config in force (the one started with, then each applied reload's).
    config: Config,
    /// A reload is being read: another one is refused meanwhile.
    reloading: bool,
}

impl Control {
    pub fn new(shared: Arc<Shared>, config: &Config) -> Result<Control, NodeError> {
        let forwarder = Forwarder::new(shared.local.load_full());
        let (global, link_local) = crate::tunnels::stack_addresses(&shared.local.load());
        let now = Instant::now();
        let mut stack = Stack::new(now, &global, &link_local).map_err(NodeError::Stack)?;
        let bgp = Bgp::new(shared.clone(), config, &mut stack, now)?;
        let exec = Exec::new(&shared, config, &mut stack)?;
        Ok(Control {
            shared,
            forwarder,
            stack,
            probes: Vec::new(),
            next_ident: 0x5252,
            buf: vec![0u8; MAX_DATAGRAM],
            batch: batch_buffer(),
            bgp,
            exec,
            watches: Vec::new(),
            config: config.clone(),
            reloading: false,
        })
    }

    pub fn run(mut self, rx: mpsc::Receiver<ControlMsg>) {
        let mut next_tick = Instant::now();
        let mut next_second = Instant::now();
        let waker = self.shared.control.waker.clone();
        loop {
            let now = Instant::now();
            if now >= next_tick {
                self.tick_tunnels();
                next_tick = now + TICK;
            }
            if now >= next_second {
                self.shared.limiters.reset_counts();
                next_second = now + Duration::from_secs(1);
            }
            self.drive_probes(now);
            self.service_exec(now);
            self.drive_stack(now);
            // What the stack received in that poll goes to the programs at once.
            self.service_exec(now);
            let now = Instant::now();
            let mut wait = next_tick.saturating_duration_since(now);
            if let Some(d) = self.stack.poll_delay(now) {
                wait = wait.min(d);
            }
            if let Some(t) = self.bgp.poll_timeout() {
                wait = wait.min(t.saturating_duration_since(now));
            }
            if let Some(t) = self.exec.poll_timeout() {
                wait = wait.min(t.saturating_duration_since(now));
            }
            if self.exec.busy() || self.stack.tx_queued() > 0 {
                // A relay stopped at its budget, or the last pass queued packets: the
                // next round goes on at once (messages are still taken in between).
                wait = Duration::ZERO;
            }
            let mut msg = rx.try_recv();
            if matches!(msg, Err(mpsc::TryRecvError::Empty)) {
                // Sleep in epoll; say so first, and look again, so that no sender's
                // message is left waiting for the timeout.
                waker.sleeping.store(true, Ordering::SeqCst);
                msg = rx.try_recv();
                let sleep = if msg.is_ok() { Duration::ZERO } else { wait };
                self.exec.wait(sleep, &waker);
                waker.sleeping.store(false, Ordering::SeqCst);
                if msg.is_err() {
                    msg = rx.try_recv();
                }
            } else {
                // Busy: collect descriptor events without waiting.
                self.exec.wait(Duration::ZERO, &waker);
            }
            // Take what is queued, but never so much that timers and the stack starve.
            for handled in 1.. {
                match msg {
                    Ok(ControlMsg::Local(scope, packet)) => self.local_packet(scope, packet),
                    Ok(ControlMsg::Probe(req)) => self.start_probe(req),
                    Ok(ControlMsg::Host(m)) => {
                        self.bgp.host_msg(Instant::now(), m, &mut self.stack)
                    }
                    Ok(ControlMsg::Query(rr_ctl::Request::Reload, reply)) => {
                        self.start_reload(reply)
                    }
                    Ok(ControlMsg::Query(req, reply)) => {
                        let _ = reply.send(self.query(req));
                    }
                    Ok(ControlMsg::Reloaded(new, reply)) => {
                        self.reloading = false;
                        let answer = self.reload(*new);
                        let _ = reply.send(answer);
                    }
                    Ok(ControlMsg::Exec(call)) => {
                        self.exec
                            .op(call, Instant::now(), &mut self.stack, &self.shared)
                    }
                    Ok(ControlMsg::Shutdown) | Err(mpsc::TryRecvError::Disconnected) => {
                        self.stop();
                        return;
                    }
                    Err(mpsc::TryRecvError::Empty) => break,
                }
                if handled == MAX_DRAIN {
                    break;
                }
                msg = rx.try_recv();
            }
            if self.shared.shutdown.load(Ordering::Relaxed) {
                self.stop();
                break;
            }
        }
    }

    /// One pass over the `exec` relays, then the ICMP echoes they asked for.
    fn service_exec(&mut self, now: Instant) {
        self.exec.service(now, &mut self.stack, &self.shared);
        if self.exec.icmp_out.is_empty() {
            return;
        }
        let fib = self.shared.fib.load();
        for mut pkt in std::mem::take(&mut self.exec.icmp_out) {
            let mut sink = NodeSink {
                shared: &self.shared,
                buf: &mut self.buf,
            };
            let d = self
                .forwarder
                .from_local(now, None, &mut pkt, &fib, &mut sink);
            if let rr_dataplane::forward::Disposition::Dropped { reason, .. } = d {
                tracing::trace!(%reason, "program's echo request dropped");
            }
        }
    }

    /// BGP sessions end with a Cease; the relays close.
    fn stop(&mut self) {
        self.stop_bgp();
        self.exec.shutdown(&mut self.stack);
        let now = Instant::now();
        self.drive_stack(now);
    }

    /// Sessions closed with a Cease, so that neighbors drop our routes at once.
    fn stop_bgp(&mut self) {
        let now = Instant::now();
        self.bgp.shutdown(now, &mut self.stack);
        self.drive_stack(now);
    }

    /// Reads the config file again on a helper thread; its result comes back as
    /// [`ControlMsg::Reloaded`].
    fn start_reload(&mut self, reply: mpsc::Sender<Response>) {
        let Some(path) = self.config.source.clone() else {
            let _ = reply.send(Response::Error {
                message: "the node was not started from a config file: nothing to reload".into(),
            });
            return;
        };
        if self.reloading {
            let _ = reply.send(Response::Error {
                message: "a reload is already under way".into(),
            });
            return;
        }
        let shared = self.shared.clone();
        let spawned = std::thread::Builder::new()
            .name("reload".into())
            .spawn(move || {
                let new = Config::load(&path);
                let _ = shared
                    .control
                    .send(ControlMsg::Reloaded(Box::new(new), reply));
            });
        match spawned {
            Ok(_) => self.reloading = true,
            Err(e) => tracing::error!(error = %e, "cannot start the reload thread"),
        }
    }

    /// Applies a re-read config: refused whole when it is invalid, changes what needs a
    /// restart, or a new tunnel's port cannot be bound; else the tunnels
    /// ([`crate::tunnels`]), then the BGP sessions and static routes ([`Bgp`]) follow.
    fn reload(&mut self, new: Result<Config, rr_config::ConfigErrors>) -> Response {
        let file = self
            .config
            .source
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let refuse = |refused: Vec<String>| Response::Reload {
            file: file.clone(),
            refused,
            kept: Vec::new(),
            reevaluated: Vec::new(),
            restarted: Vec::new(),
            added: Vec::new(),
            removed: Vec::new(),
            static_routes_changed: false,
            tunnels: Box::default(),
            roa_changed: false,
            announce_changed: false,
            servers: Vec::new(),
        };
        let new = match new {
            Ok(c) => c,
            Err(errors) => {
                let reasons: Vec<String> = errors.to_string().lines().map(str::to_string).collect();
                tracing::warn!(file = %file, errors = %reasons.join("; "), "reload refused: the config is invalid");
                return refuse(reasons);
            }
        };
        let diff = rr_config::diff(&self.config, &new);
        if !diff.needs_restart.is_empty() {
            let reasons: Vec<String> = diff
                .needs_restart
                .iter()
                .map(|r| format!("needs a restart: {r}"))
                .collect();
            tracing::warn!(file = %file, changes = %diff.needs_restart.join("; "), "reload refused: these changes need a restart");
            return refuse(reasons);
        }
        // Everything that can fail comes first: the tunnels' new sockets and addresses,
        // then BGP's new listeners; only then does anything change.
        let plan = match crate::tunnels::plan(&self.shared, &new, &diff) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(file = %file, error = %e, "reload refused");
                return refuse(vec![e]);
            }
        };
        let http = match crate::shared::plan_http(&self.shared, &new) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(file = %file, error = %e, "reload refused");
                return refuse(vec![e]);
            }
        };
        let prepared = match self.bgp.prepare_reload(&new, &diff, &mut self.stack) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(file = %file, error = %e, "reload refused");
                return refuse(vec![e]);
            }
        };
        let now = Instant::now();
        // Sessions that end say Cease, and it leaves, before their tunnels may go.
        self.bgp.stop_for_reload(now, &diff, &mut self.stack);
        self.drive_stack(now);
        let committed = plan.commit(&self.shared, &mut self.stack);
        self.forwarder.set_config(self.shared.local.load_full());
        for i in committed.renewed {
            if let Some(w) = self.watches.get_mut(i as usize) {
                *w = Default::default();
            }
        }
        for i in committed.added {
            let Some(t) = self.shared.tunnel(i) else {
                continue;
            };
            match crate::shared::spawn_receiver(&self.shared, &t) {
                Ok(h) => self
                    .shared
                    .reload_threads
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(h),
                Err(e) => {
                    tracing::error!(tunnel = %t.name, error = %e, "cannot start the tunnel's receive thread")
                }
            }
            tracing::info!(tunnel = %t.name, port = t.listen_port, "reload: tunnel added, listening");
        }
        for t in &diff.tunnels {
            match t.action {
                TunnelAction::Updated => {
                    tracing::info!(tunnel = %t.name, changed = %t.changed.join(", "), "reload: tunnel updated, its WireGuard session kept")
                }
                TunnelAction::Restart => {
                    tracing::info!(tunnel = %t.name, changed = %t.changed.join(", "), "reload: tunnel restarted with a new WireGuard session")
                }
                TunnelAction::Removed => tracing::info!(tunnel = %t.name, "reload: tunnel removed"),
                TunnelAction::Kept | TunnelAction::Added => {}
            }
        }
        self.bgp
            .apply_reload(now, &new, &diff, &mut self.stack, prepared);
        if diff.roa_changed {
            self.bgp.reload_roa(now, new.roa.as_ref());
        }
        if diff.announce_changed {
            self.bgp.reload_announce(now, &new);
        }
        let servers_done = crate::shared::commit_http(&self.shared, http);
        self.drive_stack(now);
        self.config = new;
        let mut answer = refuse(Vec::new());
        if let Response::Reload {
            kept,
            reevaluated,
            restarted,
            added,
            removed,
            static_routes_changed,
            tunnels,
            roa_changed,
            announce_changed,
            servers,
            ..
        } = &mut answer
        {
            *servers = servers_done;
            *static_routes_changed = diff.routes_changed;
            *roa_changed = diff.roa_changed;
            *announce_changed = diff.announce_changed;
            for s in diff.sessions {
                let entry = rr_ctl::ReloadedSession {
                    name: s.name,
                    changed: s.changed,
                };
                match s.action {
                    rr_config::SessionAction::Kept => kept.push(entry.name),
                    rr_config::SessionAction::Reevaluate => reevaluated.push(entry),
                    rr_config::SessionAction::Restart => restarted.push(entry),
                    rr_config::SessionAction::Added => added.push(entry.name),
                    rr_config::SessionAction::Removed => removed.push(entry.name),
                }
            }
            for t in diff.tunnels {
                let entry = rr_ctl::ReloadedSession {
                    name: t.name,
                    changed: t.changed,
                };
                match t.action {
                    TunnelAction::Kept => tunnels.kept.push(entry.name),
                    TunnelAction::Updated => tunnels.updated.push(entry),
                    TunnelAction::Restart => tunnels.restarted.push(entry),
                    TunnelAction::Added => tunnels.added.push(entry.name),
                    TunnelAction::Removed => tunnels.removed.push(entry.name),
                }
            }
        }
        tracing::info!(file = %file, "config reloaded");
        answer
    }

    fn query(&self, req: rr_ctl::Request) -> Response {
        match req {
            rr_ctl::Request::ShowBgp { name } => self.bgp.status(Instant::now(), name.as_deref()),
            rr_ctl::Request::ShowRoutes {
                for_addr,
                all,
                filtered,
                prefix,
            } => self.bgp.routes(for_addr, prefix, all, filtered),
            rr_ctl::Request::ShowRoa => self.bgp.roa_status(Instant::now()),
            _ => Response::Error {
                message: "not a question for the control thread".into(),
            },
        }
    }

    fn tick_tunnels(&mut self) {
        let table = self.shared.tunnels.load_full();
        self.watches.resize_with(table.len(), Default::default);
        for (slot, watch) in table.iter().zip(&mut self.watches) {
            let Some(slot) = slot else {
                continue;
            };
            let (out, stats) = {
                let mut t = slot.tunnel.lock().unwrap_or_else(|e| e.into_inner());
                (t.update_timers(&mut self.buf), t.stats())
            };
            if let Some((to, d)) = out {
                slot.send_datagram(to, d);
            }
            crate::logging::log_tunnel_changes(&slot.name, &watch.observe(&stats));
        }
    }

    /// Runs the stack's timers and sends what it has to send.
    fn drive_stack(&mut self, now: Instant) {
        self.stack.poll(now);
        self.bgp.drive(now, &mut self.stack);
        self.stack.poll(now);
        let fib = self.shared.fib.load();
        // Gathered per tunnel and sent in segmented (GSO) sends, as the receive threads
        // do: one system call per run of segments instead of one per packet.
        let table = self.shared.tunnels.load_full();
        let mut sink = BatchSink::new(&self.shared, &table, &mut self.batch);
        while let Some((scope, mut packet)) = self.stack.poll_transmit() {
            let d = self
                .forwarder
                .from_local(now, scope, &mut packet, &fib, &mut sink);
            if let rr_dataplane::forward::Disposition::Dropped { reason, .. } = d {
                tracing::trace!(%reason, "own packet dropped");
            }
        }
        sink.flush();
    }

    fn local_packet(&mut self, scope: IfIndex, packet: Vec<u8>) {
        if let Some(a) = probe::parse_answer(&packet) {
            let now = Instant::now();
            for p in self.probes.iter_mut().filter(|p| !p.done) {
                // An echo reply must come from the address pinged; errors may come
                // from any router on the way (they quote our request).
                let from_target = a.kind != AnswerKind::EchoReply || a.from == p.req.addr;
                if p.ident == a.ident && p.seq == a.seq && !p.answered && from_target {
                    p.answered = true;
                    let rtt = now.duration_since(p.sent_at).as_secs_f64() * 1000.0;
                    match p.req.mode {
                        ProbeMode::Ping { .. } => {
                            let ok = a.kind == AnswerKind::EchoReply;
                            if ok {
                                p.received += 1;
                            }
                            p.emit(Response::PingReply {
                                seq: p.seq,
                                from: Some(a.from.to_string()),
                                ttl: Some(a.ttl),
                                rtt_ms: Some(rtt),
                                error: (!ok).then(|| a.kind.describe().to_string()),
                            });
                        }
                        ProbeMode::Traceroute { .. } => {
                            let reached = a.kind != AnswerKind::TimeExceeded;
                            p.emit(Response::Hop {
                                ttl: p.ttl,
                                from: Some(a.from.to_string()),
                                rtt_ms: Some(rtt),
                                reached: a.kind == AnswerKind::EchoReply,
                            });
                            if reached {
                                p.done = true;
                                p.emit(Response::TracerouteDone {
                                    reached: a.kind == AnswerKind::EchoReply,
                                });
                            }
                        }
                    }
                    return;
                }
            }
        }
        if self.exec.icmp_reply(&packet) {
            return;
        }
        self.stack.receive(Instant::now(), scope, &packet);
    }

    fn start_probe(&mut self, req: ProbeRequest) {
        let fail = |req: &ProbeRequest, m: String| {
            let _ = req.reply.send(Response::Error { message: m });
        };
        let ll = matches!(req.addr, IpAddr::V6(v6) if v6.is_unicast_link_local());
        if ll && req.scope.is_none() {
            return fail(
                &req,
                format!("{} is link-local: name the interface", req.addr),
            );
        }
        let local = self.shared.local.load();
        let is_local = match req.scope {
            Some(s) => local.is_local(s, req.addr),
            None => self.shared.is_local_anywhere(req.addr),
        };
        if is_local {
            return fail(&req, format!("{} is this node's own address", req.addr));
        }
        let egress = match req.scope {
            Some(s) => s,
            None => match self.shared.fib.load().lookup(req.addr) {
                Some((_, nh)) => nh.iface,
                None => return fail(&req, format!("no route to {}", req.addr)),
            },
        };
        let src = match req.addr {
            IpAddr::V4(_) => local.icmp_source_v4(egress).map(IpAddr::V4),
            IpAddr::V6(_) => local.icmp_source_v6(egress, ll).map(IpAddr::V6),
        };
        let Some(src) = src else {
            return fail(
                &req,
                format!(
                    "this node has no address of {}'s family to send from",
                    req.addr
                ),
            );
        };
        self.next_ident = self.next_ident.wrapping_add(1);
        let mut p = ActiveProbe {
            src,
            ident: self.next_ident,
            seq: 0,
            ttl: 0,
            sent_at: Instant::now(),
            answered: true,
            sent: 0,
            received: 0,
            done: false,
            req,
        };
        self.send_next(&mut p, Instant::now());
        self.probes.push(p);
    }

    /// Emits the timeout of the outstanding probe if due, then sends the next one.
    fn drive_probes(&mut self, now: Instant) {
        let mut probes = std::mem::take(&mut self.probes);
        for p in probes.iter_mut().filter(|p| !p.done) {
            let waited = now.duration_since(p.sent_at) >= PROBE_WAIT;
            match p.req.mode {
                ProbeMode::Ping { .. } if waited => {
                    if !p.answered {
                        p.emit(Response::PingReply {
                            seq: p.seq,
                            from: None,
                            ttl: None,
                            rtt_ms: None,
                            error: None,
                        });
                    }
                    self.send_next(p, now);
                }
                ProbeMode::Traceroute { .. } if p.answered || waited => {
                    if !p.answered {
                        p.emit(Response::Hop {
                            ttl: p.ttl,
                            from: None,
                            rtt_ms: None,
                            reached: false,
                        });
                    }
                    self.send_next(p, now);
                }
                _ => {}
            }
        }
        probes.retain(|p| !p.done);
        self.probes = probes;
    }

    fn send_next(&mut self, p: &mut ActiveProbe, now: Instant) {
        let finished = match p.req.mode {
            ProbeMode::Ping { count } => p.sent >= count,
            ProbeMode::Traceroute { max_hops } => p.ttl >= max_hops,
        };
        if finished {
            p.done = true;
            let last = match p.req.mode {
                ProbeMode::Ping { .. } => Response::PingDone {
                    sent: p.sent,
                    received: p.received,
                },
                ProbeMode::Traceroute { .. } => Response::TracerouteDone { reached: false },
            };
            p.emit(last);
            return;
        }
        p.seq = p.seq.wrapping_add(1);
        p.ttl = match p.req.mode {
            ProbeMode::Ping { .. } => 64,
            ProbeMode::Traceroute { .. } => p.ttl + 1,
        };
        p.sent += 1;
        p.sent_at = now;
        p.answered = false;
        if let Some(mut pkt) = probe::echo_request(p.src, p.req.addr, p.ttl, p.ident, p.seq) {
            let fib = self.shared.fib.load();
            let mut sink = NodeSink {
                shared: &self.shared,
                buf: &mut self.buf,
            };
            let d = self
                .forwarder
                .from_local(now, p.req.scope, &mut pkt, &fib, &mut sink);
            if let rr_dataplane::forward::Disposition::Dropped { reason, .. } = d {
                p.emit(Response::Error {
                    message: format!("probe to {} not sent: {reason}", p.req.addr),
                });
                p.done = true;
            }
        }
    }
}
