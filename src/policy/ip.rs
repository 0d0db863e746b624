//! IP rules: canonical CIDR ranges, matching, and resolving the caller's address behind
//! trusted proxies.
//!
//! Addresses are canonicalised before matching: an IPv4-mapped IPv6 address such as
//! `::ffff:10.1.2.3` is the IPv4 address `10.1.2.3`, so IPv4 ranges apply to it.

use ipnet::IpNet;
use std::fmt;
use std::net::IpAddr;

/// Most `X-Forwarded-For` entries looked at before the header is refused.
pub const MAX_FORWARDED_HOPS: usize = 32;

/// Why a CIDR range was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IpRangeError {
    /// Not an address or `address/prefix` in canonical notation.
    #[error("is not an IP address or CIDR range")]
    Malformed,
    /// The address has bits set past the prefix length.
    #[error("has host bits set; the canonical range is {canonical}")]
    HostBits {
        /// The range with the host bits cleared.
        canonical: String,
    },
    /// An IPv4-mapped IPv6 range, which must be written in its IPv4 form.
    #[error("is an IPv4-mapped IPv6 range; write it as IPv4")]
    Ipv4Mapped,
}

/// One canonical CIDR range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpRange(IpNet);

impl IpRange {
    /// Parses `address/prefix` or a bare address (a single host: `/32` or `/128`).
    ///
    /// Host bits are refused, not cleared: `10.0.0.1/8` is an error that names `10.0.0.0/8`.
    /// Octets with leading zeros (`010.0.0.1`, read as octal by some parsers) are refused.
    ///
    /// # Errors
    ///
    /// An [`IpRangeError`] describing what is wrong.
    pub fn parse(text: &str) -> Result<Self, IpRangeError> {
        // std's address parser refuses leading zeros; ipnet's would accept `010.0.0.0/8`.
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr = addr.parse::<IpAddr>().map_err(|_| IpRangeError::Malformed)?;
        let net = match prefix {
            None => IpNet::from(addr),
            Some(p) => {
                let canonical_number = p == "0" || (!p.starts_with('0') && p.bytes().all(|b| b.is_ascii_digit()));
                let len = p.parse::<u8>().ok().filter(|_| canonical_number).ok_or(IpRangeError::Malformed)?;
                IpNet::new(addr, len).map_err(|_| IpRangeError::Malformed)?
            }
        };
        if let IpNet::V6(v6) = net
            && v6.addr().to_ipv4_mapped().is_some()
            && v6.prefix_len() >= 96
        {
            return Err(IpRangeError::Ipv4Mapped);
        }
        if net.trunc() != net {
            return Err(IpRangeError::HostBits { canonical: net.trunc().to_string() });
        }
        Ok(Self(net))
    }

    /// Whether the range contains `ip` (already canonical).
    fn contains(&self, ip: &IpAddr) -> bool {
        self.0.contains(ip)
    }

    /// The underlying network.
    pub fn net(&self) -> IpNet {
        self.0
    }
}

impl From<IpAddr> for IpRange {
    fn from(ip: IpAddr) -> Self {
        Self(IpNet::from(ip.to_canonical()))
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A set of ranges: an address is allowed when any range contains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpRules(Vec<IpRange>);

impl IpRules {
    /// Rules that allow every address: `0.0.0.0/0` and `::/0`.
    pub fn anywhere() -> Self {
        // The default networks are 0.0.0.0/0 and ::/0.
        Self(vec![IpRange(IpNet::V4(ipnet::Ipv4Net::default())), IpRange(IpNet::V6(ipnet::Ipv6Net::default()))])
    }

    /// Rules from ranges (may be empty: then nothing is allowed).
    pub fn new(ranges: Vec<IpRange>) -> Self {
        Self(ranges)
    }

    /// Parses each text with [`IpRange::parse`].
    ///
    /// # Errors
    ///
    /// An [`IpRulesError`] naming the first text that is not a canonical range.
    pub fn parse<S: AsRef<str>>(texts: &[S]) -> Result<Self, IpRulesError> {
        texts
            .iter()
            .enumerate()
            .map(|(index, t)| IpRange::parse(t.as_ref()).map_err(|source| IpRulesError { index, source }))
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Whether any range contains `ip` (canonicalised first).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|r| r.contains(&ip))
    }

    /// Whether these rules allow every IPv4 and IPv6 address.
    pub fn is_anywhere(&self) -> bool {
        let nets = || self.0.iter().map(|r| r.0);
        nets().any(|n| matches!(n, IpNet::V4(v4) if v4.prefix_len() == 0))
            && nets().any(|n| matches!(n, IpNet::V6(v6) if v6.prefix_len() == 0))
    }

    /// Whether every address `other` allows is also allowed here.
    pub fn covers(&self, other: &IpRules) -> bool {
        other.0.iter().all(|b| self.0.iter().any(|a| a.0.contains(&b.0)))
    }

    /// The ranges.
    pub fn ranges(&self) -> &[IpRange] {
        &self.0
    }

    /// The ranges as canonical strings, as they appear in a token.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

/// Why a list of IP ranges was refused: the first entry that is not a canonical range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry {index} is not a canonical IP range")]
pub struct IpRulesError {
    /// The entry's position in the list, from 0.
    pub index: usize,
    /// Why the entry was refused.
    #[source]
    pub source: IpRangeError,
}

/// Why the forwarding headers of a request from a trusted proxy were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardedError {
    /// An entry is not an IP address.
    #[error("the forwarding header holds an entry that is not an IP address")]
    Malformed,
    /// A trusted proxy forwarded the request without saying for whom.
    #[error("a trusted proxy sent no forwarding header")]
    Missing,
    /// More entries than [`MAX_FORWARDED_HOPS`].
    #[error("the forwarding header holds more than {MAX_FORWARDED_HOPS} entries")]
    TooManyHops,
    /// A header value is not UTF-8 text.
    #[error("the forwarding header holds a value that is not text")]
    NotText,
}

/// Which header trusted proxies use to say for whom they forward. Only that one is read: a
/// proxy that sets one passes the other through unchanged, so reading both would let a client
/// choose its own address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (the default).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client;proto=https, for="[2001:db8::1]:4711"`.
    Forwarded,
}

impl ForwardedHeader {
    /// The header's name, lower case.
    pub fn name(self) -> &'static str {
        match self {
            Self::XForwardedFor => "x-forwarded-for",
            Self::Forwarded => "forwarded",
        }
    }
}

/// Resolves the caller's address.
///
/// The socket peer is the caller unless it is a trusted proxy. Then the forwarding header's
/// values (all header lines, in order) are read right to left, skipping trusted hops; the first
/// untrusted address is the caller. If every hop is trusted, the leftmost one is. Headers from
/// an untrusted peer are never read; a trusted peer that sends none is refused.
///
/// `values` are the raw header values as bytes (an `http::HeaderValue` or a `&str` both fit),
/// so a value that is not UTF-8 is refused rather than dropped by the caller.
///
/// # Errors
///
/// A [`ForwardedError`] when a trusted proxy sent a malformed, non-UTF-8 or oversized header:
/// it is refused, never skipped, so a bad entry cannot move the decision to another address.
///
/// ```
/// use keysmith::ip::{ForwardedHeader, IpRules, client_ip};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let proxies = IpRules::parse(&["10.0.0.0/8"])?;
/// let caller = client_ip("10.0.0.2".parse()?, ForwardedHeader::XForwardedFor, [b"203.0.113.7"], &proxies)?;
/// assert_eq!(caller, "203.0.113.7".parse::<std::net::IpAddr>()?);
/// # Ok(())
/// # }
/// ```
pub fn client_ip<V: AsRef<[u8]>>(
    peer: IpAddr,
    header: ForwardedHeader,
    values: impl IntoIterator<Item = V>,
    trusted_proxies: &IpRules,
) -> Result<IpAddr, ForwardedError> {
    let peer = peer.to_canonical();
    if !trusted_proxies.contains(peer) {
        return Ok(peer);
    }
    let values = values.into_iter().collect::<Vec<V>>();
    let mut entries: Vec<&str> = Vec::new();
    for value in &values {
        let value = std::str::from_utf8(value.as_ref()).map_err(|_| ForwardedError::NotText)?;
        match header {
            ForwardedHeader::XForwardedFor => entries.extend(value.split(',')),
            // A quote left open would swallow what later proxies appended.
            ForwardedHeader::Forwarded => entries.extend(split_unquoted(value, b',').ok_or(ForwardedError::Malformed)?),
        }
    }
    if entries.len() > MAX_FORWARDED_HOPS {
        return Err(ForwardedError::TooManyHops);
    }
    if entries.is_empty() {
        // Treating the proxy itself as the caller would let anyone behind a proxy that forgot
        // the header borrow the proxy's address.
        return Err(ForwardedError::Missing);
    }
    let mut client = peer;
    for entry in entries.iter().rev() {
        let ip = match header {
            ForwardedHeader::XForwardedFor => entry.trim_matches([' ', '\t']).parse::<IpAddr>().ok(),
            ForwardedHeader::Forwarded => forwarded_for(entry),
        }
        .ok_or(ForwardedError::Malformed)?
        .to_canonical();
        client = ip;
        if !trusted_proxies.contains(ip) {
            break;
        }
    }
    Ok(client)
}

/// Splits on `sep` outside double-quoted strings; `None` when a quote is left open.
fn split_unquoted(text: &str, sep: u8) -> Option<Vec<&str>> {
    let (mut parts, mut start, mut quoted) = (Vec::new(), 0, false);
    for (i, b) in text.bytes().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b if b == sep && !quoted => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quoted {
        return None;
    }
    parts.push(&text[start..]);
    Some(parts)
}

/// An RFC 7230 token: visible ASCII except separators.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && !b"\"(),/:;<=>?@[\\]{}".contains(&b))
}

/// The address in the `for=` parameter of one RFC 7239 element: `for=192.0.2.60`,
/// `for="192.0.2.60:4711"`, `for="[2001:db8::17]:4711"`. Every pair of the element must be a
/// well-formed `token=token` or `token="quoted"`; `unknown`, obfuscated identifiers, missing
/// or repeated `for` are not addresses.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    let mut found = None;
    for pair in split_unquoted(element, b';')? {
        let (name, value) = pair.trim_matches([' ', '\t']).split_once('=')?;
        let value = match value.strip_prefix('"') {
            Some(rest) => rest.strip_suffix('"').filter(|v| !v.contains(['"', '\\']))?,
            None if is_token(value) => value,
            None => return None,
        };
        if !is_token(name) {
            return None;
        }
        if !name.eq_ignore_ascii_case("for") {
            continue;
        }
        if found.is_some() {
            return None;
        }
        let ip = if let Some(rest) = value.strip_prefix('[') {
            let (v6, tail) = rest.split_once(']')?;
            if !(tail.is_empty() || tail.strip_prefix(':').is_some_and(|p| p.parse::<u16>().is_ok())) {
                return None;
            }
            IpAddr::V6(v6.parse().ok()?)
        } else {
            let (addr, port) = value.split_once(':').map_or((value, None), |(a, p)| (a, Some(p)));
            if port.is_some_and(|p| p.parse::<u16>().is_err()) {
                return None;
            }
            IpAddr::V4(addr.parse().ok()?)
        };
        found = Some(ip);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const XFF: ForwardedHeader = ForwardedHeader::XForwardedFor;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn rfc7239_forwarded() {
        let trusted = IpRules::parse(&["127.0.0.1", "10.0.0.0/8"]).unwrap();
        let peer = ip("127.0.0.1");
        let fwd = |v: &'static str| client_ip(peer, ForwardedHeader::Forwarded, [v], &trusted);
        assert_eq!(fwd("for=192.0.2.60;proto=http;by=203.0.113.43"), Ok(ip("192.0.2.60")));
        assert_eq!(fwd("For=\"[2001:db8:cafe::17]:4711\""), Ok(ip("2001:db8:cafe::17")));
        assert_eq!(fwd("for=\"192.0.2.43:47011\", for=10.0.0.2"), Ok(ip("192.0.2.43")));
        assert_eq!(fwd("for=6.6.6.6, for=192.0.2.43, for=10.0.0.9"), Ok(ip("192.0.2.43")));
        assert_eq!(fwd("proto=https;for=192.0.2.1;host=\"a,b\""), Ok(ip("192.0.2.1")));
        // Header lines are joined: an open quote spanning them is refused too.
        let lines = client_ip(peer, ForwardedHeader::Forwarded, ["for=9.9.9.9;x=\"", "for=203.0.113.5"], &trusted);
        assert_eq!(lines, Err(ForwardedError::Malformed));
        for bad in [
            "for=unknown",
            "for=_hidden",
            "proto=https",
            "for=192.0.2.1;for=192.0.2.2",
            "for=\"[::1\"",
            "for=\"192.0.2.1:99999\"",
            "for=192.0.2.1, junk",
            "",
        ] {
            assert_eq!(fwd(bad), Err(ForwardedError::Malformed), "{bad:?}");
        }
        // An X-Forwarded-For value is not read as Forwarded, nor the reverse.
        assert_eq!(fwd("192.0.2.1"), Err(ForwardedError::Malformed));
        assert_eq!(client_ip(peer, XFF, ["for=192.0.2.1"], &trusted), Err(ForwardedError::Malformed));
    }

    #[test]
    fn parses_canonical_ranges() {
        assert_eq!(IpRange::parse("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(IpRange::parse("203.0.113.7").unwrap().to_string(), "203.0.113.7/32");
        assert_eq!(IpRange::parse("2001:db8::/32").unwrap().to_string(), "2001:db8::/32");
        assert_eq!(IpRange::parse("::1").unwrap().to_string(), "::1/128");
    }

    #[test]
    fn refuses_non_canonical_ranges() {
        assert_eq!(IpRange::parse("10.0.0.1/8"), Err(IpRangeError::HostBits { canonical: "10.0.0.0/8".into() }));
        for bad in [
            "010.0.0.0/8",
            "10.0.0.0/08",
            "10.0.0.0/+8",
            "::/129",
            "10.0.0.0/33",
            "10.0.0",
            "10.0.0.0/",
            "",
            " 10.0.0.0/8",
            "fe80::1%eth0",
        ] {
            assert_eq!(IpRange::parse(bad), Err(IpRangeError::Malformed), "{bad:?}");
        }
        assert_eq!(IpRange::parse("::ffff:10.0.0.0/104"), Err(IpRangeError::Ipv4Mapped));
    }

    #[test]
    fn mapped_addresses_match_ipv4_ranges() {
        let rules = IpRules::parse(&["10.0.0.0/8"]).unwrap();
        assert!(rules.contains(ip("10.1.2.3")));
        assert!(rules.contains(ip("::ffff:10.1.2.3")));
        assert!(!rules.contains(ip("11.0.0.1")));
        assert!(!rules.contains(ip("::1")));
    }

    #[test]
    fn anywhere() {
        let any = IpRules::anywhere();
        assert!(any.is_anywhere());
        assert!(any.contains(ip("1.2.3.4")) && any.contains(ip("2001:db8::1")));
        assert_eq!(any.to_strings(), ["0.0.0.0/0", "::/0"]);
        assert!(!IpRules::parse(&["0.0.0.0/0"]).unwrap().is_anywhere());
        assert!(!IpRules::new(vec![]).contains(ip("1.2.3.4")));
    }

    #[test]
    fn covers() {
        let wide = IpRules::parse(&["10.0.0.0/8", "::1"]).unwrap();
        assert!(wide.covers(&IpRules::parse(&["10.1.0.0/16"]).unwrap()));
        assert!(wide.covers(&IpRules::parse(&["::1"]).unwrap()));
        assert!(!wide.covers(&IpRules::parse(&["0.0.0.0/0"]).unwrap()));
    }

    #[test]
    fn untrusted_peer_headers_are_ignored() {
        let trusted = IpRules::parse(&["127.0.0.1"]).unwrap();
        assert_eq!(client_ip(ip("198.51.100.9"), XFF, ["1.2.3.4"], &trusted), Ok(ip("198.51.100.9")));
        // Even garbage from an untrusted peer does not matter: it is not read.
        assert_eq!(client_ip(ip("198.51.100.9"), XFF, ["garbage"], &trusted), Ok(ip("198.51.100.9")));
    }

    #[test]
    fn trusted_chain_is_read_right_to_left() {
        let trusted = IpRules::parse(&["127.0.0.1", "10.0.0.0/8"]).unwrap();
        let peer = ip("127.0.0.1");
        assert_eq!(client_ip(peer, XFF, [] as [&str; 0], &trusted), Err(ForwardedError::Missing));
        assert_eq!(client_ip(peer, XFF, ["203.0.113.5"], &trusted), Ok(ip("203.0.113.5")));
        // The client may put anything on the left; only the first untrusted hop counts.
        assert_eq!(client_ip(peer, XFF, ["6.6.6.6, 203.0.113.5, 10.0.0.2"], &trusted), Ok(ip("203.0.113.5")));
        assert_eq!(client_ip(peer, XFF, ["6.6.6.6", "203.0.113.5,10.0.0.2"], &trusted), Ok(ip("203.0.113.5")));
        assert_eq!(client_ip(peer, XFF, ["10.0.0.3, 10.0.0.2"], &trusted), Ok(ip("10.0.0.3")));
        assert_eq!(client_ip(peer, XFF, ["::ffff:203.0.113.5"], &trusted), Ok(ip("203.0.113.5")));
        assert_eq!(client_ip(ip("::ffff:127.0.0.1"), XFF, ["203.0.113.5"], &trusted), Ok(ip("203.0.113.5")));
    }

    #[test]
    fn header_values_are_bytes_and_non_text_is_refused() {
        let (peer, trusted) = (ip("10.0.0.1"), IpRules::parse(&["10.0.0.0/8"]).unwrap());
        let bytes: [&[u8]; 1] = [b"203.0.113.5"];
        assert_eq!(client_ip(peer, XFF, bytes, &trusted), Ok(ip("203.0.113.5")));
        // A value that is not UTF-8 is refused, never skipped to reach an earlier hop.
        let lines: [&[u8]; 2] = [b"6.6.6.6", b"203.0.113.5, \xff"];
        assert_eq!(client_ip(peer, XFF, lines, &trusted), Err(ForwardedError::NotText));
        // From an untrusted peer the headers are not read at all.
        assert_eq!(client_ip(ip("198.51.100.9"), XFF, lines, &trusted), Ok(ip("198.51.100.9")));
    }

    #[test]
    fn malformed_entries_are_refused_not_skipped() {
        let trusted = IpRules::parse(&["127.0.0.1"]).unwrap();
        let peer = ip("127.0.0.1");
        for bad in ["203.0.113.5, junk", "203.0.113.5:80", "", "1.2.3.4,", "[::1]"] {
            assert_eq!(client_ip(peer, XFF, [bad], &trusted), Err(ForwardedError::Malformed), "{bad:?}");
        }
        let long = vec!["10.0.0.1"; MAX_FORWARDED_HOPS + 1].join(",");
        assert_eq!(client_ip(peer, XFF, [long.as_str()], &trusted), Err(ForwardedError::TooManyHops));
    }

    proptest! {
        #[test]
        fn never_panics(text in ".{0,48}") {
            let _ = IpRange::parse(&text);
            let _ = client_ip(ip("127.0.0.1"), XFF, [text.as_str()], &IpRules::anywhere());
            let _ = client_ip(ip("127.0.0.1"), ForwardedHeader::Forwarded, [text.as_str()], &IpRules::anywhere());
        }

        #[test]
        fn v4_range_matches_like_arithmetic(a: u32, prefix in 0u8..=32, probe: u32) {
            let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
            let net = std::net::Ipv4Addr::from(a & mask);
            let rules = IpRules::parse(&[format!("{net}/{prefix}")]).unwrap();
            let probe4 = std::net::Ipv4Addr::from(probe);
            let expected = probe & mask == a & mask;
            prop_assert_eq!(rules.contains(IpAddr::V4(probe4)), expected);
            prop_assert_eq!(rules.contains(IpAddr::V6(probe4.to_ipv6_mapped())), expected);
        }

        #[test]
        fn host_bits_are_always_refused(a: u32, prefix in 0u8..32) {
            let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
            let text = format!("{}/{prefix}", std::net::Ipv4Addr::from(a));
            let parsed = IpRange::parse(&text);
            prop_assert_eq!(parsed.is_ok(), a & !mask == 0);
        }
    }
}
