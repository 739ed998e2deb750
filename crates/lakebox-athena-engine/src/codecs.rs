//! The text compressions DataFusion does not decode itself, as Hadoop and Athena write and read
//! them: Snappy and LZ4, either in Hadoop's block stream (`BlockCompressorStream`: a 4-byte
//! big-endian uncompressed length, then chunks each prefixed with their 4-byte compressed
//! length, repeated) or in the codec's own framing format (`snzip`, `lz4` command-line tools);
//! and Hadoop's DefaultCodec (`.deflate`: a zlib stream, or raw deflate).

use std::io::Read;

use bytes::Bytes;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::error::{DataFusionError, Result};

/// A whole text file compressed as DataFusion reads it (gzip, bzip2, zstd, xz or none), decompressed.
pub fn decompress(compression: FileCompressionType, path: &str, data: Bytes) -> Result<Vec<u8>> {
    if !compression.is_compressed() {
        return Ok(data.into());
    }
    let mut plain = Vec::new();
    compression
        .convert_read(std::io::Cursor::new(data))?
        .read_to_end(&mut plain)
        .map_err(|e| DataFusionError::Execution(format!("HIVE_BAD_DATA: {path}: {e}")))?;
    Ok(plain)
}

/// A codec DataFusion lacks, by the file's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextCodec {
    Snappy,
    Lz4,
    Deflate,
}

impl TextCodec {
    /// The codec of a file named `path`, if it is one of these.
    pub fn of(path: &str) -> Option<TextCodec> {
        let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "snappy" => Some(TextCodec::Snappy),
            "lz4" => Some(TextCodec::Lz4),
            "deflate" => Some(TextCodec::Deflate),
            _ => None,
        }
    }

    /// The whole file, decompressed.
    pub fn decompress(self, path: &str, data: &[u8]) -> Result<Vec<u8>> {
        let fail = |e: String| {
            DataFusionError::Execution(format!(
                "HIVE_BAD_DATA: {path}: not a readable {self:?} file: {e}"
            ))
        };
        match self {
            // Hadoop's DefaultCodec writes zlib (a deflate header whose check bits make it a
            // multiple of 31); raw deflate is read too.
            TextCodec::Deflate
                if data.len() >= 2
                    && data[0] & 0x0f == 8
                    && (u16::from(data[0]) << 8 | u16::from(data[1])) % 31 == 0 =>
            {
                read_all(flate2::read::ZlibDecoder::new(data)).map_err(fail)
            }
            TextCodec::Deflate => read_all(flate2::read::DeflateDecoder::new(data)).map_err(fail),
            TextCodec::Snappy if data.starts_with(SNAPPY_STREAM) => {
                read_all(snap::read::FrameDecoder::new(data)).map_err(fail)
            }
            TextCodec::Lz4 if data.starts_with(&LZ4_FRAME_MAGIC) => {
                read_all(lz4_flex::frame::FrameDecoder::new(data)).map_err(fail)
            }
            TextCodec::Snappy => hadoop_blocks(data, |chunk, _| {
                snap::raw::Decoder::new()
                    .decompress_vec(chunk)
                    .map_err(|e| e.to_string())
            })
            .map_err(fail),
            TextCodec::Lz4 => hadoop_blocks(data, |chunk, room| {
                lz4_flex::block::decompress(chunk, room).map_err(|e| e.to_string())
            })
            .map_err(fail),
        }
    }
}

/// The stream identifier that opens Snappy's framing format.
const SNAPPY_STREAM: &[u8] = b"\xff\x06\x00\x00sNaPpY";
/// The magic number that opens an LZ4 frame (0x184D2204, little-endian).
const LZ4_FRAME_MAGIC: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];

fn read_all(mut r: impl std::io::Read) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::new();
    r.read_to_end(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

fn be_u32(data: &[u8], pos: &mut usize) -> std::result::Result<usize, String> {
    let bytes = data
        .get(*pos..*pos + 4)
        .ok_or_else(|| format!("truncated at byte {pos}"))?;
    *pos += 4;
    Ok(u32::from_be_bytes(bytes.try_into().expect("4 bytes")) as usize)
}

/// Hadoop's block stream: blocks of `[uncompressed length][[chunk length][chunk]]…`, each
/// chunk decoded by `chunk(compressed, room left in the block)`.
fn hadoop_blocks(
    data: &[u8],
    chunk: impl Fn(&[u8], usize) -> std::result::Result<Vec<u8>, String>,
) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let block = be_u32(data, &mut pos)?;
        let start = out.len();
        while out.len() - start < block {
            let len = be_u32(data, &mut pos)?;
            let compressed = data
                .get(pos..pos + len)
                .ok_or_else(|| format!("chunk of {len} bytes truncated at byte {pos}"))?;
            pos += len;
            let plain = chunk(compressed, block - (out.len() - start))?;
            if plain.is_empty() {
                return Err(format!("empty chunk at byte {pos}"));
            }
            out.extend_from_slice(&plain);
        }
        if out.len() - start != block {
            return Err(format!(
                "a block decoded to {} bytes, not {block}",
                out.len() - start
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hadoop's BlockCompressorStream, for the tests: blocks of `block` bytes, one chunk each.
    fn hadoop(plain: &[u8], block: usize, compress: impl Fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
        let mut out = Vec::new();
        for b in plain.chunks(block) {
            out.extend_from_slice(&(b.len() as u32).to_be_bytes());
            let c = compress(b);
            out.extend_from_slice(&(c.len() as u32).to_be_bytes());
            out.extend_from_slice(&c);
        }
        out
    }

    fn text() -> Vec<u8> {
        (0..2000)
            .map(|i| format!("{i},row {i}\n"))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn snappy_in_hadoop_blocks_and_framed() {
        let plain = text();
        let blocks = hadoop(&plain, 4096, |b| {
            snap::raw::Encoder::new().compress_vec(b).unwrap()
        });
        assert_eq!(TextCodec::Snappy.decompress("a.snappy", &blocks).unwrap(), plain);
        let mut framed = Vec::new();
        {
            use std::io::Write;
            let mut w = snap::write::FrameEncoder::new(&mut framed);
            w.write_all(&plain).unwrap();
        }
        assert_eq!(TextCodec::Snappy.decompress("a.snappy", &framed).unwrap(), plain);
        let err = TextCodec::Snappy.decompress("a.snappy", &blocks[..blocks.len() - 3]);
        assert!(err.unwrap_err().to_string().contains("a.snappy"));
    }

    #[test]
    fn deflate_as_zlib_or_raw() {
        use std::io::Write;
        let plain = text();
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&plain).unwrap();
        assert_eq!(
            TextCodec::Deflate
                .decompress("a.deflate", &z.finish().unwrap())
                .unwrap(),
            plain
        );
        let mut d = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        d.write_all(&plain).unwrap();
        assert_eq!(
            TextCodec::Deflate
                .decompress("a.deflate", &d.finish().unwrap())
                .unwrap(),
            plain
        );
    }

    #[test]
    fn lz4_in_hadoop_blocks_and_framed() {
        let plain = text();
        let blocks = hadoop(&plain, 5000, lz4_flex::block::compress);
        assert_eq!(TextCodec::Lz4.decompress("a.lz4", &blocks).unwrap(), plain);
        let mut framed = Vec::new();
        {
            use std::io::Write;
            let mut w = lz4_flex::frame::FrameEncoder::new(&mut framed);
            w.write_all(&plain).unwrap();
            w.finish().unwrap();
        }
        assert_eq!(TextCodec::Lz4.decompress("a.lz4", &framed).unwrap(), plain);
        assert_eq!(TextCodec::of("x/y.LZ4"), Some(TextCodec::Lz4));
        assert_eq!(TextCodec::of("x/y.csv"), None);
    }
}
