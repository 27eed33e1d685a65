//! Sets of allowed connections: per protocol, a set of port ranges.
//!
//! A [`Conns`] is what a NetworkPolicy rule admits, what a pair of peers may use, and what the
//! connectivity list prints (`All Connections`, or `SCTP 1-9002,TCP 80,443`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::objects::Protocol;

/// The lowest port a NetworkPolicy can name.
pub const MIN_PORT: u16 = 1;
/// The highest port.
pub const MAX_PORT: u16 = u16::MAX;

/// Ports of one protocol: sorted, disjoint, non-adjacent inclusive ranges within 1–65535.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortRanges(Vec<(u16, u16)>);

impl PortRanges {
    pub fn full() -> Self {
        PortRanges(vec![(MIN_PORT, MAX_PORT)])
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.0 == [(MIN_PORT, MAX_PORT)]
    }

    pub fn ranges(&self) -> &[(u16, u16)] {
        &self.0
    }

    pub fn contains(&self, port: u16) -> bool {
        // Ranges are sorted by start: the candidate is the last range starting at or below.
        let i = self.0.partition_point(|&(lo, _)| lo <= port);
        i > 0 && self.0[i - 1].1 >= port
    }

    /// Add `lo..=hi` (clamped to 1–65535; an empty range adds nothing).
    pub fn insert(&mut self, lo: u16, hi: u16) {
        let lo = lo.max(MIN_PORT);
        if hi < lo {
            return;
        }
        // Fast path for the common case of appending in order.
        if let Some(last) = self.0.last_mut() {
            if lo > last.1.saturating_add(1) {
                self.0.push((lo, hi));
                return;
            }
        } else {
            self.0.push((lo, hi));
            return;
        }
        let mut merged = Vec::with_capacity(self.0.len() + 1);
        let mut cur = (lo, hi);
        let mut placed = false;
        for &(a, b) in &self.0 {
            if b.saturating_add(1) < cur.0 {
                merged.push((a, b));
            } else if cur.1.saturating_add(1) < a {
                if !placed {
                    merged.push(cur);
                    placed = true;
                }
                merged.push((a, b));
            } else {
                cur = (cur.0.min(a), cur.1.max(b));
            }
        }
        if !placed {
            merged.push(cur);
        }
        self.0 = merged;
    }

    pub fn union_with(&mut self, other: &PortRanges) {
        if self.is_full() || other.is_empty() {
            return;
        }
        if other.is_full() || self.is_empty() {
            self.0.clone_from(&other.0);
            return;
        }
        for &(lo, hi) in &other.0 {
            self.insert(lo, hi);
        }
    }

    pub fn intersection(&self, other: &PortRanges) -> PortRanges {
        if self.is_full() {
            return other.clone();
        }
        if other.is_full() {
            return self.clone();
        }
        let (mut i, mut j) = (0, 0);
        let mut out = Vec::new();
        while i < self.0.len() && j < other.0.len() {
            let (a, b) = self.0[i];
            let (c, d) = other.0[j];
            let lo = a.max(c);
            let hi = b.min(d);
            if lo <= hi {
                out.push((lo, hi));
            }
            if b < d {
                i += 1;
            } else {
                j += 1;
            }
        }
        PortRanges(out)
    }

    /// The ports in `self` and not in `other`.
    pub fn difference(&self, other: &PortRanges) -> PortRanges {
        let mut out = Vec::new();
        let mut j = 0;
        for &(a, b) in &self.0 {
            let mut lo = u32::from(a);
            let hi = u32::from(b);
            while j < other.0.len() && u32::from(other.0[j].1) < lo {
                j += 1;
            }
            let mut k = j;
            while lo <= hi && k < other.0.len() && u32::from(other.0[k].0) <= hi {
                let (c, d) = (u32::from(other.0[k].0), u32::from(other.0[k].1));
                if c > lo {
                    out.push((lo as u16, (c - 1) as u16));
                }
                lo = lo.max(d + 1);
                k += 1;
            }
            if lo <= hi {
                out.push((lo as u16, hi as u16));
            }
        }
        PortRanges(out)
    }
}

impl fmt::Display for PortRanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(lo, hi)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

/// Allowed connections: a [`PortRanges`] per protocol.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Conns {
    /// Indexed like [`Protocol::ALL`] (SCTP, TCP, UDP: alphabetical, the order of the txt format).
    by_protocol: [PortRanges; 3],
}

fn slot(p: Protocol) -> usize {
    match p {
        Protocol::Sctp => 0,
        Protocol::Tcp => 1,
        Protocol::Udp => 2,
    }
}

impl Conns {
    /// No connection at all.
    pub fn none() -> Self {
        Conns::default()
    }

    /// Every port of TCP, UDP and SCTP.
    pub fn all() -> Self {
        Conns {
            by_protocol: [PortRanges::full(), PortRanges::full(), PortRanges::full()],
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_protocol.iter().all(PortRanges::is_empty)
    }

    pub fn is_all(&self) -> bool {
        self.by_protocol.iter().all(PortRanges::is_full)
    }

    pub fn ports(&self, protocol: Protocol) -> &PortRanges {
        &self.by_protocol[slot(protocol)]
    }

    /// Allow `lo..=hi` of `protocol`.
    pub fn add(&mut self, protocol: Protocol, lo: u16, hi: u16) {
        self.by_protocol[slot(protocol)].insert(lo, hi);
    }

    /// Allow every port of `protocol`.
    pub fn add_protocol(&mut self, protocol: Protocol) {
        self.by_protocol[slot(protocol)] = PortRanges::full();
    }

    pub fn allows(&self, protocol: Protocol, port: u16) -> bool {
        self.by_protocol[slot(protocol)].contains(port)
    }

    pub fn union_with(&mut self, other: &Conns) {
        for (a, b) in self.by_protocol.iter_mut().zip(&other.by_protocol) {
            a.union_with(b);
        }
    }

    pub fn intersection(&self, other: &Conns) -> Conns {
        Conns {
            by_protocol: std::array::from_fn(|i| {
                self.by_protocol[i].intersection(&other.by_protocol[i])
            }),
        }
    }

    pub fn difference(&self, other: &Conns) -> Conns {
        Conns {
            by_protocol: std::array::from_fn(|i| {
                self.by_protocol[i].difference(&other.by_protocol[i])
            }),
        }
    }

    /// Parse the txt format back (`All Connections`, `No Connections`, `TCP 80,443,UDP 53`).
    pub fn parse(text: &str) -> Option<Conns> {
        let text = text.trim();
        if text == "All Connections" {
            return Some(Conns::all());
        }
        let mut out = Conns::none();
        if text == "No Connections" || text.is_empty() {
            return Some(out);
        }
        let mut protocol = None;
        for item in text.split(',') {
            let item = item.trim();
            let ports = match item.split_once(' ') {
                Some((p, rest)) => {
                    protocol = Some(Protocol::parse(p)?);
                    rest.trim()
                }
                None => item,
            };
            let (lo, hi) = match ports.split_once('-') {
                Some((lo, hi)) => (lo.parse().ok()?, hi.parse().ok()?),
                None => {
                    let p: u16 = ports.parse().ok()?;
                    (p, p)
                }
            };
            out.add(protocol?, lo, hi);
        }
        Some(out)
    }
}

impl fmt::Display for Conns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_all() {
            return f.write_str("All Connections");
        }
        if self.is_empty() {
            return f.write_str("No Connections");
        }
        let mut first = true;
        for (protocol, ports) in Protocol::ALL.iter().zip(&self.by_protocol) {
            if ports.is_empty() {
                continue;
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{protocol} {ports}")?;
        }
        Ok(())
    }
}

impl Serialize for Conns {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Conns {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Conns::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid connections {text:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk_ranges(r: &[(u16, u16)]) -> PortRanges {
        let mut p = PortRanges::default();
        for &(lo, hi) in r {
            p.insert(lo, hi);
        }
        p
    }

    #[test]
    fn insert_merges_overlapping_and_adjacent_ranges() {
        type Case<'a> = (&'a [(u16, u16)], &'a [(u16, u16)]);
        let cases: &[Case] = &[
            (&[(80, 80), (443, 443)], &[(80, 80), (443, 443)]),
            (&[(443, 443), (80, 80)], &[(80, 80), (443, 443)]),
            (&[(80, 80), (81, 81)], &[(80, 81)]),
            (&[(1, 10), (20, 30), (5, 25)], &[(1, 30)]),
            (&[(20, 30), (1, 5), (8, 9)], &[(1, 5), (8, 9), (20, 30)]),
            (&[(10, 5)], &[]),
            (&[(0, 0)], &[]),
            (&[(65000, 65535), (1, 64999)], &[(1, 65535)]),
        ];
        for (input, want) in cases {
            assert_eq!(mk_ranges(input).ranges(), *want, "{input:?}");
        }
    }

    #[test]
    fn intersection_and_difference_are_set_operations() {
        let a = mk_ranges(&[(1, 100), (200, 300)]);
        let b = mk_ranges(&[(50, 250)]);
        assert_eq!(a.intersection(&b).ranges(), &[(50, 100), (200, 250)]);
        assert_eq!(a.difference(&b).ranges(), &[(1, 49), (251, 300)]);
        assert_eq!(b.difference(&a).ranges(), &[(101, 199)]);
        assert_eq!(
            PortRanges::full()
                .difference(&mk_ranges(&[(80, 80)]))
                .ranges(),
            &[(1, 79), (81, 65535)]
        );
        assert!(a.difference(&PortRanges::full()).is_empty());
        assert!(
            a.contains(1)
                && a.contains(100)
                && a.contains(250)
                && !a.contains(150)
                && !a.contains(301)
        );
    }

    #[test]
    fn formats_like_the_connectivity_list() {
        let mut c = Conns::none();
        assert_eq!(c.to_string(), "No Connections");
        c.add(Protocol::Udp, 53, 53);
        c.add(Protocol::Tcp, 443, 443);
        c.add(Protocol::Tcp, 80, 80);
        assert_eq!(c.to_string(), "TCP 80,443,UDP 53");
        let mut s = Conns::none();
        s.add(Protocol::Sctp, 1, 9002);
        s.add(Protocol::Sctp, 9004, 65535);
        s.add(Protocol::Tcp, 1, 79);
        s.add(Protocol::Tcp, 81, 65535);
        assert_eq!(s.to_string(), "SCTP 1-9002,9004-65535,TCP 1-79,81-65535");
        assert_eq!(Conns::all().to_string(), "All Connections");
        for text in [
            "TCP 80,443,UDP 53",
            "SCTP 1-9002,9004-65535,TCP 1-79,81-65535",
            "All Connections",
            "No Connections",
        ] {
            assert_eq!(Conns::parse(text).unwrap().to_string(), text);
        }
        assert!(Conns::parse("HTTP 80").is_none());
    }
}
