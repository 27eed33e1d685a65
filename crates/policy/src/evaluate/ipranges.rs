//! IPv4 address sets for `ipBlock` peers, and the cut of the address space into external peers.
//!
//! The connectivity list names external peers as address ranges. Like netpol-analyzer, the
//! space 0.0.0.0–255.255.255.255 is cut at every boundary of every ipBlock `cidr` and `except`
//! in the policies, so within one piece every policy rule either matches every address or none.
//! IPv6 blocks match nothing in that space and are left out.

use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::net::parse_cidr_or_ip;
use crate::objects::IpBlock;

/// An inclusive range of IPv4 addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Ipv4Range {
    pub first: u32,
    pub last: u32,
}

impl Ipv4Range {
    pub const ALL: Ipv4Range = Ipv4Range {
        first: 0,
        last: u32::MAX,
    };

    pub fn contains(&self, addr: u32) -> bool {
        self.first <= addr && addr <= self.last
    }

    /// Parse `a.b.c.d-e.f.g.h`, a CIDR or a single address.
    pub fn parse(text: &str) -> Option<Ipv4Range> {
        let text = text.trim();
        if let Some((a, b)) = text.split_once('-') {
            let first: Ipv4Addr = a.trim().parse().ok()?;
            let last: Ipv4Addr = b.trim().parse().ok()?;
            let (first, last) = (u32::from(first), u32::from(last));
            return (first <= last).then_some(Ipv4Range { first, last });
        }
        let (first, last) = parse_cidr_or_ip(text)?.ipv4_range()?;
        Some(Ipv4Range { first, last })
    }
}

impl fmt::Display for Ipv4Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}",
            Ipv4Addr::from(self.first),
            Ipv4Addr::from(self.last)
        )
    }
}

/// A set of IPv4 addresses: sorted, disjoint ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpSet(Vec<Ipv4Range>);

impl IpSet {
    pub fn all() -> Self {
        IpSet(vec![Ipv4Range::ALL])
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn ranges(&self) -> &[Ipv4Range] {
        &self.0
    }

    pub fn contains(&self, addr: u32) -> bool {
        let i = self.0.partition_point(|r| r.first <= addr);
        i > 0 && self.0[i - 1].last >= addr
    }

    /// Add a range; ranges may arrive in any order and overlap.
    pub fn insert(&mut self, r: Ipv4Range) {
        self.0.push(r);
        self.0.sort();
        let mut out: Vec<Ipv4Range> = Vec::with_capacity(self.0.len());
        for r in self.0.drain(..) {
            match out.last_mut() {
                Some(last) if u64::from(r.first) <= u64::from(last.last) + 1 => {
                    last.last = last.last.max(r.last)
                }
                _ => out.push(r),
            }
        }
        self.0 = out;
    }

    /// Remove a range.
    pub fn remove(&mut self, cut: Ipv4Range) {
        let mut out = Vec::with_capacity(self.0.len() + 1);
        for r in self.0.drain(..) {
            if r.last < cut.first || r.first > cut.last {
                out.push(r);
                continue;
            }
            if r.first < cut.first {
                out.push(Ipv4Range {
                    first: r.first,
                    last: cut.first - 1,
                });
            }
            if r.last > cut.last {
                out.push(Ipv4Range {
                    first: cut.last + 1,
                    last: r.last,
                });
            }
        }
        self.0 = out;
    }
}

/// Why an ipBlock could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpBlockError {
    #[error("invalid CIDR {0:?}")]
    InvalidCidr(String),
    #[error("invalid except entry {0:?}")]
    InvalidExcept(String),
}

/// The IPv4 addresses an ipBlock matches (`cidr` minus every `except`). An IPv6 block matches no
/// IPv4 address and yields an empty set; its IPv6 excepts are irrelevant.
pub fn ip_block_set(block: &IpBlock) -> Result<IpSet, IpBlockError> {
    let cidr = parse_cidr_or_ip(&block.cidr)
        .ok_or_else(|| IpBlockError::InvalidCidr(block.cidr.clone()))?;
    let Some((first, last)) = cidr.ipv4_range() else {
        return Ok(IpSet::default());
    };
    let mut set = IpSet(vec![Ipv4Range { first, last }]);
    for e in &block.except {
        let c = parse_cidr_or_ip(e).ok_or_else(|| IpBlockError::InvalidExcept(e.clone()))?;
        if let Some((first, last)) = c.ipv4_range() {
            set.remove(Ipv4Range { first, last });
        }
    }
    Ok(set)
}

/// The boundaries (first addresses of pieces) that an ipBlock adds to the cut of the IPv4 space.
pub fn block_boundaries(block: &IpBlock, out: &mut Vec<u32>) {
    let texts = std::iter::once(&block.cidr).chain(&block.except);
    for t in texts {
        if let Some((first, last)) = parse_cidr_or_ip(t).and_then(|c| c.ipv4_range()) {
            out.push(first);
            if let Some(next) = last.checked_add(1) {
                out.push(next);
            }
        }
    }
}

/// The pieces of the IPv4 space, given the boundaries collected from the policies.
pub fn pieces(mut boundaries: Vec<u32>) -> Vec<Ipv4Range> {
    boundaries.push(0);
    boundaries.sort_unstable();
    boundaries.dedup();
    boundaries
        .iter()
        .enumerate()
        .map(|(i, &first)| Ipv4Range {
            first,
            last: boundaries.get(i + 1).map_or(u32::MAX, |next| next - 1),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk_block(cidr: &str, except: &[&str]) -> IpBlock {
        IpBlock {
            cidr: cidr.to_string(),
            except: except.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn r(text: &str) -> Ipv4Range {
        Ipv4Range::parse(text).unwrap()
    }

    #[test]
    fn ip_block_is_cidr_minus_excepts() {
        let set = ip_block_set(&mk_block("10.0.0.0/8", &["10.1.0.0/16", "10.3.0.0/16"])).unwrap();
        assert_eq!(
            set.ranges(),
            &[
                r("10.0.0.0-10.0.255.255"),
                r("10.2.0.0-10.2.255.255"),
                r("10.4.0.0-10.255.255.255")
            ]
        );
        assert!(set.contains(u32::from(Ipv4Addr::new(10, 2, 3, 4))));
        assert!(!set.contains(u32::from(Ipv4Addr::new(10, 1, 3, 4))));
        assert!(ip_block_set(&mk_block("::/0", &[])).unwrap().is_empty());
        assert_eq!(
            ip_block_set(&mk_block("0.0.0.0/0", &["::1/128"])).unwrap(),
            IpSet::all()
        );
        assert!(ip_block_set(&mk_block("nonsense", &[])).is_err());
        assert!(ip_block_set(&mk_block("10.0.0.0/8", &["x"])).is_err());
    }

    #[test]
    fn the_space_is_cut_at_every_boundary() {
        let mut b = Vec::new();
        block_boundaries(&mk_block("10.0.0.0/8", &["10.1.0.0/16"]), &mut b);
        block_boundaries(&mk_block("0.0.0.0/0", &[]), &mut b);
        let p = pieces(b);
        let text: Vec<String> = p.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "0.0.0.0-9.255.255.255",
                "10.0.0.0-10.0.255.255",
                "10.1.0.0-10.1.255.255",
                "10.2.0.0-10.255.255.255",
                "11.0.0.0-255.255.255.255"
            ]
        );
        assert_eq!(pieces(Vec::new()), [Ipv4Range::ALL]);
    }

    #[test]
    fn parses_ranges_cidrs_and_addresses() {
        assert_eq!(
            r("1.2.3.4"),
            Ipv4Range {
                first: 0x01020304,
                last: 0x01020304
            }
        );
        assert_eq!(r("10.0.0.0/8").to_string(), "10.0.0.0-10.255.255.255");
        assert_eq!(r("1.0.0.0-1.0.0.9").last, 0x01000009);
        assert!(Ipv4Range::parse("2.0.0.0-1.0.0.0").is_none());
    }
}
