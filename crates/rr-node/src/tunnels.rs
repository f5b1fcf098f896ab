//! The node's tunnels by interface index, and how a reload changes them.
//!
//! What it is: [`TunnelSlot`] (one tunnel as the node runs it: its socket, its WireGuard
//! state, what the forwarding plane knows of it), [`TunnelTable`] (the slots by
//! [`IfIndex`], published through arc-swap: the receive threads and every sender read it
//! without a lock), the building of slots from `[[interface]]` sections, and
//! [`TunnelPlan`]: what a reload does to the tunnels (add, restart, update, remove),
//! prepared first — sockets bound, the new addresses checked against the stack — and
//! committed at once only when nothing can fail any more.
//!
//! Indexes are never reused while a node runs: a removed tunnel leaves a hole, an added
//! one takes the next index. The FIB's next hops and the stack's link-local scopes name
//! tunnels by index, so a kept tunnel keeps its routes, its TCP connections, its
//! WireGuard session and its counters. A tunnel whose addresses, MTU, link communities
//! or listen port change keeps its WireGuard session too (the state is shared by the old
//! and the new slot); one whose keys, endpoint or keepalive change gets a new one.
//!
//! What it is not: WireGuard itself (`rr_dataplane::tunnel`), nor the receive loop
//! (`shared`), nor the decision of what changed (`rr_config::diff`).

use crate::shared::{NodeError, Shared};
use crate::udp::TunnelSocket;
use boringtun::noise::rate_limiter::RateLimiter;
use ipnet::IpNet;
use rr_config::{Config, ConfigDiff, InterfaceConfig, TunnelAction};
use rr_dataplane::forward::{IfaceInfo, LocalConfig};
use rr_dataplane::tunnel::{Tunnel, TunnelParams};
use rr_fib::IfIndex;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

/// One tunnel as the node runs it.
pub(crate) struct TunnelSlot {
    pub name: String,
    pub index: IfIndex,
    pub socket: Arc<TunnelSocket>,
    pub listen_port: u16,
    pub public_key: [u8; 32],
    pub peer_public_key: [u8; 32],
    pub persistent_keepalive: Option<u16>,
    pub mtu: u16,
    pub addresses: Vec<IpNet>,
    /// Shared with the slot that replaces this one when only addresses, MTU, link
    /// communities or the port change: the session and its counters go on.
    pub tunnel: Arc<Mutex<Tunnel>>,
    pub tx_errors: Arc<AtomicU64>,
}

impl TunnelSlot {
    /// Sends a datagram to `to` on this tunnel's socket.
    pub fn send_datagram(&self, to: SocketAddr, datagram: &[u8]) {
        self.send_segments(to, datagram, None);
    }

    /// Sends `contents` as datagrams of `segment` bytes each (the last may be shorter).
    pub fn send_segments(&self, to: SocketAddr, contents: &[u8], segment: Option<usize>) {
        let failed = self.socket.send(to, contents, segment);
        if failed > 0 {
            self.tx_errors.fetch_add(failed as u64, Ordering::Relaxed);
            tracing::trace!(tunnel = %self.name, %to, failed, "send failed");
        }
    }
}

/// The tunnels by [`IfIndex`]; `None` where a reload removed one.
pub(crate) type TunnelTable = Vec<Option<Arc<TunnelSlot>>>;

/// Handshakes per second, per private key, before cookies are demanded (boringtun's
/// device uses 10 per peer; ours is shared by all tunnels that use the key).
const HANDSHAKES_PER_SECOND: u64 = 100;

/// One handshake rate limiter per distinct private key (the control thread resets them
/// every second).
#[derive(Default)]
pub(crate) struct Limiters(Mutex<HashMap<[u8; 32], Arc<RateLimiter>>>);

impl Limiters {
    /// The limiter of `private_key` if one exists, else a new one (not recorded: see
    /// [`Limiters::set`]).
    fn get_or_new(&self, private_key: &[u8; 32]) -> Arc<RateLimiter> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(private_key)
            .cloned()
            .unwrap_or_else(|| Tunnel::rate_limiter(private_key, HANDSHAKES_PER_SECOND))
    }

    /// Starts a new second for every limiter.
    pub fn reset_counts(&self) {
        for l in self.0.lock().unwrap_or_else(|e| e.into_inner()).values() {
            l.reset_count();
        }
    }

    /// The limiters in use from now on (those of keys no tunnel uses are dropped).
    fn set(&self, limiters: HashMap<[u8; 32], Arc<RateLimiter>>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = limiters;
    }
}

/// Binds tunnel `name`'s UDP socket (`port` 0: any free port).
pub(crate) fn bind(name: &str, port: u16) -> Result<TunnelSocket, NodeError> {
    TunnelSocket::bind(port).map_err(|source| NodeError::Bind {
        name: name.to_string(),
        port,
        source,
    })
}

/// A new WireGuard state for `ic` at `index`, its handshakes admitted by `limiter`.
fn new_tunnel(ic: &InterfaceConfig, index: IfIndex, limiter: Arc<RateLimiter>) -> Tunnel {
    let params = TunnelParams {
        private_key: ic.private_key.0,
        peer_public_key: ic.peer_public_key.0,
        preshared_key: ic.preshared_key.map(|k| k.0),
        persistent_keepalive: ic.persistent_keepalive,
        endpoint: ic.endpoint,
        index,
    };
    Tunnel::new(&params, limiter)
}

/// The slot of `ic` at `index` on `socket`, with `state` (a kept WireGuard session and
/// its send-error count) or a new session whose handshakes `limiter` admits.
fn slot(
    ic: &InterfaceConfig,
    index: IfIndex,
    socket: Arc<TunnelSocket>,
    state: Option<(Arc<Mutex<Tunnel>>, Arc<AtomicU64>)>,
    limiter: Arc<RateLimiter>,
) -> TunnelSlot {
    let (tunnel, tx_errors) = state.unwrap_or_else(|| {
        (
            Arc::new(Mutex::new(new_tunnel(ic, index, limiter))),
            Arc::new(AtomicU64::new(0)),
        )
    });
    TunnelSlot {
        name: ic.name.clone(),
        index,
        listen_port: socket.local_port(),
        socket,
        public_key: rr_config::keys::public(&ic.private_key).0,
        peer_public_key: ic.peer_public_key.0,
        persistent_keepalive: ic.persistent_keepalive.filter(|k| *k > 0),
        mtu: ic.mtu,
        addresses: ic.addresses.clone(),
        tunnel,
        tx_errors,
    }
}

/// The table a config starts with: every tunnel at its position in the file.
pub(crate) fn initial(config: &Config, limiters: &Limiters) -> Result<TunnelTable, NodeError> {
    let mut table = TunnelTable::new();
    let mut used = HashMap::new();
    for (i, ic) in config.interfaces.iter().enumerate() {
        let socket = Arc::new(bind(&ic.name, ic.listen_port.unwrap_or(0))?);
        let limiter = used
            .entry(ic.private_key.0)
            .or_insert_with(|| limiters.get_or_new(&ic.private_key.0))
            .clone();
        table.push(Some(Arc::new(slot(
            ic,
            i as IfIndex,
            socket,
            None,
            limiter,
        ))));
    }
    limiters.set(used);
    Ok(table)
}

fn is_link_local(a: IpAddr) -> bool {
    matches!(a, IpAddr::V6(v6) if v6.is_unicast_link_local())
}

/// What the forwarding plane knows of the tunnels of `table` (a hole: no addresses).
pub(crate) fn local_config(table: &TunnelTable, router_addrs: Vec<IpAddr>) -> LocalConfig {
    let info = |s: &TunnelSlot| IfaceInfo {
        mtu: s.mtu,
        link_local: s
            .addresses
            .iter()
            .filter_map(|a| match a.addr() {
                IpAddr::V6(v6) if v6.is_unicast_link_local() => Some(v6),
                _ => None,
            })
            .collect(),
        addrs: s
            .addresses
            .iter()
            .map(|a| a.addr())
            .filter(|a| !is_link_local(*a))
            .collect(),
    };
    let hole = IfaceInfo {
        mtu: rr_config::DEFAULT_MTU,
        link_local: Vec::new(),
        addrs: Vec::new(),
    };
    LocalConfig {
        ifaces: table
            .iter()
            .map(|s| s.as_deref().map_or_else(|| hole.clone(), info))
            .collect(),
        router_addrs,
    }
}

/// The stack's addresses for `local`: the global ones (the router's, then every
/// tunnel's), and the link-local ones per tunnel that has any.
pub(crate) fn stack_addresses(local: &LocalConfig) -> (Vec<IpAddr>, Vec<(IfIndex, Vec<Ipv6Addr>)>) {
    let mut global: Vec<IpAddr> = local.router_addrs.clone();
    for i in &local.ifaces {
        for a in &i.addrs {
            if !global.contains(a) {
                global.push(*a);
            }
        }
    }
    let link_local = local
        .ifaces
        .iter()
        .enumerate()
        .filter(|(_, i)| !i.link_local.is_empty())
        .map(|(n, i)| (n as IfIndex, i.link_local.clone()))
        .collect();
    (global, link_local)
}

/// A reload's tunnels, prepared: nothing of the running node has changed yet.
pub(crate) struct TunnelPlan {
    table: TunnelTable,
    local: LocalConfig,
    /// Tunnels whose WireGuard session is new (restarted, added) or gone (removed).
    renewed: Vec<IfIndex>,
    /// New indexes: their receive threads start at commit.
    added: Vec<IfIndex>,
    /// Kept WireGuard sessions pointed at a newly configured endpoint at commit.
    endpoints: Vec<(Arc<Mutex<Tunnel>>, SocketAddr)>,
    /// The handshake limiters of the keys in use afterwards.
    limiters: HashMap<[u8; 32], Arc<RateLimiter>>,
    /// Sockets the new table no longer holds (removed tunnels, ports changed): kept
    /// track of until their receive threads let go of them.
    released: Vec<Arc<TunnelSocket>>,
}

/// Sockets a reload took out of the table, while something (a receive thread in its
/// last `recv`, at most 250 ms) still holds them: a reload right after can take their
/// port over instead of failing to bind it.
#[derive(Default)]
pub(crate) struct Released(Mutex<Vec<Weak<TunnelSocket>>>);

impl Released {
    /// The socket on `port` still open, if any.
    fn take(&self, port: u16) -> Option<Arc<TunnelSocket>> {
        let mut list = self.0.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|w| w.strong_count() > 0);
        list.iter()
            .filter_map(Weak::upgrade)
            .find(|s| s.local_port() == port)
    }

    fn add(&self, sockets: &[Arc<TunnelSocket>]) {
        let mut list = self.0.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|w| w.strong_count() > 0);
        list.extend(sockets.iter().map(Arc::downgrade));
    }
}

/// Prepares the tunnels of `new` as `diff` says: sockets taken over or bound (a port
/// in use elsewhere refuses the reload), the resulting addresses checked by building a
/// throwaway stack. A fixed `listen_port` is taken over from a tunnel that gives it up
/// in the same reload (removed, renamed, or moved to another port), from the tunnel's
/// own socket, or from one a reload just before released, so that renaming a tunnel
/// or swapping two ports works.
pub(crate) fn plan(shared: &Shared, new: &Config, diff: &ConfigDiff) -> Result<TunnelPlan, String> {
    let mut table: TunnelTable = (*shared.tunnels.load_full()).clone();
    let index_of = |table: &TunnelTable, name: &str| {
        table
            .iter()
            .flatten()
            .find(|s| s.name == name)
            .map(|s| s.index)
    };
    // Sockets given up in this reload, by port.
    let mut free: HashMap<u16, Arc<TunnelSocket>> = HashMap::new();
    for change in &diff.tunnels {
        let gives_up = change.action == TunnelAction::Removed
            || change.changed.iter().any(|c| c == "listen_port");
        if let (true, Some(i)) = (gives_up, index_of(&table, &change.name)) {
            if let Some(s) = &table[i as usize] {
                free.insert(s.socket.local_port(), s.socket.clone());
            }
        }
    }
    let socket_for = |ic: &InterfaceConfig,
                      free: &mut HashMap<u16, Arc<TunnelSocket>>|
     -> Result<Arc<TunnelSocket>, String> {
        if let Some(port) = ic.listen_port {
            if let Some(s) = free.remove(&port).or_else(|| shared.released.take(port)) {
                return Ok(s);
            }
        }
        bind(&ic.name, ic.listen_port.unwrap_or(0))
            .map(Arc::new)
            .map_err(|e| crate::shared::error_line(&e))
    };
    let mut limiters: HashMap<[u8; 32], Arc<RateLimiter>> = HashMap::new();
    let mut limiter_for = |key: &[u8; 32]| {
        limiters
            .entry(*key)
            .or_insert_with(|| shared.limiters.get_or_new(key))
            .clone()
    };
    let mut renewed = Vec::new();
    let mut added = Vec::new();
    let mut endpoints = Vec::new();
    let mut released = Vec::new();
    for change in &diff.tunnels {
        let ic = new.interface(&change.name).map(|(_, ic)| ic);
        let old = index_of(&table, &change.name);
        match (change.action, old, ic) {
            (TunnelAction::Kept, _, Some(ic)) => {
                limiter_for(&ic.private_key.0);
            }
            (TunnelAction::Removed, Some(i), _) => {
                if let Some(s) = table[i as usize].take() {
                    released.push(s.socket.clone());
                }
                renewed.push(i);
            }
            (TunnelAction::Added, None, Some(ic)) => {
                let i = table.len() as IfIndex;
                let socket = socket_for(ic, &mut free)?;
                let limiter = limiter_for(&ic.private_key.0);
                table.push(Some(Arc::new(slot(ic, i, socket, None, limiter))));
                renewed.push(i);
                added.push(i);
            }
            (TunnelAction::Updated | TunnelAction::Restart, Some(i), Some(ic)) => {
                let Some(current) = table[i as usize].clone() else {
                    continue;
                };
                let port_changed = change.changed.iter().any(|c| c == "listen_port");
                let socket = if !port_changed {
                    current.socket.clone()
                } else if ic.listen_port == Some(current.socket.local_port()) {
                    // Pinned to the port it already has.
                    free.remove(&current.socket.local_port());
                    current.socket.clone()
                } else {
                    released.push(current.socket.clone());
                    socket_for(ic, &mut free)?
                };
                let limiter = limiter_for(&ic.private_key.0);
                let state = if change.action == TunnelAction::Updated {
                    if let (true, Some(e)) =
                        (change.changed.iter().any(|c| c == "endpoint"), ic.endpoint)
                    {
                        endpoints.push((current.tunnel.clone(), e));
                    }
                    Some((current.tunnel.clone(), current.tx_errors.clone()))
                } else {
                    renewed.push(i);
                    None
                };
                table[i as usize] = Some(Arc::new(slot(ic, i, socket, state, limiter)));
            }
            (action, old, _) => {
                return Err(format!(
                    "tunnel {}: cannot apply {action:?} (running: {})",
                    change.name,
                    if old.is_some() { "yes" } else { "no" }
                ))
            }
        }
    }
    // A socket taken over by another tunnel is not released.
    released.retain(|r| !table.iter().flatten().any(|s| Arc::ptr_eq(&s.socket, r)));
    let local = local_config(&table, shared.local.load().router_addrs.clone());
    let (global, link_local) = stack_addresses(&local);
    rr_stack::Stack::new(Instant::now(), &global, &link_local)
        .map_err(|e| format!("the tunnels' addresses: {e}"))?;
    Ok(TunnelPlan {
        table,
        local,
        renewed,
        added,
        endpoints,
        limiters,
        released,
    })
}

/// What a committed plan leaves to its caller.
pub(crate) struct Committed {
    /// Tunnels whose WireGuard session is new or gone (their state-change watches start
    /// again).
    pub renewed: Vec<IfIndex>,
    /// New indexes, whose receive threads the caller starts.
    pub added: Vec<IfIndex>,
}

impl TunnelPlan {
    /// Publishes the new table and addresses to every thread and to `stack`.
    pub fn commit(self, shared: &Shared, stack: &mut rr_stack::Stack) -> Committed {
        let (global, link_local) = stack_addresses(&self.local);
        if let Err(e) = stack.set_global_addresses(&global) {
            tracing::error!(error = %e, "reload: the stack refused the global addresses");
        }
        for (i, slot) in self.table.iter().enumerate() {
            let i = i as IfIndex;
            if slot.is_none() {
                // Removed now or earlier: its connections end (its sessions are gone).
                stack.remove_scope(i);
                continue;
            }
            let addrs = link_local
                .iter()
                .find(|(s, _)| *s == i)
                .map_or(&[][..], |(_, a)| a.as_slice());
            if let Err(e) = stack.set_link_local(i, addrs) {
                tracing::error!(error = %e, "reload: the stack refused a tunnel's link-local addresses");
            }
        }
        shared.limiters.set(self.limiters);
        for (tunnel, endpoint) in self.endpoints {
            tunnel
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .set_endpoint(endpoint);
        }
        shared.local.store(Arc::new(self.local));
        shared.tunnels.store(Arc::new(self.table));
        shared.released.add(&self.released);
        Committed {
            renewed: self.renewed,
            added: self.added,
        }
    }
}
