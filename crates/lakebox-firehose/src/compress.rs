//! Firehose's output compression: GZIP, ZIP, Snappy (framed) and HADOOP_SNAPPY, with the
//! file extensions Firehose gives them.

use std::io::Write;

use flate2::Compression;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Uncompressed,
    Gzip,
    Zip,
    Snappy,
    HadoopSnappy,
}

impl Format {
    pub fn parse(s: Option<&str>) -> Option<Format> {
        Some(match s.unwrap_or("UNCOMPRESSED") {
            "UNCOMPRESSED" => Format::Uncompressed,
            "GZIP" => Format::Gzip,
            "ZIP" => Format::Zip,
            "Snappy" => Format::Snappy,
            "HADOOP_SNAPPY" => Format::HadoopSnappy,
            _ => return None,
        })
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Uncompressed => "",
            Format::Gzip => ".gz",
            Format::Zip => ".zip",
            Format::Snappy => ".snappy",
            Format::HadoopSnappy => ".hsnappy",
        }
    }

    /// The object's Content-Encoding / type hints are not set by Firehose; only the bytes change.
    pub fn compress(self, data: &[u8], entry_name: &str) -> Vec<u8> {
        match self {
            Format::Uncompressed => data.to_vec(),
            Format::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
                e.write_all(data).expect("in-memory write");
                e.finish().expect("in-memory write")
            }
            Format::Zip => zip_one(entry_name, data),
            Format::Snappy => {
                let mut e = snap::write::FrameEncoder::new(Vec::new());
                e.write_all(data).expect("in-memory write");
                e.into_inner().expect("in-memory write")
            }
            Format::HadoopSnappy => hadoop_snappy(data),
        }
    }
}

/// Hadoop's block format: for each block, the uncompressed length, then one compressed chunk
/// with its length (big-endian u32s).
fn hadoop_snappy(data: &[u8]) -> Vec<u8> {
    const BLOCK: usize = 256 * 1024;
    let mut out = Vec::with_capacity(data.len() / 2 + 16);
    let mut enc = snap::raw::Encoder::new();
    for block in data.chunks(BLOCK) {
        let c = enc.compress_vec(block).expect("snappy compresses any input");
        out.extend_from_slice(&(block.len() as u32).to_be_bytes());
        out.extend_from_slice(&(c.len() as u32).to_be_bytes());
        out.extend_from_slice(&c);
    }
    out
}

/// A ZIP archive holding one deflated entry.
fn zip_one(name: &str, data: &[u8]) -> Vec<u8> {
    let mut deflated = flate2::write::DeflateEncoder::new(Vec::new(), Compression::default());
    deflated.write_all(data).expect("in-memory write");
    let deflated = deflated.finish().expect("in-memory write");
    let crc = crc32fast::hash(data);
    let name = name.as_bytes();
    // ZIP32 limits; Firehose objects are at most 128 MiB.
    let (csize, usize_) = (deflated.len() as u32, data.len() as u32);
    let mut out = Vec::with_capacity(deflated.len() + 128);
    let u16le = |v: u16| v.to_le_bytes();
    let u32le = |v: u32| v.to_le_bytes();
    // Local file header.
    out.extend_from_slice(&u32le(0x0403_4b50));
    out.extend_from_slice(&u16le(20)); // version needed
    out.extend_from_slice(&u16le(0)); // flags
    out.extend_from_slice(&u16le(8)); // deflate
    out.extend_from_slice(&u16le(0)); // time
    out.extend_from_slice(&u16le(0x21)); // date 1980-01-01
    out.extend_from_slice(&u32le(crc));
    out.extend_from_slice(&u32le(csize));
    out.extend_from_slice(&u32le(usize_));
    out.extend_from_slice(&u16le(name.len() as u16));
    out.extend_from_slice(&u16le(0));
    out.extend_from_slice(name);
    out.extend_from_slice(&deflated);
    let central = out.len() as u32;
    // Central directory.
    out.extend_from_slice(&u32le(0x0201_4b50));
    out.extend_from_slice(&u16le(20)); // made by
    out.extend_from_slice(&u16le(20));
    out.extend_from_slice(&u16le(0));
    out.extend_from_slice(&u16le(8));
    out.extend_from_slice(&u16le(0));
    out.extend_from_slice(&u16le(0x21));
    out.extend_from_slice(&u32le(crc));
    out.extend_from_slice(&u32le(csize));
    out.extend_from_slice(&u32le(usize_));
    out.extend_from_slice(&u16le(name.len() as u16));
    out.extend_from_slice(&u16le(0)); // extra
    out.extend_from_slice(&u16le(0)); // comment
    out.extend_from_slice(&u16le(0)); // disk
    out.extend_from_slice(&u16le(0)); // internal attrs
    out.extend_from_slice(&u32le(0)); // external attrs
    out.extend_from_slice(&u32le(0)); // local header offset
    out.extend_from_slice(name);
    let central_len = out.len() as u32 - central;
    // End of central directory.
    out.extend_from_slice(&u32le(0x0605_4b50));
    out.extend_from_slice(&u16le(0));
    out.extend_from_slice(&u16le(0));
    out.extend_from_slice(&u16le(1));
    out.extend_from_slice(&u16le(1));
    out.extend_from_slice(&u32le(central_len));
    out.extend_from_slice(&u32le(central));
    out.extend_from_slice(&u16le(0));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn round_trips() {
        let data: Vec<u8> = (0..300_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        let gz = Format::Gzip.compress(&data, "x");
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        let sn = Format::Snappy.compress(&data, "x");
        let mut back = Vec::new();
        snap::read::FrameDecoder::new(&sn[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        let hs = Format::HadoopSnappy.compress(&data, "x");
        assert_eq!(u32::from_be_bytes(hs[..4].try_into().unwrap()), 256 * 1024);
        let zip = Format::Zip.compress(b"hello", "f");
        assert!(zip.starts_with(b"PK\x03\x04") && zip.windows(4).any(|w| w == b"PK\x05\x06"));
    }
}
