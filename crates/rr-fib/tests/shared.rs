//! `SharedFib` under concurrency: snapshots that readers keep stay what they were, a
//! reader thread never sees a batch half applied, and a writer is never blocked for long
//! by a reader that holds a snapshot.

use ipnet::IpNet;
use rr_fib::{Change, Fib, NextHop, SharedFib, SPARE_WAIT};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn nh(i: u32) -> NextHop {
    NextHop {
        iface: i,
        gateway: None,
    }
}

/// Prefixes of both families and lengths in different trie levels (root, nodes, deep
/// IPv6), with an address inside each.
fn group() -> Vec<(IpNet, IpAddr)> {
    let mut out = Vec::new();
    for i in 0..64u32 {
        let (p, a) = match i % 4 {
            0 => (format!("10.{i}.0.0/16"), format!("10.{i}.1.1")),
            1 => (format!("172.20.{i}.0/24"), format!("172.20.{i}.9")),
            2 => (format!("fd00:{i:x}::/48"), format!("fd00:{i:x}::1")),
            _ => (
                format!("2001:db8:{i:x}::1/128"),
                format!("2001:db8:{i:x}::1"),
            ),
        };
        out.push((p.parse().unwrap(), a.parse().unwrap()));
    }
    out
}

/// Batch `g`: every prefix of the group through tunnel `g`, plus some churn elsewhere
/// (routes added and withdrawn) so that the copies really diverge between batches.
fn batch(group: &[(IpNet, IpAddr)], g: u32) -> Vec<Change> {
    let mut changes: Vec<Change> = group.iter().map(|(p, _)| (*p, Some(nh(g)))).collect();
    for k in 0..50u32 {
        let p: IpNet = format!("100.{}.{k}.0/24", g % 200).parse().unwrap();
        changes.push((p, Some(nh(g))));
        let old: IpNet = format!("100.{}.{k}.0/24", (g + 199) % 200).parse().unwrap();
        changes.push((old, None));
    }
    changes
}

#[test]
fn a_reader_thread_never_sees_a_batch_half_applied() {
    let group = group();
    let shared = SharedFib::new(Fib::new());
    shared.apply(&batch(&group, 0)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let checked = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (shared, stop, checked, group) =
            (shared.clone(), stop.clone(), checked.clone(), group.clone());
        std::thread::spawn(move || {
            let mut last = 0;
            while !stop.load(Ordering::Relaxed) {
                let fib = shared.load();
                let seen: Vec<u32> = group
                    .iter()
                    .map(|(_, a)| fib.lookup_nh(*a).map_or(u32::MAX, |n| n.iface))
                    .collect();
                let g = seen[0];
                assert!(seen.iter().all(|&x| x == g), "torn snapshot: {seen:?}");
                assert!(g >= last, "went back from batch {last} to {g}");
                last = g;
                drop(fib);
                checked.fetch_add(1, Ordering::Relaxed);
            }
            last
        })
    };
    for g in 1..=300 {
        shared.apply(&batch(&group, g)).unwrap();
        if g % 50 == 0 {
            // Let the reader run between bursts on a busy machine.
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    // Give the reader a chance to see the last batch, then stop it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while checked.load(Ordering::Relaxed) < 100 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    stop.store(true, Ordering::Relaxed);
    let last = reader.join().expect("reader saw consistent snapshots");
    assert!(checked.load(Ordering::Relaxed) >= 100, "the reader ran");
    assert!(last <= 300);
    // And the published table is the last batch, whole.
    let fib = shared.load();
    for (_, a) in &group {
        assert_eq!(fib.lookup_nh(*a), Some(nh(300)));
    }
    assert_eq!(fib.len(), group.len() + 50);
}

#[test]
fn kept_snapshots_do_not_change_and_do_not_block_the_writer() {
    let group = group();
    let shared = SharedFib::new(Fib::new());
    shared.apply(&batch(&group, 1)).unwrap();
    shared.apply(&batch(&group, 2)).unwrap();
    // Held across several writes: one the writer would want as its spare next.
    let kept = shared.load_full();
    let before = kept.routes();
    let guard = shared.load();
    for g in 3..8 {
        let t = Instant::now();
        shared.apply(&batch(&group, g)).unwrap();
        assert!(
            t.elapsed() < SPARE_WAIT + Duration::from_secs(2),
            "a held snapshot costs the writer at most SPARE_WAIT and a copy"
        );
    }
    assert_eq!(kept.routes(), before, "the kept snapshot is unchanged");
    for (_, a) in &group {
        assert_eq!(kept.lookup_nh(*a), Some(nh(2)));
        assert_eq!(guard.lookup_nh(*a), Some(nh(2)));
        assert_eq!(shared.load().lookup_nh(*a), Some(nh(7)));
    }
    drop((kept, guard));
    // With the snapshots gone the writer is back to replaying; the result is the same.
    for g in 8..12 {
        shared.apply(&batch(&group, g)).unwrap();
    }
    let mut single = Fib::new();
    for g in 1..12 {
        single.apply(&batch(&group, g)).unwrap();
    }
    assert_eq!(shared.routes(), single.routes());
}

#[test]
fn update_closures_publish_once_and_can_replace_the_table() {
    let shared = SharedFib::new(Fib::new());
    let before = shared.load_full();
    let n = shared.update(|f| {
        f.insert("10.0.0.0/8".parse().unwrap(), nh(1));
        f.insert("10.1.0.0/16".parse().unwrap(), nh(2));
        f.len()
    });
    assert_eq!(n, 2);
    assert!(before.is_empty(), "published once, as a new snapshot");
    // A closure that builds a fresh table: the other copy cannot catch up by replay,
    // and the next writes must still see exactly this table.
    shared.update(|f| {
        let mut fresh = Fib::new();
        fresh.insert("192.168.0.0/16".parse().unwrap(), nh(3));
        *f = fresh;
    });
    shared
        .apply(&[("192.168.1.0/24".parse().unwrap(), Some(nh(4)))])
        .unwrap();
    let routes: Vec<String> = shared
        .load()
        .routes()
        .iter()
        .map(|(p, _)| p.to_string())
        .collect();
    assert_eq!(routes, ["192.168.0.0/16", "192.168.1.0/24"]);
    // A closure that changes nothing publishes nothing.
    let current = shared.load_full();
    shared.update(|f| f.get(&"192.168.0.0/16".parse().unwrap()));
    assert!(Arc::ptr_eq(&current, &shared.load_full()));
}
