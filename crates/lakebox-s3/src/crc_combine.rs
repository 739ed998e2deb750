//! The CRC of two pieces of data from the CRCs of each and the second's length, without the
//! data: how S3 computes a multipart object's full-object (`FULL_OBJECT`) CRC32, CRC32C and
//! CRC64NVME from the parts' checksums. Arithmetic on polynomials over GF(2) modulo the CRC's
//! (reflected) polynomial, as zlib's `crc32_combine` does it.

/// A reflected CRC: its polynomial (bit-reversed) and width in bits.
#[derive(Clone, Copy)]
struct Crc {
    poly: u64,
    width: u32,
}

const CRC32: Crc = Crc {
    poly: 0xEDB8_8320,
    width: 32,
};
const CRC32C: Crc = Crc {
    poly: 0x82F6_3B78,
    width: 32,
};
const CRC64NVME: Crc = Crc {
    poly: 0x9A6C_9329_AC4B_C9B5,
    width: 64,
};

impl Crc {
    fn of(algorithm: &str) -> Option<Crc> {
        match algorithm {
            "CRC32" => Some(CRC32),
            "CRC32C" => Some(CRC32C),
            "CRC64NVME" => Some(CRC64NVME),
            _ => None,
        }
    }

    fn top(self) -> u64 {
        1 << (self.width - 1)
    }

    /// a·b modulo the polynomial (reflected: the top bit is x⁰).
    fn mult(self, a: u64, mut b: u64) -> u64 {
        let mut m = self.top();
        let mut p = 0;
        while m != 0 {
            if a & m != 0 {
                p ^= b;
            }
            m >>= 1;
            b = if b & 1 != 0 { (b >> 1) ^ self.poly } else { b >> 1 };
        }
        p
    }

    /// x^(8·len) modulo the polynomial: the effect of `len` zero bytes.
    fn shift(self, len: u64) -> u64 {
        let mut result = self.top(); // x⁰
        let mut square = self.top() >> 8; // x⁸: one byte
        let mut n = len;
        while n != 0 {
            if n & 1 != 0 {
                result = self.mult(square, result);
            }
            square = self.mult(square, square);
            n >>= 1;
        }
        result
    }
}

/// The CRC of `A ‖ B` from `crc_a`, `crc_b` and B's length; `None` for an algorithm that is not
/// a CRC.
pub fn combine(algorithm: &str, crc_a: u64, crc_b: u64, len_b: u64) -> Option<u64> {
    let c = Crc::of(algorithm)?;
    Some(c.mult(c.shift(len_b), crc_a) ^ crc_b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_crcs_equal_the_crc_of_the_whole() {
        let (a, b): (&[u8], &[u8]) = (b"hello, multipart ", b"world of parts and their checksums");
        let whole = [a, b].concat();
        assert_eq!(
            combine(
                "CRC32",
                crc32fast::hash(a) as u64,
                crc32fast::hash(b) as u64,
                b.len() as u64
            ),
            Some(crc32fast::hash(&whole) as u64)
        );
        assert_eq!(
            combine(
                "CRC32C",
                crc32c::crc32c(a) as u64,
                crc32c::crc32c(b) as u64,
                b.len() as u64
            ),
            Some(crc32c::crc32c(&whole) as u64)
        );
        let nvme = |d: &[u8]| {
            let mut h = crc64fast_nvme::Digest::new();
            h.write(d);
            h.sum64()
        };
        assert_eq!(
            combine("CRC64NVME", nvme(a), nvme(b), b.len() as u64),
            Some(nvme(&whole))
        );
        let big = vec![7u8; 1 << 20];
        assert_eq!(
            combine("CRC64NVME", nvme(a), nvme(&big), big.len() as u64),
            Some(nvme(&[a, &big[..]].concat()))
        );
        assert_eq!(combine("SHA256", 1, 2, 3), None);
    }
}
