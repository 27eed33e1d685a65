//! IP addresses and CIDR blocks, without any I/O.

use std::net::IpAddr;

/// An address block: a network address and prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// The first and last IPv4 address of the block, or `None` for IPv6.
    pub fn ipv4_range(&self) -> Option<(u32, u32)> {
        let IpAddr::V4(v4) = self.addr else {
            return None;
        };
        let base = u32::from(v4);
        let host_bits = 32 - u32::from(self.prefix);
        let mask = if host_bits == 32 {
            0
        } else {
            u32::MAX << host_bits
        };
        let lo = base & mask;
        Some((lo, lo | !mask))
    }

    /// The block written as `a.b.c.d/n` (IPv4) or `x::y/n` (IPv6).
    pub fn host_block(addr: IpAddr) -> Cidr {
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        Cidr { addr, prefix }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Parse `a.b.c.d`, `a.b.c.d/n`, an IPv6 address or an IPv6 CIDR. A bare address is a host block.
pub fn parse_cidr_or_ip(text: &str) -> Option<Cidr> {
    let text = text.trim();
    match text.split_once('/') {
        Some((addr, prefix)) => {
            let addr: IpAddr = addr.parse().ok()?;
            let prefix: u8 = prefix.parse().ok()?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            (prefix <= max).then_some(Cidr { addr, prefix })
        }
        None => text.parse().ok().map(Cidr::host_block),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses_and_blocks() {
        let c = parse_cidr_or_ip("10.1.2.3/8").unwrap();
        assert_eq!(c.ipv4_range(), Some((0x0a00_0000, 0x0aff_ffff)));
        assert_eq!(parse_cidr_or_ip("1.2.3.4").unwrap().prefix, 32);
        assert_eq!(parse_cidr_or_ip("::1").unwrap().prefix, 128);
        assert_eq!(
            parse_cidr_or_ip("0.0.0.0/0").unwrap().ipv4_range(),
            Some((0, u32::MAX))
        );
        assert!(parse_cidr_or_ip("1.2.3.4/33").is_none());
        assert!(parse_cidr_or_ip("example.com").is_none());
    }
}
