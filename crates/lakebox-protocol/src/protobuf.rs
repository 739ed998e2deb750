//! A minimal protocol-buffers reader and writer: fields by number and wire type, for the few
//! binary formats Lakebox handles by hand (ORC file tails, KPL aggregated records, Athena's
//! result metadata files).

/// One field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed64(u64),
    Fixed32(u32),
}

/// Reads a message's fields in order.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let b = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(b)
    }

    /// The next `(field number, value)`; `None` at the end or on malformed input (check
    /// [`at_end`](Self::at_end) to tell them apart).
    pub fn next_field(&mut self) -> Option<(u64, Field<'a>)> {
        if self.at_end() {
            return None;
        }
        let key = self.varint()?;
        let field = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => Field::Fixed64(u64::from_le_bytes(self.take(8)?.try_into().ok()?)),
            2 => {
                let len = usize::try_from(self.varint()?).ok()?;
                Field::Bytes(self.take(len)?)
            }
            5 => Field::Fixed32(u32::from_le_bytes(self.take(4)?.try_into().ok()?)),
            _ => return None,
        };
        Some((key >> 3, field))
    }
}

/// Appends fields to a message.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer::default()
    }

    fn raw_varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    pub fn varint(&mut self, field: u64, v: u64) -> &mut Self {
        self.raw_varint(field << 3);
        self.raw_varint(v);
        self
    }

    pub fn bytes(&mut self, field: u64, v: &[u8]) -> &mut Self {
        self.raw_varint((field << 3) | 2);
        self.raw_varint(v.len() as u64);
        self.buf.extend_from_slice(v);
        self
    }

    pub fn string(&mut self, field: u64, v: &str) -> &mut Self {
        self.bytes(field, v.as_bytes())
    }

    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields() {
        // field 1 varint 150, field 2 bytes "hi", field 3 fixed32 7
        let msg = [0x08, 0x96, 0x01, 0x12, 0x02, b'h', b'i', 0x1d, 7, 0, 0, 0];
        let mut r = Reader::new(&msg);
        assert_eq!(r.next_field(), Some((1, Field::Varint(150))));
        assert_eq!(r.next_field(), Some((2, Field::Bytes(b"hi"))));
        assert_eq!(r.next_field(), Some((3, Field::Fixed32(7))));
        assert!(r.next_field().is_none() && r.at_end());
        assert!(Reader::new(&[0x12, 0x05, b'x']).next_field().is_none());
    }

    #[test]
    fn writes_what_it_reads() {
        let msg = Writer::new().varint(1, 150).string(2, "hi").finish();
        assert_eq!(msg, [0x08, 0x96, 0x01, 0x12, 0x02, b'h', b'i']);
    }
}
