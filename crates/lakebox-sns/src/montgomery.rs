//! `base^exp mod m` for the halves of a 2048-bit RSA key (1024-bit odd moduli), in Montgomery
//! form on fixed arrays of sixteen 64-bit limbs.
//!
//! Why not num-bigint's `modpow`: its Montgomery multiplication works on heap vectors of any
//! length; with the length fixed the compiler unrolls the loops and drops the bounds checks, and
//! one exponentiation takes ~0.5 ms here against num-bigint's 0.8–1.0 ms — every SNS envelope is signed with
//! two of them. Like num-bigint's, it is not constant-time: the key signs Lakebox's own
//! notifications on a local machine, where a timing side channel guards nothing.

use num_bigint::BigUint;

const LIMBS: usize = 16;
/// Bits of the exponent taken at a time: 32 precomputed powers, one multiplication per 5 bits.
const WINDOW: usize = 5;

type Limbs = [u64; LIMBS];

pub struct Modulus {
    m: Limbs,
    /// The same, for reducing a base below it.
    m_big: BigUint,
    /// −m⁻¹ mod 2⁶⁴.
    minv: u64,
    /// R² mod m, R = 2^1024: multiplying by it brings a number into Montgomery form.
    r2: Limbs,
}

fn to_limbs(x: &BigUint) -> Option<Limbs> {
    let digits = x.to_u64_digits();
    let mut out = [0u64; LIMBS];
    if digits.len() > LIMBS {
        return None;
    }
    out[..digits.len()].copy_from_slice(&digits);
    Some(out)
}

impl Modulus {
    /// `None` unless `m` is odd and exactly 1024 bits long (the callers then use num-bigint).
    pub fn new(m: &BigUint) -> Option<Modulus> {
        if m.bits() != 64 * LIMBS as u64 || !m.bit(0) {
            return None;
        }
        let limbs = to_limbs(m)?;
        // m⁻¹ mod 2⁶⁴ by Newton's iteration: each step doubles the correct low bits (1 → 64).
        let mut inv: u64 = 1;
        for _ in 0..6 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(limbs[0].wrapping_mul(inv)));
        }
        let r2 = (BigUint::from(1u8) << (2 * 64 * LIMBS)) % m;
        Some(Modulus {
            m: limbs,
            m_big: m.clone(),
            minv: inv.wrapping_neg(),
            r2: to_limbs(&r2)?,
        })
    }

    /// a·b·R⁻¹ mod m, for a, b < m (coarsely integrated operand scanning).
    fn mul(&self, a: &Limbs, b: &Limbs) -> Limbs {
        let m = &self.m;
        let mut t = [0u64; LIMBS];
        let mut hi: u64 = 0;
        for &bi in b {
            // t += a·bᵢ
            let mut carry: u128 = 0;
            for j in 0..LIMBS {
                let s = t[j] as u128 + (a[j] as u128) * (bi as u128) + carry;
                t[j] = s as u64;
                carry = s >> 64;
            }
            let s = hi as u128 + carry;
            let (top, over) = (s as u64, (s >> 64) as u64);
            // t += u·m, which zeroes the lowest limb, then shift down by one limb.
            let u = t[0].wrapping_mul(self.minv) as u128;
            let mut carry = (t[0] as u128 + u * m[0] as u128) >> 64;
            for j in 1..LIMBS {
                let s = t[j] as u128 + u * m[j] as u128 + carry;
                t[j - 1] = s as u64;
                carry = s >> 64;
            }
            let s = top as u128 + carry;
            t[LIMBS - 1] = s as u64;
            hi = over + (s >> 64) as u64;
        }
        // t < 2m: one subtraction brings it below m.
        if hi != 0 || !less(&t, m) {
            let mut borrow = false;
            for j in 0..LIMBS {
                let (d, b1) = t[j].overflowing_sub(m[j]);
                let (d, b2) = d.overflowing_sub(borrow as u64);
                t[j] = d;
                borrow = b1 | b2;
            }
        }
        t
    }

    /// base^exp mod m.
    pub fn pow(&self, base: &BigUint, exp: &BigUint) -> BigUint {
        let x = to_limbs(&(base % &self.m_big)).expect("reduced below a 1024-bit modulus");
        let mut one = [0u64; LIMBS];
        one[0] = 1;
        // powers[i] = xⁱ·R mod m.
        let mut powers = [[0u64; LIMBS]; 1 << WINDOW];
        powers[0] = self.mul(&one, &self.r2);
        powers[1] = self.mul(&x, &self.r2);
        for i in 2..powers.len() {
            powers[i] = self.mul(&powers[i - 1], &powers[1]);
        }
        let bits = exp.bits() as usize;
        let digits = exp.to_u64_digits();
        let bit = |i: usize| -> usize {
            if i < bits {
                ((digits[i / 64] >> (i % 64)) & 1) as usize
            } else {
                0
            }
        };
        let mut acc = powers[0];
        // Whole windows from the top (the first may reach above the exponent's highest bit).
        let mut top = bits.div_ceil(WINDOW) * WINDOW;
        while top > 0 {
            let mut w = 0;
            for k in 1..=WINDOW {
                w = (w << 1) | bit(top - k);
            }
            for _ in 0..WINDOW {
                acc = self.mul(&acc, &acc);
            }
            if w != 0 {
                acc = self.mul(&acc, &powers[w]);
            }
            top -= WINDOW;
        }
        BigUint::from_slice(&as_u32s(&self.mul(&acc, &one)))
    }
}

/// Whether a < b.
fn less(a: &Limbs, b: &Limbs) -> bool {
    for j in (0..LIMBS).rev() {
        if a[j] != b[j] {
            return a[j] < b[j];
        }
    }
    false
}

fn as_u32s(x: &Limbs) -> Vec<u32> {
    x.iter().flat_map(|l| [*l as u32, (*l >> 32) as u32]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A xorshift stream: the test's numbers are the same every run.
    fn numbers(seed: u64) -> impl FnMut(usize) -> BigUint {
        let mut s = seed;
        move |words| {
            let v: Vec<u32> = (0..words)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    s as u32
                })
                .collect();
            BigUint::from_slice(&v)
        }
    }

    #[test]
    fn powers_match_num_bigint() {
        let mut next = numbers(0x9e37_79b9_7f4a_7c15);
        let top = BigUint::from(1u8) << 1023u32;
        for round in 0..40 {
            let m = next(32) | &top | BigUint::from(1u8);
            let modulus = Modulus::new(&m).expect("an odd 1024-bit modulus");
            let base = match round {
                0 => BigUint::from(0u8),
                1 => BigUint::from(1u8),
                2 => &m - 1u8,
                3 => &m + 5u8, // not reduced: taken mod m first
                _ => next(32),
            };
            let exp = match round {
                4 => BigUint::from(0u8),
                5 => BigUint::from(1u8),
                6 => BigUint::from(31u8),
                7 => next(2),
                _ => next(32),
            };
            assert_eq!(modulus.pow(&base, &exp), base.modpow(&exp, &m), "round {round}");
        }
    }

    #[test]
    fn other_moduli_are_left_to_num_bigint() {
        assert!(Modulus::new(&(BigUint::from(1u8) << 1023u32)).is_none(), "even");
        assert!(Modulus::new(&((BigUint::from(1u8) << 1022u32) | BigUint::from(1u8))).is_none());
        assert!(Modulus::new(&((BigUint::from(1u8) << 1024u32) | BigUint::from(1u8))).is_none());
    }

    /// `cargo test --release -p lakebox-sns --lib montgomery::tests::speed -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn speed() {
        let mut next = numbers(7);
        let m = next(32) | (BigUint::from(1u8) << 1023u32) | BigUint::from(1u8);
        let (base, exp) = (next(32) % &m, next(32));
        let modulus = Modulus::new(&m).unwrap();
        let n = 200;
        let t = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(modulus.pow(&base, &exp));
        }
        println!("fixed limbs: {:?}", t.elapsed() / n);
        let t = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(base.modpow(&exp, &m));
        }
        println!("num-bigint: {:?}", t.elapsed() / n);
    }
}
