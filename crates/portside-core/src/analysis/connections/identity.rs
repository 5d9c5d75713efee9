//! Connection identities as uniform 64-bit keys, and a radix sort by key.
//!
//! A socket's identity is its kernel cookie, spread over 64 bits by a bijection (so two
//! cookies never share a key: exact). Without a cookie (the `/proc/net` fallback), it is a
//! seeded 64-bit fingerprint of (proto, local, remote).
//!
//! Matching 100k identities between ticks by sorting and merging two lists beats hash
//! probes: a table that large does not stay in cache between ticks (the snapshot streams
//! through it), and cold probes cost ~45 ns each against ~15 ns per element to sort + merge.

use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, SocketAddr};

use crate::model::Proto;

/// Seeded 64-bit fingerprint of a connection identity (proto, local, remote).
///
/// foldhash rather than `FxHash`: as fast on these few words, but seeded per process, so peers
/// choosing their addresses and ports (a SYN flood, the very moment this tool is opened)
/// cannot aim at collisions. At 100k identities the chance of any 64-bit collision in one
/// tick is ~3e-10, and one would only miscount one event.
#[derive(Debug, Clone, Default)]
pub struct Fingerprinter(foldhash::fast::RandomState);

impl Fingerprinter {
    pub fn of(&self, proto: Proto, local: SocketAddr, remote: SocketAddr) -> u64 {
        let mut h = self.0.build_hasher();
        let mut tag = u64::from(proto == Proto::Udp);
        for (i, a) in [local, remote].into_iter().enumerate() {
            match a.ip() {
                IpAddr::V4(ip) => h.write_u32(ip.to_bits()),
                IpAddr::V6(ip) => {
                    h.write_u128(ip.to_bits());
                    tag |= 2 << i;
                }
            }
        }
        h.write_u64(tag | u64::from(local.port()) << 16 | u64::from(remote.port()) << 32);
        h.finish()
    }
}

/// The key of a kernel cookie: murmur3's 64-bit finalizer, a bijection (xor-shifts and odd
/// multiplications are invertible), so distinct cookies keep distinct keys, while the
/// kernel's sequential cookies spread uniformly over the top bits the radix sort uses.
pub fn cookie_key(cookie: u64) -> u64 {
    let mut k = cookie;
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// Sort `v` by the fingerprint `id` of its elements (`scratch` is a reusable buffer).
///
/// LSD radix sort on the top 33 bits (3 passes of 11 bits), then an insertion sort that is
/// linear here: fingerprints are uniform, so runs sharing their top 33 bits are tiny.
pub fn sort_by_id<T: Copy>(v: &mut Vec<T>, scratch: &mut Vec<T>, id: impl Fn(&T) -> u64) {
    const BITS: u32 = 11;
    const BUCKETS: usize = 1 << BITS;
    scratch.clear();
    scratch.extend_from_slice(v);
    for pass in 0..3 {
        let shift = 64 - BITS * (3 - pass);
        let digit = |t: &T| ((id(t) >> shift) as usize) & (BUCKETS - 1);
        let mut starts = [0usize; BUCKETS];
        for t in v.iter() {
            starts[digit(t)] += 1;
        }
        let mut sum = 0;
        for s in &mut starts {
            (*s, sum) = (sum, sum + *s);
        }
        for t in v.iter() {
            let d = digit(t);
            scratch[starts[d]] = *t;
            starts[d] += 1;
        }
        std::mem::swap(v, scratch);
    }
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 && id(&v[j - 1]) > id(&v[j]) {
            v.swap(j - 1, j);
            j -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_tell_identities_apart() {
        let f = Fingerprinter::default();
        let a: SocketAddr = "10.0.0.1:80".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:80".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:10.0.0.1]:80".parse().unwrap();
        assert_eq!(f.of(Proto::Tcp, a, b), f.of(Proto::Tcp, a, b));
        assert_ne!(f.of(Proto::Tcp, a, b), f.of(Proto::Tcp, b, a));
        assert_ne!(f.of(Proto::Tcp, a, b), f.of(Proto::Udp, a, b));
        assert_ne!(f.of(Proto::Tcp, a, b), f.of(Proto::Tcp, mapped, b));
    }

    #[test]
    fn cookie_keys_are_distinct_and_spread() {
        let keys: Vec<u64> = (1..=100_000u64).map(cookie_key).collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), keys.len(), "a bijection never collides");
        // Sequential cookies land in every one of the 2048 top-11-bit buckets.
        let mut buckets = vec![0u32; 2048];
        for k in &keys {
            buckets[(k >> 53) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&b| b > 10),
            "{:?}",
            buckets.iter().min()
        );
    }

    #[test]
    fn sorts_near_ties_duplicates_and_extremes() {
        let ids = [
            5u64,
            u64::MAX,
            0,
            1 << 40,
            (1 << 40) + 3,
            (1 << 40) + 1,
            5,
            1 << 63,
            7,
            6,
        ];
        let mut v: Vec<(u64, usize)> = ids.iter().copied().zip(0..).collect();
        let mut scratch = Vec::new();
        sort_by_id(&mut v, &mut scratch, |e| e.0);
        let mut want = ids.to_vec();
        want.sort_unstable();
        assert_eq!(v.iter().map(|e| e.0).collect::<Vec<_>>(), want);
        sort_by_id(&mut v, &mut scratch, |e| e.0);
        assert_eq!(
            v.iter().map(|e| e.0).collect::<Vec<_>>(),
            want,
            "sorted input stays"
        );
        let mut empty: Vec<(u64, usize)> = Vec::new();
        sort_by_id(&mut empty, &mut scratch, |e| e.0);
        assert!(empty.is_empty());
    }

    #[test]
    fn sorts_many_fingerprints() {
        let f = Fingerprinter::default();
        let mut v: Vec<u64> = (0..50_000u32)
            .map(|i| {
                let local = SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 40000));
                f.of(Proto::Tcp, local, "10.5.0.5:5432".parse().unwrap())
            })
            .collect();
        let mut want = v.clone();
        want.sort_unstable();
        sort_by_id(&mut v, &mut Vec::new(), |&x| x);
        assert_eq!(v, want);
    }
}
