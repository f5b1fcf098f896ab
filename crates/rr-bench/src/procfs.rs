//! What the benchmark reads from `/proc` (CPU time of a process and of its threads as
//! utime + stime in clock ticks, threads' run time in nanoseconds from `schedstat`,
//! machine-wide CPU time, per-socket UDP receive drops), a socket's receive buffer (from
//! `ss`), and the calling thread's own CPU clock.

use std::collections::BTreeMap;
use std::time::Duration;

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// utime + stime of a `/proc/.../stat` line. The command name (field 2) may contain
/// spaces and parentheses, so fields are counted after the last `)`.
fn stat_cpu(stat: &str) -> Option<Duration> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ")": state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(Duration::from_secs_f64(
        (utime + stime) as f64 / ticks_per_second(),
    ))
}

/// CPU time used so far by process `pid` (all its threads, live and dead).
pub fn process_cpu(pid: u32) -> Option<Duration> {
    stat_cpu(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// CPU time per live thread of `pid`: thread id → (name, CPU time).
pub fn thread_cpu(pid: u32) -> BTreeMap<u32, (String, Duration)> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for e in dir.flatten() {
        let Some(tid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let path = e.path();
        let name = std::fs::read_to_string(path.join("comm"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        if let Some(cpu) = std::fs::read_to_string(path.join("stat"))
            .ok()
            .and_then(|s| stat_cpu(&s))
        {
            out.insert(tid, (name, cpu));
        }
    }
    out
}

/// A thread's run time in nanoseconds, re-read from an open
/// `/proc/PID/task/TID/schedstat` (its first field: time on a CPU, exact rather than in
/// ticks), so that sampling it every few milliseconds costs one `pread`.
pub struct RunTime {
    file: std::fs::File,
    buf: [u8; 96],
}

impl RunTime {
    pub fn open(pid: u32, tid: u32) -> Option<RunTime> {
        let file = std::fs::File::open(format!("/proc/{pid}/task/{tid}/schedstat")).ok()?;
        let mut t = RunTime { file, buf: [0; 96] };
        t.read().map(|_| t)
    }

    pub fn read(&mut self) -> Option<Duration> {
        use std::os::unix::fs::FileExt;
        let n = self.file.read_at(&mut self.buf, 0).ok()?;
        let text = std::str::from_utf8(&self.buf[..n]).ok()?;
        let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
        Some(Duration::from_nanos(ns))
    }
}

/// Run time of all live threads of `pid` from their `schedstat` (nanoseconds); `None`
/// if the kernel does not keep it.
pub fn process_runtime(pid: u32) -> Option<Duration> {
    let mut total = Duration::ZERO;
    for e in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let tid = e.file_name().to_str()?.parse::<u32>().ok()?;
        total += RunTime::open(pid, tid)?.read()?;
    }
    Some(total)
}

/// Names of the live threads of `pid`, by thread id.
pub fn thread_names(pid: u32) -> BTreeMap<u32, String> {
    thread_cpu(pid)
        .into_iter()
        .map(|(tid, (name, _))| (tid, name))
        .collect()
}

/// The receive buffer (`SO_RCVBUF` as the kernel holds it, i.e. doubled) of the UDP
/// socket bound to local `port`, from `ss -m` (iproute2); `None` without `ss`.
pub fn udp_rcvbuf(port: u16) -> Option<u64> {
    let out = std::process::Command::new("ss")
        .args(["-Huamn", &format!("sport = :{port}")])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let at = text.find(",rb")? + 3;
    let digits: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// Receive-queue drops of every UDP socket bound to local `port` (IPv4 and IPv6 tables).
pub fn udp_drops(port: u16) -> u64 {
    let mut total = 0;
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = f
                .get(1)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) {
                total += f.last().and_then(|d| d.parse::<u64>().ok()).unwrap_or(0);
            }
        }
    }
    total
}

/// Whether some UDP socket is bound to `port`.
pub fn udp_port_bound(port: u16) -> bool {
    ["/proc/net/udp", "/proc/net/udp6"].iter().any(|table| {
        std::fs::read_to_string(table).is_ok_and(|text| {
            text.lines().skip(1).any(|line| {
                line.split_whitespace()
                    .nth(1)
                    .and_then(|a| a.rsplit(':').next())
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
                    == Some(port)
            })
        })
    })
}

/// Machine-wide CPU time from the first line of `/proc/stat`: (busy, idle, steal), where
/// busy counts user, nice, system, irq and softirq time, and idle counts iowait too.
pub fn machine_cpu() -> Option<(Duration, Duration, Duration)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let get = |i: usize| f.get(i).copied().unwrap_or(0);
    let d = |t: u64| Duration::from_secs_f64(t as f64 / ticks_per_second());
    Some((
        d(get(0) + get(1) + get(2) + get(5) + get(6)),
        d(get(3) + get(4)),
        d(get(7)),
    ))
}

/// CPU time consumed so far by the calling thread (`CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid out-pointer.
    unsafe {
        libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts);
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A number from a `/proc/sys` file.
pub fn sysctl(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_comm() {
        let line = "1234 (rx-a (x) y) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 3";
        let cpu = stat_cpu(line).unwrap();
        assert_eq!(cpu, Duration::from_secs_f64(300.0 / ticks_per_second()));
    }
}
