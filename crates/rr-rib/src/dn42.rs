//! The DN42 prefix filter: which networks may be routed in DN42 at all.
//!
//! What it is: the rules of the DN42 registry's `data/filter.txt` (IPv4) and
//! `data/filter6.txt` (IPv6), copied here as constant tables from the snapshot in
//! `/work/shared/data/dn42_registry/` (registry commit fa214c53, 2023-10-22), and the
//! matcher the registry prescribes: rules sorted by number, the first rule whose prefix
//! contains the network and whose [min, max] length range holds its length decides
//! (permit or deny); a network no rule matches is denied. This is the DN42 wiki's
//! `is_valid_network()` BIRD function, plus the deny rules the wiki's copy leaves out
//! (e.g. 0001 deny 172.22.166.0/24). A unit test checks the tables against the real
//! files.
//!
//! What it is not: ROA validation (origin AS per prefix), nor a parser of the registry
//! files at run time: a newer registry needs this table updated by hand.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{Ipv4Addr, Ipv6Addr};

/// One line of the filter tables: `Nr Action Prefix MinLen MaxLen`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The rule number (rules are applied in this order).
    pub nr: u16,
    /// `permit` (true) or `deny`.
    pub permit: bool,
    /// The range of addresses the rule covers.
    pub prefix: IpNet,
    /// Shortest prefix length the rule applies to.
    pub min_len: u8,
    /// Longest prefix length the rule applies to.
    pub max_len: u8,
}

const fn v4(nr: u16, permit: bool, a: [u8; 4], len: u8, min_len: u8, max_len: u8) -> Rule {
    Rule {
        nr,
        permit,
        prefix: IpNet::V4(Ipv4Net::new_assert(
            Ipv4Addr::new(a[0], a[1], a[2], a[3]),
            len,
        )),
        min_len,
        max_len,
    }
}

const fn v6(nr: u16, permit: bool, s: [u16; 3], len: u8, min_len: u8, max_len: u8) -> Rule {
    Rule {
        nr,
        permit,
        prefix: IpNet::V6(Ipv6Net::new_assert(
            Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0),
            len,
        )),
        min_len,
        max_len,
    }
}

/// DN42 registry `data/filter.txt`, in order.
pub const IPV4_RULES: [Rule; 11] = [
    v4(1, false, [172, 22, 166, 0], 24, 24, 32), // blocked (abuse)
    v4(1001, true, [172, 20, 0, 0], 24, 28, 32), // anycast
    v4(1002, true, [172, 21, 0, 0], 24, 28, 32), // anycast
    v4(1003, true, [172, 22, 0, 0], 24, 28, 32), // anycast
    v4(1004, true, [172, 23, 0, 0], 24, 28, 32), // anycast
    v4(1100, true, [172, 20, 0, 0], 14, 21, 29), // dn42 main net
    v4(2001, true, [10, 100, 0, 0], 14, 14, 32), // ChaosVPN
    v4(2002, true, [10, 127, 0, 0], 16, 16, 32), // NeoNetwork
    v4(2003, true, [10, 0, 0, 0], 8, 15, 24),    // IC-VPN / Freifunk
    v4(3001, true, [172, 31, 0, 0], 16, 16, 32), // ChaosVPN
    v4(9999, false, [0, 0, 0, 0], 0, 0, 32),     // the rest
];

/// DN42 registry `data/filter6.txt`, in order.
pub const IPV6_RULES: [Rule; 3] = [
    v6(10, false, [0xfdd6, 0x6302, 0x7c04], 48, 48, 128), // filter test
    v6(1001, true, [0xfd00, 0, 0], 8, 44, 64),            // ULA
    v6(9999, false, [0, 0, 0], 0, 0, 128),                // the rest
];

/// True when the top `len` bits of `a` and `b` are equal (`len` <= `bits`).
fn same_top(a: u128, b: u128, len: u8, bits: u32) -> bool {
    let len = u32::from(len);
    len == 0 || len > bits || ((a ^ b) >> (bits - len)) == 0
}

impl Rule {
    /// The rule applies to `net`: same family, `net` inside `prefix`, length within
    /// [min_len, max_len].
    pub fn matches(&self, net: &IpNet) -> bool {
        let len = net.prefix_len();
        if len < self.min_len || len > self.max_len || len < self.prefix.prefix_len() {
            return false;
        }
        match (self.prefix, net) {
            (IpNet::V4(r), IpNet::V4(n)) => same_top(
                u128::from(u32::from(r.addr())),
                u128::from(u32::from(n.addr())),
                r.prefix_len(),
                32,
            ),
            (IpNet::V6(r), IpNet::V6(n)) => same_top(
                u128::from(r.addr()),
                u128::from(n.addr()),
                r.prefix_len(),
                128,
            ),
            _ => false,
        }
    }
}

/// The rule that decides `net`: the first matching one of its family's table.
pub fn rule_for(net: &IpNet) -> Option<&'static Rule> {
    let rules: &'static [Rule] = match net {
        IpNet::V4(_) => &IPV4_RULES,
        IpNet::V6(_) => &IPV6_RULES,
    };
    rules.iter().find(|r| r.matches(net))
}

/// True when DN42 may route `net` (the first matching rule permits it).
pub fn is_valid_network(net: &IpNet) -> bool {
    rule_for(net).is_some_and(|r| r.permit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    /// Reads a registry filter file: lines starting with a digit are rules.
    fn parse_registry(text: &str) -> Vec<Rule> {
        text.lines()
            .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                Rule {
                    nr: f[0].parse().unwrap(),
                    permit: match f[1] {
                        "permit" => true,
                        "deny" => false,
                        other => panic!("unknown action {other}"),
                    },
                    prefix: f[2].parse().unwrap(),
                    min_len: f[3].parse().unwrap(),
                    max_len: f[4].parse().unwrap(),
                }
            })
            .collect()
    }

    fn registry_file(name: &str) -> String {
        let path = format!(
            "{}/../../../shared/data/dn42_registry/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn tables_equal_the_registry_files() {
        let v4 = parse_registry(&registry_file("filter.txt"));
        let v6 = parse_registry(&registry_file("filter6.txt"));
        assert_eq!(v4.len(), 11);
        assert_eq!(v6.len(), 3);
        assert_eq!(v4, IPV4_RULES.to_vec());
        assert_eq!(v6, IPV6_RULES.to_vec());
        // The registry says: sorted by number, first match wins.
        assert!(IPV4_RULES.windows(2).all(|w| w[0].nr < w[1].nr));
        assert!(IPV6_RULES.windows(2).all(|w| w[0].nr < w[1].nr));
    }

    #[test]
    fn concrete_networks() {
        let ok = [
            "172.20.0.0/28",   // anycast, rule 1001
            "172.20.0.16/32",  // anycast up to /32
            "172.20.0.0/24",   // main net /24, rule 1100
            "172.23.255.0/29", // main net
            "172.22.166.0/23", // not inside the denied /24
            "10.100.0.0/14",
            "10.127.5.0/32",
            "10.0.0.0/15",
            "10.10.0.0/24",
            "172.31.7.0/24",
            "fd00::/44",
            "fd42:d42:d42::/48",
            "fdd6:6302:7c04::/47", // shorter than the denied /48
        ];
        let denied = [
            "172.22.166.0/24",       // rule 0001
            "172.22.166.128/25",     // rule 0001
            "172.20.0.0/20",         // too short for 1100
            "172.20.1.0/30",         // too long for the main net
            "10.0.0.0/8",            // 2003 wants /15../24
            "10.1.2.0/25",           // 2003 wants at most /24
            "192.168.0.0/16",        // 9999
            "0.0.0.0/0",             // 9999
            "fd00::/8",              // 1001 wants /44../64
            "fd42:d42:d42::/65",     // longer than /64
            "fdd6:6302:7c04::/48",   // rule 0010
            "fdd6:6302:7c04:1::/64", // rule 0010
            "2001:db8::/32",         // 9999
        ];
        for n in ok {
            assert!(is_valid_network(&net(n)), "{n} should be valid");
        }
        for n in denied {
            assert!(!is_valid_network(&net(n)), "{n} should be denied");
        }
        assert_eq!(rule_for(&net("172.22.166.0/24")).unwrap().nr, 1);
        assert_eq!(rule_for(&net("172.20.0.0/28")).unwrap().nr, 1001);
        assert_eq!(rule_for(&net("172.20.0.0/24")).unwrap().nr, 1100);
        assert_eq!(rule_for(&net("10.0.0.0/25")).unwrap().nr, 9999);
    }
}
