//! Partition keys to shards: MD5 of the key as a 128-bit big-endian number, matched against
//! each open shard's hash-key range. New streams split the 128-bit space evenly, as AWS does.

use md5::{Digest, Md5};

/// The hash key of a partition key.
pub fn partition_hash(partition_key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into())
}

/// Parses an `ExplicitHashKey`: a decimal number in `[0, 2^128 - 1]`.
pub fn parse_hash_key(s: &str) -> Option<u128> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u128>().ok()
}

/// `n` contiguous ranges covering `[0, 2^128 - 1]`: each `floor(2^128 / n)` wide, the last one
/// taking the remainder.
pub fn even_ranges(n: u32) -> Vec<(u128, u128)> {
    if n <= 1 {
        // One shard covers everything (and 2^128 itself does not fit in a u128).
        return vec![(0, u128::MAX)];
    }
    let n128 = n as u128;
    // floor(2^128 / n) without overflowing: 2^128 = u128::MAX + 1.
    let step = u128::MAX / n128 + u128::from(u128::MAX % n128 == n128 - 1);
    (0..n128)
        .map(|i| {
            let start = i * step;
            let end = if i == n128 - 1 {
                u128::MAX
            } else {
                start + step - 1
            };
            (start, end)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_match_aws() {
        // What AWS reports for a 4-shard stream.
        let r = even_ranges(4);
        assert_eq!(r[0], (0, 85070591730234615865843651857942052863));
        assert_eq!(r[1].0, 85070591730234615865843651857942052864);
        assert_eq!(r[3].1, 340282366920938463463374607431768211455);
        for n in [1, 2, 3, 7, 500] {
            let r = even_ranges(n);
            assert_eq!(r[0].0, 0);
            assert_eq!(r.last().unwrap().1, u128::MAX);
            for w in r.windows(2) {
                assert_eq!(w[0].1 + 1, w[1].0);
            }
        }
    }

    #[test]
    fn partition_hash_is_md5_big_endian() {
        // md5("") = d41d8cd98f00b204e9800998ecf8427e
        assert_eq!(partition_hash(""), 0xd41d8cd98f00b204e9800998ecf8427e);
        assert_eq!(
            parse_hash_key("340282366920938463463374607431768211455"),
            Some(u128::MAX)
        );
        assert_eq!(parse_hash_key("340282366920938463463374607431768211456"), None);
        assert_eq!(parse_hash_key("-1"), None);
        assert_eq!(parse_hash_key(""), None);
    }
}
