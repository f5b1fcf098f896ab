//! Shared builders for the rr-rib integration tests: peers, UPDATEs, and readers of
//! what the table hands out.
#![allow(dead_code)] // each test binary uses a different part of this module

use ipnet::{IpNet, Ipv4Net};
use rr_bgp::packet::{AsPath, AsSegment, Attributes, MpReach, MpUnreach, NextHop, Origin};
use rr_rib::{Family, LimitAction, PeerConfig, PeerUp, Policy, Rib, RibConfig, Update};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const LOCAL: u32 = 4242420001;

pub fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

pub fn v4net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

pub fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

pub fn rib(announce: &[&str]) -> Rib {
    Rib::new(RibConfig {
        announce_communities: Vec::new(),
        roa: None,
        local_asn: LOCAL,
        router_id: v4("172.20.0.1"),
        announce: announce.iter().map(|s| net(s)).collect(),
    })
}

/// A peer with policy `all` both ways and no limit.
pub fn peer(name: &str, asn: u32, iface: Option<u32>) -> PeerConfig {
    PeerConfig {
        name: name.to_string(),
        remote_asn: asn,
        iface,
        import: Policy::All,
        export: Policy::All,
        import_limit: None,
        limit_action: LimitAction::Block,
        import_policy: [None, None],
        export_policy: [None, None],
        link: None,
    }
}

/// Both families, classic IPv4 next hop, global + link-local IPv6.
pub fn up_dual() -> PeerUp {
    PeerUp {
        families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
        extended_next_hop: false,
        next_hop_v4: Some(v4("172.20.0.1")),
        next_hop_v6: Some(v6("fd00:1::1")),
        next_hop_ll: Some(v6("fe80::1")),
    }
}

pub fn attrs(path: &[u32]) -> Attributes {
    Attributes {
        origin: Origin::Igp,
        as_path: AsPath {
            segments: if path.is_empty() {
                vec![]
            } else {
                vec![AsSegment::Sequence(path.to_vec())]
            },
        },
        ..Attributes::default()
    }
}

/// Classic IPv4 announcement.
pub fn ann4(a: Attributes, nh: &str, nets: &[&str]) -> Update {
    let mut a = a;
    a.next_hop = Some(v4(nh));
    Update {
        attrs: Some(a),
        nlri: nets.iter().map(|s| v4net(s)).collect(),
        ..Update::default()
    }
}

/// MP_REACH announcement of `nets` (all one family) with next hop `nh`.
pub fn ann_mp(a: Attributes, nh: NextHop, nets: &[&str]) -> Update {
    let nlri: Vec<IpNet> = nets.iter().map(|s| net(s)).collect();
    let family = match nlri.first() {
        Some(IpNet::V4(_)) => Family::Ipv4Unicast,
        _ => Family::Ipv6Unicast,
    };
    Update {
        attrs: Some(a),
        mp_reach: Some(MpReach {
            family,
            next_hop: nh,
            nlri,
        }),
        ..Update::default()
    }
}

/// Link-local-only next hop, as DN42 sessions carry it.
pub fn ll(s: &str) -> NextHop {
    NextHop::V6Pair(Ipv6Addr::UNSPECIFIED, v6(s))
}

pub fn wd4(nets: &[&str]) -> Update {
    Update {
        withdrawn: nets.iter().map(|s| v4net(s)).collect(),
        ..Update::default()
    }
}

pub fn wd6(nets: &[&str]) -> Update {
    Update {
        mp_unreach: Some(MpUnreach {
            family: Family::Ipv6Unicast,
            withdrawn: nets.iter().map(|s| net(s)).collect(),
        }),
        ..Update::default()
    }
}

/// The FIB changes as a sorted map.
pub fn fib(rib: &mut Rib) -> BTreeMap<IpNet, Option<rr_fib::NextHop>> {
    let changes = rib.take_fib_changes();
    let map: BTreeMap<_, _> = changes.iter().cloned().collect();
    assert_eq!(map.len(), changes.len(), "one entry per prefix");
    map
}

pub fn via(iface: u32, gw: &str) -> Option<rr_fib::NextHop> {
    Some(rr_fib::NextHop {
        iface,
        gateway: Some(ip(gw)),
    })
}

/// What a batch of exported UPDATEs says.
#[derive(Debug, Default)]
pub struct Exported {
    /// Announced prefix -> the attributes and next hop it went with.
    pub announced: BTreeMap<IpNet, (Attributes, Option<NextHop>)>,
    /// Withdrawn prefixes.
    pub withdrawn: Vec<IpNet>,
    /// End-of-RIB markers.
    pub eor: Vec<Family>,
    /// UPDATEs that announce something.
    pub announcing_updates: usize,
}

pub fn read(updates: &[Update]) -> Exported {
    let mut e = Exported::default();
    for u in updates {
        if let Some(f) = u.is_end_of_rib() {
            e.eor.push(f);
            continue;
        }
        e.withdrawn
            .extend(u.withdrawn.iter().map(|n| IpNet::V4(*n)));
        if let Some(m) = &u.mp_unreach {
            e.withdrawn.extend(m.withdrawn.iter().copied());
        }
        let mut announces = false;
        for n in &u.nlri {
            let a = u.attrs.clone().expect("announcement without attributes");
            let nh = a.next_hop.map(NextHop::V4);
            assert!(
                e.announced.insert(IpNet::V4(*n), (a, nh)).is_none(),
                "{n} twice"
            );
            announces = true;
        }
        if let Some(m) = &u.mp_reach {
            for n in &m.nlri {
                let a = u.attrs.clone().expect("announcement without attributes");
                assert!(
                    e.announced.insert(*n, (a, Some(m.next_hop))).is_none(),
                    "{n} twice"
                );
                announces = true;
            }
        }
        if announces {
            e.announcing_updates += 1;
        }
    }
    e.withdrawn.sort();
    for w in &e.withdrawn {
        assert!(
            !e.announced.contains_key(w),
            "{w} both withdrawn and announced"
        );
    }
    e
}
