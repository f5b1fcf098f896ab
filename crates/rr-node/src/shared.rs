//! The state every thread of a node shares, the tunnels' receive threads, and start-up.

use crate::control::{self, ControlMsg};
use crate::ctl_server;
use crate::tunnels::{self, Limiters, TunnelSlot, TunnelTable};
use crate::udp::{unmap, RECV_BATCH, RECV_BUF};
use arc_swap::ArcSwap;
use ipnet::IpNet;
use rr_config::Config;
use rr_dataplane::forward::{Disposition, DropReason, Forwarder, LocalConfig, Sink};
use rr_dataplane::tunnel::{Received, MAX_DATAGRAM};
use rr_fib::{Fib, IfIndex, NextHop, SharedFib};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("interface \"{name}\": cannot bind UDP port {port}")]
    Bind {
        name: String,
        port: u16,
        source: std::io::Error,
    },
    #[error("control socket {path}")]
    ControlSocket {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("control socket {path}: another node is already serving it")]
    ControlSocketInUse { path: PathBuf },
    #[error("the node's own stack: {0}")]
    Stack(rr_stack::StackError),
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
    #[error("{what}: cannot listen")]
    BgpListen {
        what: String,
        source: std::io::Error,
    },
    #[error("gateway \"{name}\": cannot listen on {listen}")]
    Gateway {
        name: String,
        listen: SocketAddr,
        source: std::io::Error,
    },
    #[error("[metrics] listen {listen}: cannot listen")]
    Metrics {
        listen: SocketAddr,
        source: std::io::Error,
    },
    #[error("[looking_glass] listen {listen}: cannot listen")]
    LookingGlass {
        listen: SocketAddr,
        source: std::io::Error,
    },
    #[error("the control thread's poller: {0}")]
    Poller(std::io::Error),
}

/// Wakes the control thread when it sleeps in epoll: senders kick its eventfd only when
/// it said it is about to sleep, so a busy control thread costs them no system call.
pub(crate) struct Waker {
    pub sleeping: AtomicBool,
    pub event: crate::sys::EventFd,
}

impl Waker {
    pub fn kick(&self) {
        if self.sleeping.load(Ordering::SeqCst) && self.sleeping.swap(false, Ordering::SeqCst) {
            self.event.signal();
        }
    }
}

/// The sending side of the control thread's queue: a bounded channel plus its [`Waker`].
#[derive(Clone)]
pub(crate) struct ControlTx {
    tx: mpsc::SyncSender<ControlMsg>,
    pub waker: Arc<Waker>,
}

impl ControlTx {
    /// Queues a message, waiting while the queue is full.
    pub fn send(&self, msg: ControlMsg) -> Result<(), mpsc::SendError<ControlMsg>> {
        let r = self.tx.send(msg);
        self.waker.kick();
        r
    }

    /// Queues a message unless the queue is full.
    pub fn try_send(&self, msg: ControlMsg) -> Result<(), mpsc::TrySendError<ControlMsg>> {
        let r = self.tx.try_send(msg);
        if r.is_ok() {
            self.waker.kick();
        }
        r
    }
}

/// Counts of the `exec` machinery, for tests and diagnostics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecStats {
    /// Sockets of programs the node knows (open, or a failed connect kept for `Status`).
    pub sockets: usize,
    /// Relays and gateways with descriptors or stack endpoints.
    pub relays: usize,
    /// TCP handles of the node's stack in use (BGP's included).
    pub stack_tcp: usize,
    /// The most packets the stack's transmit queue held after a pass over the relays
    /// (bounded by the stack's `tx_queue_packets`, 4096).
    pub stack_tx_peak: usize,
    /// The most programs' ICMP echo requests queued after a pass (at most 1024).
    pub icmp_out_peak: usize,
    /// Datagrams of programs and gateways dropped for want of room in those queues.
    pub dgram_dropped: u64,
}

#[derive(Default)]
pub(crate) struct ExecCounts {
    pub sockets: AtomicU64,
    pub relays: AtomicU64,
    pub stack_tcp: AtomicU64,
    pub stack_tx_peak: AtomicU64,
    pub icmp_out_peak: AtomicU64,
    pub dgram_dropped: AtomicU64,
}

/// Node-wide counters, updated by every thread.
#[derive(Default)]
pub(crate) struct Counters {
    pub forwarded: AtomicU64,
    pub local: AtomicU64,
    pub echo_replied: AtomicU64,
    pub fragmented: AtomicU64,
    pub icmp_errors_sent: AtomicU64,
    pub dropped: [AtomicU64; DropReason::ALL.len()],
}

/// One thread's counts between two flushes into the shared [`Counters`], so that
/// receive threads do not bounce one cache line per packet.
#[derive(Default)]
pub(crate) struct Tally {
    forwarded: u64,
    local: u64,
    echo_replied: u64,
    fragmented: u64,
    icmp_errors_sent: u64,
    dropped: [u64; DropReason::ALL.len()],
}

impl Tally {
    pub fn count(&mut self, d: Disposition) {
        match d {
            Disposition::Forwarded { .. } => self.forwarded += 1,
            Disposition::Fragmented { .. } => self.fragmented += 1,
            Disposition::Local => self.local += 1,
            Disposition::EchoReplied => self.echo_replied += 1,
            Disposition::Dropped { reason, icmp_sent } => {
                self.icmp_errors_sent += u64::from(icmp_sent);
                let i = DropReason::ALL
                    .iter()
                    .position(|r| *r == reason)
                    .unwrap_or(0);
                self.dropped[i] += 1;
            }
        }
    }

    /// Adds the counts to `c` and starts again from zero.
    pub fn flush(&mut self, c: &Counters) {
        let add = |a: &AtomicU64, n: u64| {
            if n > 0 {
                a.fetch_add(n, Ordering::Relaxed);
            }
        };
        add(&c.forwarded, self.forwarded);
        add(&c.local, self.local);
        add(&c.echo_replied, self.echo_replied);
        add(&c.fragmented, self.fragmented);
        add(&c.icmp_errors_sent, self.icmp_errors_sent);
        for (a, n) in c.dropped.iter().zip(self.dropped) {
            add(a, n);
        }
        *self = Tally::default();
    }
}

impl Counters {
    pub fn snapshot(&self, local_queue_full: u64) -> rr_ctl::Counters {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        rr_ctl::Counters {
            forwarded: l(&self.forwarded),
            local: l(&self.local),
            echo_replied: l(&self.echo_replied),
            fragmented: l(&self.fragmented),
            icmp_errors_sent: l(&self.icmp_errors_sent),
            dropped: DropReason::ALL
                .iter()
                .zip(&self.dropped)
                .map(|(r, c)| (r.as_str().to_string(), l(c)))
                .chain([("local_queue_full".to_string(), local_queue_full)])
                .collect(),
        }
    }
}

/// Where a FIB entry came from, for `show routes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RouteSource {
    Static,
    Connected,
}

impl RouteSource {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteSource::Static => "static",
            RouteSource::Connected => "connected",
        }
    }
}

/// Everything the node's threads share.
pub(crate) struct Shared {
    /// The tunnels by interface index (replaced whole by a reload: [`crate::tunnels`]).
    pub tunnels: ArcSwap<TunnelTable>,
    pub fib: SharedFib,
    /// Where each configured route came from (replaced when a reload changes the
    /// static routes; everything else in the FIB came from BGP).
    pub route_sources: std::sync::RwLock<HashMap<IpNet, RouteSource>>,
    /// The node's addresses per tunnel (replaced with the tunnels).
    pub local: ArcSwap<LocalConfig>,
    pub counters: Counters,
    /// To the control thread; bounded, so a flood of packets for the node itself is
    /// dropped (and counted) rather than queued without limit.
    pub control: ControlTx,
    /// Local packets dropped because the control thread was behind.
    pub local_queue_full: AtomicU64,
    pub shutdown: AtomicBool,
    /// One handshake rate limiter per distinct private key.
    pub limiters: Limiters,
    /// Sockets of tunnels a reload removed, until their receive threads let go.
    pub released: crate::tunnels::Released,
    pub exec_counts: ExecCounts,
    /// Receive threads of tunnels a reload added, and HTTP servers it started (joined
    /// at shutdown).
    pub reload_threads: Mutex<Vec<JoinHandle<()>>>,
    /// The `[metrics]` and `[looking_glass]` servers running.
    pub http: Mutex<HttpServers>,
}

/// One HTTP server of the node: where it listens, and its stop flag.
pub(crate) struct HttpServer {
    pub listen: SocketAddr,
    pub stop: Arc<AtomicBool>,
}

/// The node's HTTP servers ([`crate::metrics`], [`crate::lg`]).
#[derive(Default)]
pub(crate) struct HttpServers {
    pub metrics: Option<HttpServer>,
    pub looking_glass: Option<HttpServer>,
}

/// Which HTTP server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HttpKind {
    Metrics,
    LookingGlass,
}

impl HttpKind {
    pub fn section(self) -> &'static str {
        match self {
            HttpKind::Metrics => "[metrics]",
            HttpKind::LookingGlass => "[looking_glass]",
        }
    }

    fn bind(self, listen: SocketAddr) -> Result<std::net::TcpListener, NodeError> {
        match self {
            HttpKind::Metrics => crate::metrics::bind(listen),
            HttpKind::LookingGlass => crate::lg::bind(listen),
        }
    }

    fn slot(self, servers: &mut HttpServers) -> &mut Option<HttpServer> {
        match self {
            HttpKind::Metrics => &mut servers.metrics,
            HttpKind::LookingGlass => &mut servers.looking_glass,
        }
    }

    /// Where `config` has this server listen.
    pub fn listen_of(self, config: &Config) -> Option<SocketAddr> {
        match self {
            HttpKind::Metrics => config.metrics.map(|m| m.listen),
            HttpKind::LookingGlass => config.looking_glass.map(|l| l.listen),
        }
    }
}

/// Starts server `kind` on `listener` (its own thread) and records it in
/// [`Shared::http`].
pub(crate) fn spawn_http(
    shared: &Arc<Shared>,
    kind: HttpKind,
    listen: SocketAddr,
    listener: std::net::TcpListener,
) -> std::io::Result<JoinHandle<()>> {
    let stop = Arc::new(AtomicBool::new(false));
    let (s, flag) = (shared.clone(), stop.clone());
    let handle = std::thread::Builder::new()
        .name(match kind {
            HttpKind::Metrics => "metrics".into(),
            HttpKind::LookingGlass => "looking-glass".into(),
        })
        .spawn(move || match kind {
            HttpKind::Metrics => crate::metrics::serve(&s, listener, &flag),
            HttpKind::LookingGlass => crate::lg::serve(&s, listener, &flag),
        })?;
    *kind.slot(&mut shared.http.lock().unwrap_or_else(|e| e.into_inner())) =
        Some(HttpServer { listen, stop });
    Ok(handle)
}

/// A reload's change of one HTTP server, prepared: the new listener already bound.
pub(crate) struct HttpChange {
    kind: HttpKind,
    /// Where it listens from now on (`None`: stopped) and its listener.
    to: Option<(SocketAddr, std::net::TcpListener)>,
}

/// The HTTP servers whose `listen` differs in `new`, with their new listeners bound
/// (a failure refuses the reload). A server moving to an address its old listener
/// holds (e.g. 127.0.0.1:9324 to [::]:9324) cannot be bound here: refused.
pub(crate) fn plan_http(shared: &Shared, new: &Config) -> Result<Vec<HttpChange>, String> {
    let servers = shared.http.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = Vec::new();
    for kind in [HttpKind::Metrics, HttpKind::LookingGlass] {
        let now = match kind {
            HttpKind::Metrics => servers.metrics.as_ref(),
            HttpKind::LookingGlass => servers.looking_glass.as_ref(),
        }
        .map(|s| s.listen);
        let want = kind.listen_of(new);
        if now == want {
            continue;
        }
        let to = match want {
            Some(listen) => Some((listen, kind.bind(listen).map_err(|e| error_line(&e))?)),
            None => None,
        };
        out.push(HttpChange { kind, to });
    }
    Ok(out)
}

/// `e` and its sources, one line.
pub(crate) fn error_line(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(c) = source {
        s.push_str(": ");
        s.push_str(&c.to_string());
        source = c.source();
    }
    s
}

/// Applies prepared HTTP server changes: old servers stopped, new ones started.
/// Returns what was done, as the reload answer words it.
pub(crate) fn commit_http(shared: &Arc<Shared>, changes: Vec<HttpChange>) -> Vec<String> {
    let mut done = Vec::new();
    for HttpChange { kind, to } in changes {
        let old = kind
            .slot(&mut shared.http.lock().unwrap_or_else(|e| e.into_inner()))
            .take();
        if let Some(old) = old {
            old.stop.store(true, Ordering::Relaxed);
        }
        match to {
            Some((listen, listener)) => match spawn_http(shared, kind, listen, listener) {
                Ok(h) => {
                    shared
                        .reload_threads
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(h);
                    tracing::info!(%listen, "reload: {} listening", kind.section());
                    done.push(format!("{} on {listen}", kind.section()));
                }
                Err(e) => {
                    tracing::error!(error = %e, "reload: cannot start the {} thread", kind.section());
                    done.push(format!("{} not started: {e}", kind.section()));
                }
            },
            None => {
                tracing::info!("reload: {} stopped", kind.section());
                done.push(format!("{} stopped", kind.section()));
            }
        }
    }
    done
}

impl Shared {
    /// Encrypts `packet` for tunnel `iface` and sends it.
    pub fn transmit(&self, iface: IfIndex, packet: &[u8], buf: &mut [u8]) {
        let Some(slot) = self.tunnel(iface) else {
            return;
        };
        let out = {
            let mut t = slot.tunnel.lock().unwrap_or_else(|e| e.into_inner());
            t.send(packet, buf)
        };
        if let Some((to, datagram)) = out {
            slot.send_datagram(to, datagram);
        }
    }

    /// Hands a packet for the node itself to the control thread, or counts it dropped
    /// when the control thread is behind (never blocks: the control thread itself
    /// delivers its loopback packets through here).
    pub fn deliver_local(&self, scope: IfIndex, packet: &[u8]) {
        if self
            .control
            .try_send(ControlMsg::Local(scope, packet.to_vec()))
            .is_err()
        {
            self.local_queue_full.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Tunnel `i`, unless there is none (or a reload removed it).
    pub fn tunnel(&self, i: IfIndex) -> Option<Arc<TunnelSlot>> {
        self.tunnels.load().get(i as usize).cloned().flatten()
    }

    /// The running tunnels, by index.
    pub fn live_tunnels(&self) -> Vec<Arc<TunnelSlot>> {
        self.tunnels.load().iter().flatten().cloned().collect()
    }

    /// Whether `addr` is one of the node's addresses on any tunnel (or a global one).
    pub fn is_local_anywhere(&self, addr: IpAddr) -> bool {
        let local = self.local.load();
        (0..local.ifaces.len().max(1) as IfIndex).any(|s| local.is_local(s, addr))
    }

    pub fn iface_name(&self, i: IfIndex) -> String {
        self.tunnel(i)
            .map(|t| t.name.clone())
            .unwrap_or_else(|| format!("#{i}"))
    }

    pub fn iface_by_name(&self, name: &str) -> Option<IfIndex> {
        self.tunnels
            .load()
            .iter()
            .flatten()
            .find(|t| t.name == name)
            .map(|t| t.index)
    }
}

/// The data plane's sink on a node: encrypt-and-send, or hand to the control thread.
pub(crate) struct NodeSink<'a> {
    pub shared: &'a Shared,
    pub buf: &'a mut [u8],
}

impl Sink for NodeSink<'_> {
    fn transmit(&mut self, iface: IfIndex, packet: &[u8]) {
        self.shared.transmit(iface, packet, self.buf);
    }

    fn deliver_local(&mut self, scope: IfIndex, packet: &[u8]) {
        self.shared.deliver_local(scope, packet);
    }
}

/// A running node; dropping it does not stop it, [`NodeHandle::shutdown`] does.
pub struct NodeHandle {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    control_socket: PathBuf,
}

impl NodeHandle {
    /// The control socket's path.
    pub fn control_socket(&self) -> &std::path::Path {
        &self.control_socket
    }

    /// UDP ports the tunnels listen on, in interface index order (the config's order
    /// until a reload adds or removes tunnels).
    pub fn listen_ports(&self) -> Vec<u16> {
        self.shared
            .live_tunnels()
            .iter()
            .map(|t| t.listen_port)
            .collect()
    }

    /// Counts of the `exec` relays (published by the control thread after each pass).
    pub fn exec_stats(&self) -> ExecStats {
        let c = &self.shared.exec_counts;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed) as usize;
        ExecStats {
            sockets: l(&c.sockets),
            relays: l(&c.relays),
            stack_tcp: l(&c.stack_tcp),
            stack_tx_peak: l(&c.stack_tx_peak),
            icmp_out_peak: l(&c.icmp_out_peak),
            dgram_dropped: c.dgram_dropped.load(Ordering::Relaxed),
        }
    }

    /// Re-reads the config file the node was started with and applies what changed, as
    /// `ctl reload` does (for SIGHUP); the answer says what was done or why nothing was.
    pub fn reload(&self) -> rr_ctl::Response {
        reload(&self.shared)
    }

    /// The same reload, as a job another thread can run (SIGHUP's: the thread that
    /// waits for signals must stay free for SIGTERM while a reload resolves names).
    pub fn reloader(&self) -> impl FnOnce() -> rr_ctl::Response + Send + 'static {
        let shared = self.shared.clone();
        move || reload(&shared)
    }

    /// Stops every thread and removes the control socket.
    pub fn shutdown(self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        let _ = self.shared.control.send(ControlMsg::Shutdown);
        for t in self.threads {
            let _ = t.join();
        }
        let more = std::mem::take(
            &mut *self
                .shared
                .reload_threads
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for t in more {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.control_socket);
    }
}

/// The FIB a config starts with: static routes, and the networks of interface addresses
/// wider than a host (a /30 on a tunnel is reachable through it).
fn initial_fib(
    config: &Config,
    index_of: impl Fn(&str) -> Option<IfIndex>,
) -> (Fib, HashMap<IpNet, RouteSource>) {
    let mut fib = Fib::new();
    let mut sources = HashMap::new();
    for (net, nh, source) in configured_routes(config, index_of) {
        fib.insert(net, nh);
        sources.insert(net, source);
    }
    (fib, sources)
}

/// The routes a config puts in the FIB by itself (see [`initial_fib`]), in that order;
/// `index_of` names the running tunnels' indexes.
pub(crate) fn configured_routes(
    config: &Config,
    index_of: impl Fn(&str) -> Option<IfIndex>,
) -> Vec<(IpNet, NextHop, RouteSource)> {
    let mut out = Vec::new();
    for iface in &config.interfaces {
        let Some(i) = index_of(&iface.name) else {
            continue;
        };
        for a in &iface.addresses {
            let host = a.max_prefix_len() == a.prefix_len();
            let ll = matches!(a.addr(), IpAddr::V6(v6) if v6.is_unicast_link_local());
            if !host && !ll {
                let nh = NextHop {
                    iface: i,
                    gateway: None,
                };
                out.push((a.trunc(), nh, RouteSource::Connected));
            }
        }
    }
    for r in &config.routes {
        let Some(iface) = index_of(&r.interface) else {
            continue;
        };
        let nh = NextHop {
            iface,
            gateway: r.gateway,
        };
        out.push((r.prefix, nh, RouteSource::Static));
    }
    out
}

/// How long a reload may take (reading the file, resolving endpoints, applying).
const RELOAD_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Asks the control thread to reload the config file the node was started with, and
/// waits for its answer (`ctl reload`, SIGHUP).
pub(crate) fn reload(shared: &Shared) -> rr_ctl::Response {
    let (tx, rx) = mpsc::channel();
    match shared
        .control
        .send(ControlMsg::Query(rr_ctl::Request::Reload, tx))
    {
        Ok(()) => rx
            .recv_timeout(RELOAD_WAIT)
            .unwrap_or_else(|_| rr_ctl::Response::Error {
                message: "the node did not finish the reload in time".into(),
            }),
        Err(_) => rr_ctl::Response::Error {
            message: "the node is shutting down".into(),
        },
    }
}

pub(crate) fn start(config: Config) -> Result<NodeHandle, NodeError> {
    let limiters = Limiters::default();
    let table = tunnels::initial(&config, &limiters)?;
    let local = tunnels::local_config(&table, config.router_addresses());
    let (fib, sources) = initial_fib(&config, |name| {
        config.interface(name).map(|(i, _)| i as IfIndex)
    });
    let (control_tx, control_rx) = mpsc::sync_channel(CONTROL_QUEUE);
    let waker = Arc::new(Waker {
        sleeping: AtomicBool::new(false),
        event: crate::sys::EventFd::new().map_err(NodeError::Poller)?,
    });
    let shared = Arc::new(Shared {
        tunnels: ArcSwap::from_pointee(table),
        fib: SharedFib::new(fib),
        route_sources: std::sync::RwLock::new(sources),
        local: ArcSwap::from_pointee(local),
        counters: Counters::default(),
        control: ControlTx {
            tx: control_tx,
            waker,
        },
        local_queue_full: AtomicU64::new(0),
        shutdown: AtomicBool::new(false),
        limiters,
        released: Default::default(),
        exec_counts: ExecCounts::default(),
        reload_threads: Mutex::new(Vec::new()),
        http: Mutex::new(HttpServers::default()),
    });

    // Everything that can fail without threads comes first; the control socket last,
    // so a refused start leaves no socket file behind.
    let control = control::Control::new(shared.clone(), &config)?;
    let mut http = Vec::new();
    for kind in [HttpKind::Metrics, HttpKind::LookingGlass] {
        if let Some(listen) = kind.listen_of(&config) {
            http.push((kind, listen, kind.bind(listen)?));
        }
    }
    let control_socket = ctl_server::socket_path(config.router.control_socket.as_deref());
    let listener = ctl_server::bind(&control_socket)?;
    let mut threads = Vec::new();
    let spawned = (|| {
        let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name)
                .spawn(f)
                .map_err(NodeError::Thread)
        };
        for t in shared.live_tunnels() {
            threads.push(spawn_receiver(&shared, &t).map_err(NodeError::Thread)?);
        }
        threads.push(spawn(
            "control".into(),
            Box::new(move || control.run(control_rx)),
        )?);
        let s = shared.clone();
        threads.push(spawn(
            "ctl".into(),
            Box::new(move || ctl_server::serve(&s, listener)),
        )?);
        for (kind, listen, l) in http {
            threads.push(spawn_http(&shared, kind, listen, l).map_err(NodeError::Thread)?);
        }
        Ok(())
    })();
    if let Err(e) = spawned {
        let half = NodeHandle {
            shared,
            threads,
            control_socket,
        };
        half.shutdown();
        return Err(e);
    }
    for t in shared.live_tunnels() {
        tracing::info!(tunnel = %t.name, port = t.listen_port, "tunnel listening");
    }
    Ok(NodeHandle {
        shared,
        threads,
        control_socket,
    })
}

/// Packets and requests queued for the control thread at most.
const CONTROL_QUEUE: usize = 4096;

/// Bytes of encrypted datagrams gathered for one segmented send.
pub(crate) const TX_BATCH_BYTES: usize = 60_000;

/// The receive threads' sink: encrypted packets for the same tunnel and endpoint are
/// gathered and leave in one segmented send (GSO) at the end of the receive batch.
pub(crate) struct BatchSink<'a> {
    shared: &'a Shared,
    /// The tunnels as they were when the batch began.
    table: &'a TunnelTable,
    /// `TX_BATCH_BYTES` of gathered datagrams plus room to encrypt one more.
    buf: &'a mut [u8],
    used: usize,
    /// Size of each gathered datagram; only the last may be shorter.
    segment: usize,
    count: usize,
    target: Option<(IfIndex, SocketAddr)>,
    /// A shorter datagram was gathered: nothing may follow it in this send.
    closed: bool,
}

impl<'a> BatchSink<'a> {
    /// A sink gathering into `buf`, which must hold `TX_BATCH_BYTES` plus one
    /// datagram ([`batch_buffer`]).
    pub fn new(shared: &'a Shared, table: &'a TunnelTable, buf: &'a mut [u8]) -> BatchSink<'a> {
        BatchSink {
            shared,
            table,
            buf,
            used: 0,
            segment: 0,
            count: 0,
            target: None,
            closed: false,
        }
    }

    /// Sends what is gathered.
    pub fn flush(&mut self) {
        if let Some((iface, to)) = self.target.take() {
            if let Some(Some(slot)) = self.table.get(iface as usize) {
                let segment = (self.count > 1).then_some(self.segment);
                slot.send_segments(to, &self.buf[..self.used], segment);
            }
        }
        self.used = 0;
        self.count = 0;
    }
}

impl Sink for BatchSink<'_> {
    fn transmit(&mut self, iface: IfIndex, packet: &[u8]) {
        // The slot borrows the table, not the sink: the sink may flush meanwhile.
        let table = self.table;
        let Some(Some(slot)) = table.get(iface as usize) else {
            return;
        };
        // Room for the packet, WireGuard's padding and header, or a handshake initiation.
        if self.used + packet.len() + 64 + 148 > self.buf.len() {
            self.flush();
        }
        let start = self.used;
        let out = {
            let mut t = slot.tunnel.lock().unwrap_or_else(|e| e.into_inner());
            t.send(packet, &mut self.buf[start..])
                .map(|(to, d)| (to, d.len(), d.first() == Some(&4)))
        };
        let Some((to, len, is_data)) = out else {
            return;
        };
        let max = slot.socket.max_segments();
        if !is_data || max <= 1 {
            // A handshake initiation (no session yet), or no GSO here: send it alone.
            slot.send_datagram(to, &self.buf[start..start + len]);
            return;
        }
        let joins = self.target == Some((iface, to))
            && !self.closed
            && len <= self.segment
            && self.count < max
            && start + len <= TX_BATCH_BYTES;
        if !joins && self.count > 0 {
            self.flush();
            self.buf.copy_within(start..start + len, 0);
        }
        if self.count == 0 {
            self.target = Some((iface, to));
            self.segment = len;
            self.closed = false;
        }
        self.closed |= len < self.segment;
        self.used += len;
        self.count += 1;
    }

    fn deliver_local(&mut self, scope: IfIndex, packet: &[u8]) {
        self.shared.deliver_local(scope, packet);
    }
}

/// A buffer for a [`BatchSink`].
pub(crate) fn batch_buffer() -> Vec<u8> {
    vec![0u8; TX_BATCH_BYTES + MAX_DATAGRAM + 256]
}

/// Starts the receive thread of tunnel `t`.
pub(crate) fn spawn_receiver(
    shared: &Arc<Shared>,
    t: &TunnelSlot,
) -> std::io::Result<JoinHandle<()>> {
    let s = shared.clone();
    let index = t.index;
    std::thread::Builder::new()
        .name(format!("rx-{}", t.name))
        .spawn(move || receive_loop(&s, index))
}

/// Tunnel `index`'s receive thread: a batch of datagrams -> WireGuard -> forwarding
/// decision -> gathered, encrypted, out in segmented sends. It takes the tunnel's slot
/// anew for each batch (a reload may replace it, or its socket) and ends when the
/// tunnel is removed.
fn receive_loop(shared: &Shared, index: IfIndex) {
    let mut bufs = vec![vec![0u8; RECV_BUF]; RECV_BATCH];
    let mut meta = vec![quinn_udp::RecvMeta::default(); RECV_BATCH];
    let mut plain = vec![0u8; MAX_DATAGRAM];
    let mut out = batch_buffer();
    let mut forwarder = Forwarder::new(shared.local.load_full());
    let mut tally = Tally::default();
    // The thread's own reference to the tables, taken anew only when a reload replaced
    // them: a batch costs no write to a reference count other threads share.
    let mut table = shared.tunnels.load_full();
    let refresh = |table: &mut Arc<TunnelTable>| {
        let current = shared.tunnels.load();
        if !Arc::ptr_eq(table, &current) {
            *table = arc_swap::Guard::into_inner(current);
        }
    };
    while !shared.shutdown.load(Ordering::Relaxed) {
        refresh(&mut table);
        let Some(Some(slot)) = table.get(index as usize) else {
            tracing::debug!(index, "tunnel removed: its receive thread ends");
            return;
        };
        {
            let local = shared.local.load();
            if !Arc::ptr_eq(forwarder.config(), &local) {
                forwarder.set_config(arc_swap::Guard::into_inner(local));
            }
        }
        let socket = Arc::as_ptr(&slot.socket);
        let n = match slot
            .socket
            .recv(&mut bufs, &mut meta, Duration::from_millis(250))
        {
            Ok(n) => n,
            Err(e) => {
                tracing::trace!(tunnel = %slot.name, error = %e, "receive error");
                // A persistent error must not spin a core.
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
        };
        if n == 0 {
            continue;
        }
        // A reload during the wait may have removed the tunnel, replaced its slot, or
        // given its socket to another tunnel (renamed, port taken over): the batch goes
        // to whoever has the socket now, or nowhere.
        refresh(&mut table);
        let owner = match table.get(index as usize) {
            Some(Some(s)) if Arc::as_ptr(&s.socket) == socket => Some(s),
            _ => table
                .iter()
                .flatten()
                .find(|s| Arc::as_ptr(&s.socket) == socket),
        };
        let Some(slot) = owner else {
            continue;
        };
        let fib = shared.fib.load();
        let now = Instant::now();
        let mut sink = BatchSink::new(shared, &table, &mut out);
        for (m, buf) in meta[..n].iter().zip(&bufs) {
            let from = unmap(m.addr);
            let stride = if m.stride == 0 { m.len } else { m.stride };
            for datagram in buf[..m.len].chunks(stride.max(1)) {
                let received = {
                    let mut t = slot.tunnel.lock().unwrap_or_else(|e| e.into_inner());
                    match t.receive(from, datagram, &mut plain, &mut |to, d| {
                        slot.send_datagram(to, d)
                    }) {
                        Received::Packet(p) => Some(p.len()),
                        Received::Control => None,
                        Received::Rejected(e) => {
                            tracing::trace!(tunnel = %slot.name, %from, error = ?e, "datagram rejected");
                            None
                        }
                    }
                };
                if let Some(len) = received {
                    let d =
                        forwarder.from_tunnel(now, slot.index, &mut plain[..len], &fib, &mut sink);
                    tally.count(d);
                }
            }
        }
        sink.flush();
        tally.flush(&shared.counters);
    }
}
