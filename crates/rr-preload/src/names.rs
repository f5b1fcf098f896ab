//! Name resolution through the node: `getaddrinfo`, `getnameinfo` and `gethostbyname*`.
//!
//! What it is: glibc's resolver opens its sockets with internal `__socket`/`__connect`
//! calls that a preload cannot see, so names are hooked at this level instead. The node
//! answers [`ExecRequest::Resolve`] (DN42 names through DN42 servers) or says `Kernel`,
//! and then libc answers as usual. Results are built the way glibc builds them so the
//! program frees them with glibc's own `freeaddrinfo`: one `malloc` block per
//! `addrinfo` holding the struct and its `sockaddr`, `ai_canonname` a separate `malloc`
//! on the first entry only with `AI_CANONNAME`.
//!
//! What it is not: a resolver. No DNS packets are made here; numeric hosts, a NULL host
//! and `AI_NUMERICHOST` never leave libc.

use crate::ctl::{self, CtlError};
use crate::sys;
use libc::{addrinfo, c_char, c_int, hostent};
use rr_ctl::exec::{ExecRequest, ExecResponse, Family};
use std::ffi::CStr;
use std::net::{IpAddr, SocketAddr};

extern "C" {
    /// glibc's reentrant services lookup (not in the `libc` crate).
    fn getservbyname_r(
        name: *const c_char,
        proto: *const c_char,
        result_buf: *mut libc::servent,
        buf: *mut c_char,
        buflen: usize,
        result: *mut *mut libc::servent,
    ) -> c_int;
}

/// The node's answer to a name.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// libc should answer.
    Kernel,
    /// Server failure / timeout (`EAI_AGAIN`, `TRY_AGAIN`).
    Failed,
    /// The addresses, resolver order; empty = no such host.
    Addrs {
        canonical: String,
        addrs: Vec<IpAddr>,
    },
}

/// Asks the node for `name` (never for numeric addresses).
pub fn resolve(name: &str, family: Family) -> Lookup {
    if !crate::enabled() || name.is_empty() || name.parse::<IpAddr>().is_ok() {
        return Lookup::Kernel;
    }
    let op = ExecRequest::Resolve {
        name: name.to_owned(),
        family,
    };
    let l = match ctl::ask(&op, &[]) {
        Ok(ExecResponse::Addresses { canonical, addrs }) => {
            let addrs = addrs
                .into_iter()
                .filter(|a| match family {
                    Family::Any => true,
                    Family::V4 => a.is_ipv4(),
                    Family::V6 => a.is_ipv6(),
                })
                .collect();
            Lookup::Addrs { canonical, addrs }
        }
        Ok(ExecResponse::Failed { .. })
        | Err(CtlError::Protocol | CtlError::Timeout | CtlError::Interrupted) => Lookup::Failed,
        Ok(_) | Err(CtlError::Unreachable) => Lookup::Kernel,
    };
    crate::debug(|| format!("resolve {name} {family:?} → {l:?}"));
    l
}

/// The node's name for an address it carries, if any.
pub fn reverse(ip: IpAddr) -> Option<String> {
    if !crate::enabled() || crate::sock::kernel_only(ip) {
        return None;
    }
    match ctl::ask(&ExecRequest::ReverseResolve { addr: ip }, &[]) {
        Ok(ExecResponse::Name { name }) => Some(name),
        _ => None,
    }
}

/// The family a `getaddrinfo`/`gethostbyname2` caller asks for; `None` = not IP.
pub fn family_of(af: c_int) -> Option<Family> {
    match af {
        libc::AF_UNSPEC => Some(Family::Any),
        libc::AF_INET => Some(Family::V4),
        libc::AF_INET6 => Some(Family::V6),
        _ => None,
    }
}

/// The (socktype, protocol) pairs a `getaddrinfo` result lists, as glibc does: one
/// per socket type when the hints leave it open (no raw entry with a service).
pub fn socktypes(socktype: c_int, protocol: c_int, has_service: bool) -> Vec<(c_int, c_int)> {
    let all = [
        (libc::SOCK_STREAM, libc::IPPROTO_TCP),
        (libc::SOCK_DGRAM, libc::IPPROTO_UDP),
        (libc::SOCK_RAW, 0),
    ];
    all.into_iter()
        .filter(|&(t, p)| {
            (socktype == 0 || socktype == t)
                && (protocol == 0 || protocol == p || t == libc::SOCK_RAW)
                && !(has_service && t == libc::SOCK_RAW)
        })
        .map(|(t, p)| {
            if t == libc::SOCK_RAW {
                (t, protocol)
            } else {
                (t, p)
            }
        })
        .collect()
}

/// The port of a `getaddrinfo` service: a number, or a name from the services
/// database (through libc). `Err` is an `EAI_*` code.
pub fn service_port(
    service: Option<&CStr>,
    socktype: c_int,
    numeric_only: bool,
) -> Result<u16, c_int> {
    let Some(s) = service else { return Ok(0) };
    let text = s.to_str().map_err(|_| libc::EAI_SERVICE)?;
    if let Ok(p) = text.parse::<u16>() {
        return Ok(p);
    }
    if numeric_only {
        return Err(libc::EAI_NONAME);
    }
    let proto: &CStr = if socktype == libc::SOCK_DGRAM {
        c"udp"
    } else {
        c"tcp"
    };
    // SAFETY: servent is plain old data; all-zero is a valid value.
    let mut ent: libc::servent = unsafe { std::mem::zeroed() };
    let mut buf = [0 as c_char; 1024];
    let mut out: *mut libc::servent = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call; buf's length is passed.
    let r = unsafe {
        getservbyname_r(
            s.as_ptr(),
            proto.as_ptr(),
            &mut ent,
            buf.as_mut_ptr(),
            buf.len(),
            &mut out,
        )
    };
    if r != 0 || out.is_null() {
        return Err(libc::EAI_SERVICE);
    }
    Ok(u16::from_be(ent.s_port as u16))
}

/// Builds a glibc-compatible `addrinfo` list; null if `addrs` or `types` is empty or
/// memory is short (the caller maps that to an error).
pub fn build_addrinfo(
    addrs: &[IpAddr],
    types: &[(c_int, c_int)],
    port: u16,
    flags: c_int,
    canonical: Option<&str>,
) -> *mut addrinfo {
    let mut head: *mut addrinfo = std::ptr::null_mut();
    let mut tail: *mut addrinfo = std::ptr::null_mut();
    let ai_size = std::mem::size_of::<addrinfo>();
    for ip in addrs {
        for &(ty, proto) in types {
            let (sa, salen) = sys::encode_sockaddr(SocketAddr::new(*ip, port), false);
            // SAFETY: calloc of a fresh block; checked for null below.
            let p = unsafe { libc::calloc(1, ai_size + sa.len()) } as *mut addrinfo;
            if p.is_null() {
                free_addrinfo(head);
                return std::ptr::null_mut();
            }
            // SAFETY: `p` is a zeroed block of ai_size + 28 bytes, aligned by malloc;
            // the sockaddr goes right after the struct (size 48, so 8-aligned).
            unsafe {
                let sa_ptr = (p as *mut u8).add(ai_size);
                std::ptr::copy_nonoverlapping(sa.as_ptr(), sa_ptr, salen as usize);
                (*p).ai_flags = flags;
                (*p).ai_family = if ip.is_ipv4() {
                    libc::AF_INET
                } else {
                    libc::AF_INET6
                };
                (*p).ai_socktype = ty;
                (*p).ai_protocol = proto;
                (*p).ai_addrlen = salen;
                (*p).ai_addr = sa_ptr.cast();
                if head.is_null() {
                    head = p;
                } else {
                    (*tail).ai_next = p;
                }
            }
            tail = p;
        }
    }
    if let (Some(name), false) = (canonical, head.is_null()) {
        let c = std::ffi::CString::new(name.replace('\0', "")).unwrap_or_default();
        // SAFETY: strdup copies a valid C string into a malloc block freeaddrinfo frees.
        unsafe { (*head).ai_canonname = libc::strdup(c.as_ptr()) };
    }
    head
}

/// Frees a list from [`build_addrinfo`] (on our own error paths only).
fn free_addrinfo(mut p: *mut addrinfo) {
    while !p.is_null() {
        // SAFETY: every node and canonname was malloc'd by build_addrinfo.
        unsafe {
            let next = (*p).ai_next;
            libc::free((*p).ai_canonname.cast());
            libc::free(p.cast());
            p = next;
        }
    }
}

/// Fills a `hostent` in the caller's buffer the way `gethostbyname_r` does. `Err(ERANGE)`
/// when the buffer is too small.
///
/// # Safety
/// `ret` must be writable; `buf` writable for `buflen` bytes.
pub unsafe fn fill_hostent(
    name: &str,
    af: c_int,
    addrs: &[IpAddr],
    ret: *mut hostent,
    buf: *mut c_char,
    buflen: usize,
) -> Result<(), c_int> {
    let alen = if af == libc::AF_INET6 { 16 } else { 4 };
    let octets: Vec<Vec<u8>> = addrs
        .iter()
        .filter_map(|a| match (a, af) {
            (IpAddr::V4(v4), libc::AF_INET) => Some(v4.octets().to_vec()),
            (IpAddr::V6(v6), libc::AF_INET6) => Some(v6.octets().to_vec()),
            _ => None,
        })
        .collect();
    let ptr = std::mem::size_of::<*mut c_char>();
    let base = buf as usize;
    let aligned = (base + ptr - 1) & !(ptr - 1);
    let pad = aligned - base;
    // aliases: [NULL]; addr_list: n pointers + NULL; the addresses; the name + NUL.
    let need = pad + ptr + (octets.len() + 1) * ptr + octets.len() * alen + name.len() + 1;
    if need > buflen {
        return Err(libc::ERANGE);
    }
    // SAFETY: all writes stay within `buf[..need]`, `need <= buflen`; pointer slots are
    // aligned (`aligned` is pointer-aligned, addresses and name come after them).
    unsafe {
        let aliases = aligned as *mut *mut c_char;
        *aliases = std::ptr::null_mut();
        let list = aliases.add(1);
        let data = list.add(octets.len() + 1) as *mut u8;
        for (i, o) in octets.iter().enumerate() {
            let dst = data.add(i * alen);
            std::ptr::copy_nonoverlapping(o.as_ptr(), dst, alen);
            *list.add(i) = dst.cast();
        }
        *list.add(octets.len()) = std::ptr::null_mut();
        let name_ptr = data.add(octets.len() * alen);
        std::ptr::copy_nonoverlapping(name.as_ptr(), name_ptr, name.len());
        *name_ptr.add(name.len()) = 0;
        (*ret).h_name = name_ptr.cast();
        (*ret).h_aliases = aliases;
        (*ret).h_addrtype = af;
        (*ret).h_length = alen as c_int;
        (*ret).h_addr_list = list;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socktypes_like_glibc() {
        assert_eq!(socktypes(0, 0, false).len(), 3);
        assert_eq!(
            socktypes(0, 0, true),
            vec![
                (libc::SOCK_STREAM, libc::IPPROTO_TCP),
                (libc::SOCK_DGRAM, libc::IPPROTO_UDP)
            ]
        );
        assert_eq!(
            socktypes(libc::SOCK_DGRAM, 0, true),
            vec![(libc::SOCK_DGRAM, libc::IPPROTO_UDP)]
        );
        assert_eq!(
            socktypes(0, libc::IPPROTO_TCP, true),
            vec![(libc::SOCK_STREAM, libc::IPPROTO_TCP)]
        );
    }

    #[test]
    fn service_numbers_and_names() {
        assert_eq!(service_port(None, 0, false), Ok(0));
        assert_eq!(service_port(Some(c"8080"), 0, false), Ok(8080));
        assert_eq!(service_port(Some(c"http"), 0, true), Err(libc::EAI_NONAME));
        assert_eq!(
            service_port(Some(c"no-such-service-x"), 0, false),
            Err(libc::EAI_SERVICE)
        );
    }

    #[test]
    fn addrinfo_list_frees_with_glibc() {
        let addrs: Vec<IpAddr> = vec!["172.20.0.53".parse().unwrap(), "fd42::53".parse().unwrap()];
        let types = socktypes(0, 0, true);
        let p = build_addrinfo(&addrs, &types, 53, libc::AI_CANONNAME, Some("ns.dn42"));
        assert!(!p.is_null());
        let mut n = 0;
        let mut cur = p;
        let mut seen = Vec::new();
        while !cur.is_null() {
            // SAFETY: a list we just built.
            unsafe {
                let len = (*cur).ai_addrlen;
                let b = std::slice::from_raw_parts((*cur).ai_addr as *const u8, len as usize);
                seen.push(sys::decode_sockaddr(b).unwrap());
                if n == 0 {
                    assert_eq!(CStr::from_ptr((*cur).ai_canonname).to_str(), Ok("ns.dn42"));
                } else {
                    assert!((*cur).ai_canonname.is_null());
                }
                cur = (*cur).ai_next;
            }
            n += 1;
        }
        assert_eq!(n, 4);
        assert_eq!(seen[0].to_string(), "172.20.0.53:53");
        assert_eq!(seen[3].to_string(), "[fd42::53]:53");
        // SAFETY: glibc's own freeaddrinfo must accept the layout.
        unsafe { libc::freeaddrinfo(p) };
    }
}
