//! Where a webhook may send (SPEC §8), without I/O: a webhook's URL is given by whoever
//! holds a project token, so without this check it would let them make the server POST to
//! its own loopback admin ports, a cloud metadata address or the private network, and tell
//! open ports from closed ones by the delivery outcomes.
//!
//! Loopback, private, link-local, shared, unspecified, multicast and broadcast addresses are
//! forbidden unless a range of the operator's `--webhook-allow-cidr` holds them. A URL is
//! parsed as reqwest (and a browser) parses it, so every spelling of an address literal
//! (`127.1`, `0x7f000001`, `2130706433`, `0177.0.0.1`, `[::ffff:127.0.0.1]`) is the address
//! it would connect to. Names are checked after resolution, at delivery (`deliver`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// An address range, `ADDR/LEN`; a bare address is a range of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    /// The first address (the bits past `len` cleared).
    addr: IpAddr,
    len: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let bad = || format!("'{s}' is not an address range: expected e.g. 10.0.0.0/8 or fd00::/8");
        let s = s.trim();
        let (addr, len) = match s.split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(len) => match len.parse::<u8>() {
                Ok(n) if n <= max && !len.starts_with('+') => n,
                _ => return Err(bad()),
            },
        };
        Ok(Cidr {
            addr: mask(addr, len),
            len,
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a) & u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4(bits.into())
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a) & u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6(bits.into())
        }
    }
}

impl Cidr {
    /// Whether `ip` is in the range (an IPv4 range holds no IPv6 address, and the reverse).
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.len) == self.addr
    }

    /// For clap: a bad range is a usage error naming it.
    pub fn parse_arg(s: &str) -> Result<Cidr, String> {
        s.parse()
    }
}

/// Why an address may not be reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forbidden {
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918 (`10/8`, `172.16/12`, `192.168/16`), `fc00::/7`, `fec0::/10`.
    Private,
    /// `169.254.0.0/16` (where cloud metadata services answer), `fe80::/10`.
    LinkLocal,
    /// `100.64.0.0/10` (carrier-grade NAT).
    Shared,
    /// `0.0.0.0/8`, `::` (Linux connects `0.0.0.0` to the local host).
    Unspecified,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
}

impl Forbidden {
    /// As said in errors and logs: "a loopback address".
    pub fn describe(self) -> &'static str {
        match self {
            Forbidden::Loopback => "a loopback address",
            Forbidden::Private => "a private address",
            Forbidden::LinkLocal => "a link-local address",
            Forbidden::Shared => "a shared (carrier-grade NAT) address",
            Forbidden::Unspecified => "an unspecified address",
            Forbidden::Multicast => "a multicast address",
            Forbidden::Broadcast => "the broadcast address",
        }
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Forbidden> {
    let [a, b, ..] = ip.octets();
    Some(match (a, b) {
        (0, _) => Forbidden::Unspecified,
        (127, _) => Forbidden::Loopback,
        (10, _) | (192, 168) => Forbidden::Private,
        (172, b) if b & 0xf0 == 16 => Forbidden::Private,
        (169, 254) => Forbidden::LinkLocal,
        (100, b) if b & 0xc0 == 64 => Forbidden::Shared,
        (224..=239, _) => Forbidden::Multicast,
        _ if ip == Ipv4Addr::BROADCAST => Forbidden::Broadcast,
        _ => return None,
    })
}

/// The IPv4 address an IPv6 one stands for, where the IPv6 stack may carry it to IPv4:
/// mapped (`::ffff:a.b.c.d`), the deprecated compatible form (`::a.b.c.d`) and NAT64's
/// well-known prefix (`64:ff9b::a.b.c.d`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s[..6] {
        [0, 0, 0, 0, 0, 0xffff] | [0x64, 0xff9b, 0, 0, 0, 0] => Some(v4),
        // `::` and `::1` are themselves, not 0.0.0.0 and 0.0.0.1.
        [0, 0, 0, 0, 0, 0] if u128::from(ip) > 1 => Some(v4),
        _ => None,
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<Forbidden> {
    if let Some(v4) = embedded_v4(ip) {
        return classify_v4(v4);
    }
    let first = ip.segments()[0];
    Some(match first {
        _ if ip.is_unspecified() => Forbidden::Unspecified,
        _ if ip.is_loopback() => Forbidden::Loopback,
        f if f & 0xfe00 == 0xfc00 => Forbidden::Private,
        f if f & 0xffc0 == 0xfec0 => Forbidden::Private,
        f if f & 0xffc0 == 0xfe80 => Forbidden::LinkLocal,
        f if f & 0xff00 == 0xff00 => Forbidden::Multicast,
        _ => return None,
    })
}

/// What kind of forbidden address `ip` is, if it is one (allowed ranges aside).
pub fn classify(ip: IpAddr) -> Option<Forbidden> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// `Ok` when a webhook may reach `ip`: it is not forbidden, or an allowed range holds it
/// (an IPv6 address that stands for an IPv4 one is allowed by a range of either).
pub fn check_ip(ip: IpAddr, allow: &[Cidr]) -> Result<(), Forbidden> {
    let Some(why) = classify(ip) else {
        return Ok(());
    };
    let v4 = match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4),
        IpAddr::V4(_) => None,
    };
    let allowed = allow
        .iter()
        .any(|c| c.contains(ip) || v4.is_some_and(|v4| c.contains(v4)));
    if allowed { Ok(()) } else { Err(why) }
}

/// A webhook URL's host, as a connection would see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// An address literal, in whatever spelling it was written.
    Ip(IpAddr),
    /// A name, resolved at delivery (lowercase, IDNA-mapped, without a trailing dot).
    Name(String),
}

/// The host reqwest would connect to for `url`.
pub fn host_of(url: &str) -> Result<Host, String> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| format!("'{url}' is not a valid URL: {e}"))?;
    // The parser has already turned every IPv4 spelling into dotted decimal and bracketed
    // IPv6 into its canonical form; a name cannot look like either.
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("'{url}' has no host"))?;
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6
            .parse()
            .map(|ip| Host::Ip(IpAddr::V6(ip)))
            .map_err(|_| format!("'{url}' has an invalid IPv6 address"));
    }
    if let Ok(v4) = host.parse::<Ipv4Addr>() {
        return Ok(Host::Ip(IpAddr::V4(v4)));
    }
    Ok(Host::Name(host.trim_end_matches('.').to_ascii_lowercase()))
}

/// Names every resolver answers with loopback addresses (RFC 6761), whatever DNS says.
fn is_localhost(name: &str) -> bool {
    name == "localhost" || name.ends_with(".localhost")
}

/// The check when a webhook is added: a URL whose host is a forbidden address literal, or
/// `localhost`, is refused with why. (`localhost` may resolve to `127.0.0.1` or `::1`, so
/// it passes only when both are allowed.) Other names are checked at each delivery.
pub fn check_url(url: &str, allow: &[Cidr]) -> Result<(), String> {
    let refused = |host: &dyn fmt::Display, why: Forbidden| {
        format!(
            "forbidden address: the URL's host {host} is {}; a webhook may not reach \
             loopback, private, link-local, shared, unspecified, multicast or broadcast \
             addresses unless the range is allowed with --webhook-allow-cidr",
            why.describe()
        )
    };
    match host_of(url)? {
        Host::Ip(ip) => check_ip(ip, allow).map_err(|why| refused(&ip, why)),
        Host::Name(name) if is_localhost(&name) => {
            let both = [
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ];
            match both.iter().find_map(|ip| check_ip(*ip, allow).err()) {
                Some(why) => Err(refused(&format!("{name} (127.0.0.1 and ::1)"), why)),
                None => Ok(()),
            }
        }
        Host::Name(_) => Ok(()),
    }
}

/// A resolved or literal address a delivery may not connect to.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("forbidden address: {host} is {ip}, {}", why.describe())]
pub struct ForbiddenAddress {
    /// The URL's host.
    pub host: String,
    /// The address refused.
    pub ip: IpAddr,
    /// What kind it is.
    pub why: Forbidden,
}

/// The check at delivery: every address `host` resolved to may be reached, or the first
/// that may not. (One forbidden address refuses them all: connecting to the others only
/// would still let a name that also points inside tell which of its addresses answer.)
pub fn check_resolved(
    host: &str,
    addrs: &[SocketAddr],
    allow: &[Cidr],
) -> Result<(), ForbiddenAddress> {
    for a in addrs {
        if let Err(why) = check_ip(a.ip(), allow) {
            return Err(ForbiddenAddress {
                host: host.to_owned(),
                ip: a.ip(),
                why,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|c| c.parse().unwrap()).collect()
    }

    #[test]
    fn ranges_parse_and_hold_their_addresses() {
        let c: Cidr = "127.0.0.0/8".parse().unwrap();
        assert!(c.contains(ip("127.255.0.1")));
        assert!(!c.contains(ip("128.0.0.1")));
        assert!(!c.contains(ip("::ffff:127.0.0.1")), "families do not mix");
        let host_bits: Cidr = "10.1.2.3/8".parse().unwrap();
        assert_eq!(host_bits.to_string(), "10.0.0.0/8");
        let one: Cidr = "192.168.1.5".parse().unwrap();
        assert_eq!(one.to_string(), "192.168.1.5/32");
        assert!(one.contains(ip("192.168.1.5")) && !one.contains(ip("192.168.1.6")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("10.0.0.1")) && all.contains(ip("255.255.255.255")));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        assert!("::/0".parse::<Cidr>().unwrap().contains(ip("::1")));
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "x/8",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        assert_eq!(
            Cidr::parse_arg("nope").unwrap_err(),
            "'nope' is not an address range: expected e.g. 10.0.0.0/8 or fd00::/8"
        );
    }

    #[test]
    fn every_forbidden_kind_is_classified() {
        for (addr, want) in [
            ("127.0.0.1", Forbidden::Loopback),
            ("127.45.6.7", Forbidden::Loopback),
            ("::1", Forbidden::Loopback),
            ("10.0.0.1", Forbidden::Private),
            ("172.16.0.1", Forbidden::Private),
            ("172.31.255.255", Forbidden::Private),
            ("192.168.1.1", Forbidden::Private),
            ("fc00::1", Forbidden::Private),
            ("fd12:3456::1", Forbidden::Private),
            ("fec0::1", Forbidden::Private),
            ("169.254.169.254", Forbidden::LinkLocal),
            ("fe80::1", Forbidden::LinkLocal),
            ("febf::1", Forbidden::LinkLocal),
            ("100.64.0.1", Forbidden::Shared),
            ("100.127.255.255", Forbidden::Shared),
            ("0.0.0.0", Forbidden::Unspecified),
            ("0.1.2.3", Forbidden::Unspecified),
            ("::", Forbidden::Unspecified),
            ("224.0.0.1", Forbidden::Multicast),
            ("239.255.255.250", Forbidden::Multicast),
            ("ff02::1", Forbidden::Multicast),
            ("255.255.255.255", Forbidden::Broadcast),
            // IPv6 spellings of IPv4 addresses are what they stand for.
            ("::ffff:127.0.0.1", Forbidden::Loopback),
            ("::ffff:7f00:1", Forbidden::Loopback),
            ("::ffff:10.0.0.1", Forbidden::Private),
            ("::ffff:169.254.169.254", Forbidden::LinkLocal),
            ("::ffff:0.0.0.0", Forbidden::Unspecified),
            ("::127.0.0.1", Forbidden::Loopback),
            ("64:ff9b::a9fe:a9fe", Forbidden::LinkLocal),
        ] {
            assert_eq!(classify(ip(addr)), Some(want), "{addr}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for addr in [
            "8.8.8.8",
            "1.1.1.1",
            "172.15.255.255",
            "172.32.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "169.253.0.1",
            "192.167.1.1",
            "126.255.255.255",
            "128.0.0.1",
            "223.255.255.255",
            "2606:4700::1111",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert_eq!(classify(ip(addr)), None, "{addr}");
            assert_eq!(check_ip(ip(addr), &[]), Ok(()), "{addr}");
        }
    }

    #[test]
    fn allowed_ranges_let_forbidden_addresses_through() {
        let allow = cidrs(&["127.0.0.0/8", "fd00::/8"]);
        assert_eq!(check_ip(ip("127.0.0.1"), &allow), Ok(()));
        assert_eq!(check_ip(ip("::ffff:127.0.0.1"), &allow), Ok(()));
        assert_eq!(check_ip(ip("fd00::5"), &allow), Ok(()));
        assert_eq!(check_ip(ip("::1"), &allow), Err(Forbidden::Loopback));
        assert_eq!(check_ip(ip("10.0.0.1"), &allow), Err(Forbidden::Private));
        assert_eq!(
            check_ip(ip("127.0.0.1"), &[]),
            Err(Forbidden::Loopback),
            "nothing is allowed by default"
        );
    }

    #[test]
    fn every_spelling_of_a_literal_is_the_address_it_connects_to() {
        for (url, want) in [
            ("http://127.0.0.1/", "127.0.0.1"),
            ("http://127.1/", "127.0.0.1"),
            ("http://127.0.1/", "127.0.0.1"),
            ("http://0x7f000001/", "127.0.0.1"),
            ("http://0x7f.0.0.1/", "127.0.0.1"),
            ("http://2130706433/", "127.0.0.1"),
            ("http://0177.0.0.1/", "127.0.0.1"),
            ("http://017700000001/", "127.0.0.1"),
            ("http://0/", "0.0.0.0"),
            ("http://0.0.0.0:8080/", "0.0.0.0"),
            ("https://[::1]:9/x", "::1"),
            ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1"),
            ("http://[0:0:0:0:0:ffff:7f00:1]/", "::ffff:127.0.0.1"),
            (
                "http://169.254.169.254/latest/meta-data/",
                "169.254.169.254",
            ),
            ("http://user:pw@10.0.0.1:2375/", "10.0.0.1"),
            ("http://%31%32%37.0.0.1/", "127.0.0.1"),
            ("http://１２７.０.０.１/", "127.0.0.1"),
        ] {
            assert_eq!(host_of(url), Ok(Host::Ip(ip(want))), "{url}");
        }
        assert_eq!(
            host_of("http://Hooks.Example.COM./x"),
            Ok(Host::Name("hooks.example.com".into()))
        );
    }

    #[test]
    fn forbidden_literals_and_localhost_are_refused_when_added() {
        for url in [
            "http://127.1/",
            "http://0x7f000001/",
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://169.254.169.254/",
            "http://10.0.0.1:2375/",
            "http://192.168.0.1/",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
            "http://[fe80::1]/",
            "http://[fd00::1]/",
            "http://localhost:6379/",
            "http://LOCALHOST./",
            "http://api.localhost/",
        ] {
            let err = check_url(url, &[]).unwrap_err();
            assert!(err.starts_with("forbidden address: "), "{url}: {err}");
        }
        assert_eq!(
            check_url("http://127.1:9/", &[]).unwrap_err(),
            "forbidden address: the URL's host 127.0.0.1 is a loopback address; a webhook may \
             not reach loopback, private, link-local, shared, unspecified, multicast or \
             broadcast addresses unless the range is allowed with --webhook-allow-cidr"
        );
        for url in [
            "https://hooks.slack.com/services/T/B/x",
            "http://8.8.8.8/",
            "http://[2606:4700::1111]/",
            "http://localhost.example.com/",
        ] {
            assert_eq!(check_url(url, &[]), Ok(()), "{url}");
        }
        let loopback = cidrs(&["127.0.0.0/8"]);
        assert_eq!(check_url("http://127.1/", &loopback), Ok(()));
        assert_eq!(check_url("http://[::ffff:127.0.0.1]/", &loopback), Ok(()));
        assert!(check_url("http://[::1]/", &loopback).is_err());
        assert!(
            check_url("http://localhost/", &loopback).is_err(),
            "localhost may be ::1"
        );
        assert_eq!(
            check_url("http://localhost/", &cidrs(&["127.0.0.0/8", "::1/128"])),
            Ok(())
        );
    }

    #[test]
    fn one_forbidden_resolved_address_refuses_the_name() {
        let sock = |s: &str| SocketAddr::new(ip(s), 443);
        let public = [sock("93.184.216.34"), sock("2606:2800:220:1::1")];
        assert_eq!(check_resolved("example.com", &public, &[]), Ok(()));
        let mixed = [sock("93.184.216.34"), sock("10.1.2.3")];
        assert_eq!(
            check_resolved("rebind.example", &mixed, &[]),
            Err(ForbiddenAddress {
                host: "rebind.example".into(),
                ip: ip("10.1.2.3"),
                why: Forbidden::Private
            })
        );
        assert_eq!(
            check_resolved("rebind.example", &mixed, &cidrs(&["10.0.0.0/8"])),
            Ok(())
        );
        assert_eq!(
            check_resolved("rebind.example", &mixed, &[])
                .unwrap_err()
                .to_string(),
            "forbidden address: rebind.example is 10.1.2.3, a private address"
        );
    }
}
