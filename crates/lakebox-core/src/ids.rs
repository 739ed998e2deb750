//! Identifier generation in the shapes AWS uses.

use std::cell::Cell;
use std::hash::{BuildHasher, RandomState};

use uuid::Uuid;

/// A request id as the JSON and query services send it (`x-amzn-RequestId`): a version 4
/// UUID from [`unique_uuid`].
pub fn request_id() -> String {
    unique_uuid().to_string()
}

/// A version 4 UUID for what must be unique, not secret (request ids, message ids): from a
/// per-thread generator seeded once from the OS rather than from a `getrandom` system call
/// each (1–2% of a small request's CPU, ten times that for a batch of ten messages). Anything
/// secret keeps using [`Uuid::new_v4`].
pub fn unique_uuid() -> Uuid {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(Uuid::new_v4().as_u64_pair().0);
    }
    let (a, b) = STATE.with(|s| (splitmix64(s), splitmix64(s)));
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_le_bytes());
    bytes[8..].copy_from_slice(&b.to_le_bytes());
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// 64 bits nobody can work out from the values handed out before (a token that proves its
/// holder was given it, like a receipt handle), without a system call each: SipHash, keyed
/// per thread from the OS's randomness, of a per-thread counter. [`unique_uuid`]'s generator
/// would not do: one of its outputs gives away the next.
pub fn unguessable_u64() -> u64 {
    thread_local! {
        static STATE: (RandomState, Cell<u64>) = (RandomState::new(), const { Cell::new(0) });
    }
    STATE.with(|(key, counter)| {
        let n = counter.get();
        counter.set(n.wrapping_add(1));
        key.hash_one(n)
    })
}

/// SplitMix64: a bijection of its counter, so a thread never repeats itself.
fn splitmix64(state: &Cell<u64>) -> u64 {
    let x = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
    state.set(x);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// S3's `x-amz-request-id` is 16 upper-case hex characters.
pub fn s3_request_id(request_id: &str) -> String {
    let hex: String = request_id
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .take(16)
        .collect();
    hex.to_ascii_uppercase()
}

/// Random lower-case hex string of `len` characters.
pub fn random_hex(len: usize) -> String {
    let mut out = String::with_capacity(len + 32);
    while out.len() < len {
        out.push_str(&Uuid::new_v4().simple().to_string());
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(request_id().len(), 36);
        let s3 = s3_request_id(&request_id());
        assert_eq!(s3.len(), 16);
        assert!(s3.chars().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
        assert_eq!(random_hex(40).len(), 40);
        assert_ne!(random_hex(8), random_hex(8));
    }

    #[test]
    fn request_ids_are_distinct_version_4_uuids() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| request_id()).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(100) {
            let u = Uuid::parse_str(id).unwrap();
            assert_eq!(u.get_version_num(), 4);
            assert_eq!(u.get_variant(), uuid::Variant::RFC4122);
        }
    }

    #[test]
    fn unguessable_values_differ_within_and_across_threads() {
        let mut seen: std::collections::HashSet<u64> = (0..10_000).map(|_| unguessable_u64()).collect();
        let other: Vec<u64> = std::thread::spawn(|| (0..10_000).map(|_| unguessable_u64()).collect())
            .join()
            .unwrap();
        seen.extend(other);
        assert_eq!(seen.len(), 20_000);
        // Not a counter: consecutive values are far apart.
        let (a, b) = (unguessable_u64(), unguessable_u64());
        assert!(a.abs_diff(b) > 1 << 20, "{a} {b}");
    }
}
