//! Who is calling: the client IP that the per-IP limit counts. Behind trusted proxies it is read
//! from `X-Forwarded-For` (every line of it), canonical (an IPv4-mapped IPv6 address is the
//! IPv4 address) and without a port.

use std::net::{IpAddr, SocketAddr};

/// One hop of `X-Forwarded-For`: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or
/// `[2001:db8::1]:443`, canonical.
fn hop(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    let ip = text
        .parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            let bracketed = text.strip_prefix('[')?.strip_suffix(']')?;
            bracketed.parse().ok()
        })?;
    Some(ip.to_canonical())
}

/// The client's IP: the peer, or where the peer is a trusted proxy, the nearest address in
/// `X-Forwarded-For` (all its header lines, in order) that is not a trusted proxy; an untrusted
/// peer cannot pick its own IP.
pub fn client_ip<'a>(
    peer: Option<IpAddr>,
    forwarded_for: impl IntoIterator<Item = &'a str>,
    trusted: &[ipnet::IpNet],
) -> Option<IpAddr> {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let peer = peer?.to_canonical();
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let hops: Vec<&str> = forwarded_for
        .into_iter()
        .flat_map(|line| line.split(','))
        .collect();
    let mut client = peer;
    for text in hops.into_iter().rev() {
        match hop(text) {
            Some(ip) if is_trusted(&ip) => client = ip,
            Some(ip) => return Some(ip),
            None => break,
        }
    }
    Some(client)
}

#[cfg(test)]
mod tests {
    use super::client_ip;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| s.parse().ok();
        let call =
            |peer: &str, lines: &[&str]| client_ip(ip(peer), lines.iter().copied(), &trusted);
        assert_eq!(call("203.0.113.9", &["1.2.3.4"]), ip("203.0.113.9"));
        assert_eq!(call("10.0.0.2", &["1.2.3.4"]), ip("1.2.3.4"));
        assert_eq!(
            call("10.0.0.2", &["6.6.6.6, 1.2.3.4, 10.0.0.3"]),
            ip("1.2.3.4")
        );
        assert_eq!(call("10.0.0.2", &[]), ip("10.0.0.2"));
        assert_eq!(call("10.0.0.2", &["garbage"]), ip("10.0.0.2"));
    }

    #[test]
    fn every_line_counts_and_addresses_are_canonical() {
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| s.parse().ok();
        let call =
            |peer: &str, lines: &[&str]| client_ip(ip(peer), lines.iter().copied(), &trusted);
        // A second header line, added by the nearer proxy, is read (not only the first).
        assert_eq!(
            call("10.0.0.2", &["6.6.6.6", "1.2.3.4, 10.0.0.3"]),
            ip("1.2.3.4")
        );
        assert_eq!(call("10.0.0.2", &["1.2.3.4", "10.0.0.3"]), ip("1.2.3.4"));
        // A trusted proxy reached over IPv6 as an IPv4-mapped address is still trusted.
        assert_eq!(call("::ffff:10.0.0.2", &["1.2.3.4"]), ip("1.2.3.4"));
        // Hops with ports are addresses, not garbage that falls back to the proxy.
        assert_eq!(call("10.0.0.2", &["1.2.3.4:5678"]), ip("1.2.3.4"));
        assert_eq!(call("10.0.0.2", &["[2001:db8::1]:443"]), ip("2001:db8::1"));
        assert_eq!(call("10.0.0.2", &["::ffff:1.2.3.4"]), ip("1.2.3.4"));
    }
}
