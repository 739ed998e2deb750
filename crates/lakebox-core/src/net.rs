//! CIDR blocks, as policies (`aws:SourceIp`) and SNS filter policies (`cidr`) name them.

use std::net::IpAddr;

/// `10.0.0.0/8`, `2001:db8::/32`, or a bare address (all its bits).
pub fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, bits) = match s.split_once('/') {
        Some((ip, b)) => (ip.trim().parse::<IpAddr>().ok()?, b.trim().parse::<u8>().ok()?),
        None => {
            let ip = s.trim().parse::<IpAddr>().ok()?;
            (ip, if ip.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

/// Whether `ip` lies in `net/bits` (an IPv4-mapped IPv6 address counts as its IPv4 address).
pub fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits.min(32)))
            };
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits.min(128)))
            };
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_contain_their_addresses() {
        let (net, bits) = parse_cidr("10.1.0.0/16").unwrap();
        assert!(in_cidr("10.1.200.3".parse().unwrap(), net, bits));
        assert!(!in_cidr("10.2.0.1".parse().unwrap(), net, bits));
        assert!(in_cidr("::ffff:10.1.0.9".parse().unwrap(), net, bits));
        let (net, bits) = parse_cidr("2001:db8::/32").unwrap();
        assert!(in_cidr("2001:db8::1".parse().unwrap(), net, bits));
        assert_eq!(parse_cidr("10.0.0.1"), Some(("10.0.0.1".parse().unwrap(), 32)));
        assert!(parse_cidr("10.0.0.0/33").is_none() && parse_cidr("nope").is_none());
    }
}
