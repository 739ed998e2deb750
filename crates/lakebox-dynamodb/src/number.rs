//! DynamoDB's numbers: decimal, up to 38 significant digits, magnitudes from 1E-130 to
//! 9.99…E+125; stored and answered in one canonical form (no exponent, no leading or trailing
//! zeros: `"1e2"` is `"100"`, `"-0.50"` is `"-0.5"`), compared by value, and encoded into keys
//! so that byte order is numeric order.

use std::cmp::Ordering;

/// Most significant digits a number keeps.
const MAX_DIGITS: usize = 38;
/// `exp` bounds (the value is 0.d₁d₂… × 10^exp): 9.99…E+125 has exp 126, 1E-130 has exp -129.
const MAX_EXP: i32 = 126;
const MIN_EXP: i32 = -129;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Number {
    negative: bool,
    /// Significant digits (0–9), no leading or trailing zeros; empty for zero.
    digits: Vec<u8>,
    exp: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberError {
    /// Not a number at all; holds the text (AWS names it unless it is empty).
    NotNumeric(String),
    TooPrecise,
    Overflow,
    Underflow,
}

impl NumberError {
    /// DynamoDB's words.
    pub fn message(&self) -> String {
        match self {
            NumberError::NotNumeric(s) if s.is_empty() => {
                "The parameter cannot be converted to a numeric value".into()
            }
            NumberError::NotNumeric(s) => {
                format!("The parameter cannot be converted to a numeric value: {s}")
            }
            NumberError::TooPrecise => {
                "Attempting to store more than 38 significant digits in a Number".into()
            }
            NumberError::Overflow => {
                "Number overflow. Attempting to store a number with magnitude larger than supported range"
                    .into()
            }
            NumberError::Underflow => {
                "Number underflow. Attempting to store a number with magnitude smaller than supported range"
                    .into()
            }
        }
    }
}

impl Number {
    pub fn zero() -> Number {
        Number {
            negative: false,
            digits: Vec::new(),
            exp: 0,
        }
    }

    pub fn parse(text: &str) -> Result<Number, NumberError> {
        let bad = || NumberError::NotNumeric(text.to_owned());
        let b = text.as_bytes();
        let mut i = 0;
        let mut negative = false;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            negative = b[i] == b'-';
            i += 1;
        }
        let mut mantissa = Vec::new();
        let mut point: Option<usize> = None;
        let mut seen_digit = false;
        while i < b.len() {
            match b[i] {
                c @ b'0'..=b'9' => {
                    mantissa.push(c - b'0');
                    seen_digit = true;
                }
                b'.' if point.is_none() => point = Some(mantissa.len()),
                _ => break,
            }
            i += 1;
        }
        if !seen_digit {
            return Err(bad());
        }
        let mut exp10: i64 = 0;
        if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            i += 1;
            let mut eneg = false;
            if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                eneg = b[i] == b'-';
                i += 1;
            }
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                exp10 = (exp10 * 10 + (b[i] - b'0') as i64).min(1_000_000);
                i += 1;
            }
            if i == start {
                return Err(bad());
            }
            if eneg {
                exp10 = -exp10;
            }
        }
        if i != b.len() {
            return Err(bad());
        }
        // value = 0.mantissa × 10^(int_len + exp10)
        let int_len = point.unwrap_or(mantissa.len()) as i64;
        let lead = mantissa.iter().take_while(|&&d| d == 0).count();
        let digits: Vec<u8> = mantissa[lead..].to_vec();
        let exp = int_len - lead as i64 + exp10;
        Number::from_parts(negative, digits, exp)
    }

    /// Trims and checks a result: digits may carry leading or trailing zeros.
    fn from_parts(negative: bool, mut digits: Vec<u8>, mut exp: i64) -> Result<Number, NumberError> {
        let lead = digits.iter().take_while(|&&d| d == 0).count();
        digits.drain(..lead);
        exp -= lead as i64;
        while digits.last() == Some(&0) {
            digits.pop();
        }
        if digits.is_empty() {
            return Ok(Number::zero());
        }
        if exp > MAX_EXP as i64 {
            return Err(NumberError::Overflow);
        }
        if exp < MIN_EXP as i64 {
            return Err(NumberError::Underflow);
        }
        if digits.len() > MAX_DIGITS {
            return Err(NumberError::TooPrecise);
        }
        Ok(Number {
            negative,
            digits,
            exp: exp as i32,
        })
    }

    pub fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    /// Significant digits, for DynamoDB's size accounting.
    pub fn significant_digits(&self) -> usize {
        self.digits.len()
    }

    pub fn add(&self, other: &Number) -> Result<Number, NumberError> {
        if self.is_zero() {
            return Ok(other.clone());
        }
        if other.is_zero() {
            return Ok(self.clone());
        }
        // Align both on the smaller last-digit position: digit i of a is worth 10^(exp-1-i).
        let low = |n: &Number| n.exp as i64 - n.digits.len() as i64;
        let lo = low(self).min(low(other));
        let hi = (self.exp.max(other.exp)) as i64 + 1;
        let width = (hi - lo) as usize;
        let spread = |n: &Number| {
            let mut v = vec![0i16; width];
            for (i, d) in n.digits.iter().enumerate() {
                let pos = (n.exp as i64 - 1 - i as i64 - lo) as usize;
                v[pos] = *d as i16;
            }
            v
        };
        let (a, b) = (spread(self), spread(other));
        let (neg, sum) = if self.negative == other.negative {
            let mut out = vec![0i16; width];
            let mut carry = 0;
            for i in 0..width {
                let s = a[i] + b[i] + carry;
                out[i] = s % 10;
                carry = s / 10;
            }
            (self.negative, out)
        } else {
            let (big, small, neg) = match self.cmp_magnitude(other) {
                Ordering::Equal => return Ok(Number::zero()),
                Ordering::Greater => (a, b, self.negative),
                Ordering::Less => (b, a, other.negative),
            };
            let mut out = vec![0i16; width];
            let mut borrow = 0;
            for i in 0..width {
                let mut d = big[i] - small[i] - borrow;
                borrow = 0;
                if d < 0 {
                    d += 10;
                    borrow = 1;
                }
                out[i] = d;
            }
            (neg, out)
        };
        // `sum` is little-endian from position lo; most significant first for from_parts.
        let digits: Vec<u8> = sum.iter().rev().map(|&d| d as u8).collect();
        Number::from_parts(neg, digits, hi)
    }

    pub fn negate(&self) -> Number {
        let mut n = self.clone();
        if !n.is_zero() {
            n.negative = !n.negative;
        }
        n
    }

    fn cmp_magnitude(&self, other: &Number) -> Ordering {
        match (self.is_zero(), other.is_zero()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
        self.exp
            .cmp(&other.exp)
            .then_with(|| self.digits.cmp(&other.digits))
    }

    /// Bytes whose order is the numbers' order, self-delimiting (for composite keys).
    pub fn key_bytes(&self, out: &mut Vec<u8>) {
        if self.is_zero() {
            out.push(0x80);
            return;
        }
        let e = (self.exp - MIN_EXP) as u8;
        if self.negative {
            out.push(0x7F);
            out.push(255 - e);
            out.extend(self.digits.iter().map(|d| 10 - d));
            out.push(0xFF);
        } else {
            out.push(0x81);
            out.push(e);
            out.extend(self.digits.iter().map(|d| d + 1));
            out.push(0x00);
        }
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Number) -> Ordering {
        match (
            self.is_zero() || !self.negative,
            other.is_zero() || !other.negative,
        ) {
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (true, true) => self.cmp_magnitude(other),
            (false, false) => other.cmp_magnitude(self),
        }
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Number) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The canonical text: plain decimal notation.
impl std::fmt::Display for Number {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_zero() {
            return f.write_str("0");
        }
        let mut s = String::with_capacity(self.digits.len() + 8);
        if self.negative {
            s.push('-');
        }
        let digit = |d: &u8| (b'0' + d) as char;
        let n = self.digits.len() as i32;
        if self.exp <= 0 {
            s.push_str("0.");
            for _ in 0..-self.exp {
                s.push('0');
            }
            s.extend(self.digits.iter().map(digit));
        } else if self.exp >= n {
            s.extend(self.digits.iter().map(digit));
            for _ in 0..self.exp - n {
                s.push('0');
            }
        } else {
            let (int, frac) = self.digits.split_at(self.exp as usize);
            s.extend(int.iter().map(digit));
            s.push('.');
            s.extend(frac.iter().map(digit));
        }
        f.write_str(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Number {
        Number::parse(s).unwrap()
    }

    #[test]
    fn canonical_form() {
        for (input, out) in [
            ("1e2", "100"),
            ("-0.50", "-0.5"),
            ("-0", "0"),
            ("000123.4500", "123.45"),
            ("1E-5", "0.00001"),
            (".5", "0.5"),
            ("5.", "5"),
            ("+7", "7"),
            ("12.5e-1", "1.25"),
        ] {
            assert_eq!(n(input).to_string(), out, "{input}");
        }
    }

    #[test]
    fn limits_in_dynamodb_words() {
        assert_eq!(
            Number::parse("123456789012345678901234567890123456789"),
            Err(NumberError::TooPrecise)
        );
        assert!(Number::parse("12345678901234567890123456789012345678").is_ok());
        assert_eq!(Number::parse("1e126"), Err(NumberError::Overflow));
        assert!(Number::parse("9.9999999999999999999999999999999999999E+125").is_ok());
        assert_eq!(Number::parse("1e-131"), Err(NumberError::Underflow));
        assert!(Number::parse("1e-130").is_ok());
        for bad in ["", "b", "1e", "--1", "1.2.3", " 1", "e5", "."] {
            assert!(
                matches!(Number::parse(bad), Err(NumberError::NotNumeric(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            Number::parse("b").unwrap_err().message(),
            "The parameter cannot be converted to a numeric value: b"
        );
    }

    #[test]
    fn order_and_key_bytes_agree() {
        let values = [
            "-1000", "-2.5", "-2", "-0.001", "0", "0.001", "0.0011", "1", "2", "10", "10.5", "1e100",
        ];
        for w in values.windows(2) {
            let (a, b) = (n(w[0]), n(w[1]));
            assert!(a < b, "{} < {}", w[0], w[1]);
            let (mut ka, mut kb) = (Vec::new(), Vec::new());
            a.key_bytes(&mut ka);
            b.key_bytes(&mut kb);
            assert!(ka < kb, "key bytes of {} < {}", w[0], w[1]);
        }
        assert_eq!(n("1.0"), n("1"));
    }

    #[test]
    fn arithmetic() {
        assert_eq!(n("1").add(&n("2")).unwrap().to_string(), "3");
        assert_eq!(n("0.1").add(&n("0.2")).unwrap().to_string(), "0.3");
        assert_eq!(n("5").add(&n("-7.5")).unwrap().to_string(), "-2.5");
        assert_eq!(n("99").add(&n("1")).unwrap().to_string(), "100");
        assert_eq!(n("1e10").add(&n("-1e10")).unwrap().to_string(), "0");
        assert_eq!(n("-3").add(&n("-4")).unwrap().to_string(), "-7");
        assert_eq!(n("1e30").add(&n("1e-30")), Err(NumberError::TooPrecise));
        assert_eq!(
            n("9.9999999999999999999999999999999999999E+125").add(&n("1e125")),
            Err(NumberError::Overflow)
        );
    }
}
