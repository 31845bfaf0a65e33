//! IDX files (MNIST, Fashion-MNIST), gzip-compressed or raw: `{t10k,train}-images-idx3-ubyte`
//! and `{t10k,train}-labels-idx1-ubyte`, as the Debian package `dataset-fashion-mnist`
//! installs them under `/usr/share/datasets/fashion-mnist/`.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::data::{Split, Store};
use crate::error::{Error, Result};

/// The file-name prefix of `split`: `t10k` or `train`.
pub fn prefix(split: Split) -> &'static str {
    match split {
        Split::Test => "t10k",
        Split::Train => "train",
    }
}

/// The images file of `split` in `dir`, gzip-compressed or raw, if there is one.
pub fn find(dir: &Path, split: Split, kind: &str) -> Option<PathBuf> {
    let stem = format!("{}-{kind}", prefix(split));
    [format!("{stem}.gz"), stem]
        .into_iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}

/// How many times its size a gzip IDX file may declare (Fashion-MNIST's is 6).
const MAX_GZIP_RATIO: usize = 64;

fn is_gzip(raw: &[u8]) -> bool {
    raw.starts_with(&[0x1f, 0x8b])
}

/// Reads exactly `buf.len()` bytes, or says how many there were.
fn read_full(path: &Path, reader: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(Error::bad_input(
                    path,
                    format!("corrupt or truncated gzip data: {e}"),
                ))
            }
        }
    }
    Ok(filled)
}

/// Parses an IDX file of unsigned bytes with `rank` dimensions, gzip-compressed or raw: the
/// header first, then exactly the payload it declares (a gzip stream is never inflated past
/// it). Every dimension must be at least 1.
fn parse(path: &Path, raw: &[u8], rank: u8) -> Result<(Vec<usize>, Vec<u8>)> {
    let mut reader: Box<dyn Read + '_> = if is_gzip(raw) {
        Box::new(flate2::read::GzDecoder::new(raw))
    } else {
        Box::new(raw)
    };
    let mut header = vec![0u8; 4 + 4 * rank as usize];
    let got = read_full(path, &mut reader, &mut header)?;
    if got < header.len() {
        return Err(Error::bad_input(
            path,
            format!("truncated IDX file: {got} bytes, shorter than its header"),
        ));
    }
    if header[0] != 0 || header[1] != 0 || header[2] != 0x08 || header[3] != rank {
        return Err(Error::bad_input(
            path,
            format!(
                "not an IDX file of unsigned bytes with {rank} dimension(s) (magic {:02x?})",
                &header[..4]
            ),
        ));
    }
    let dims: Vec<usize> = header[4..]
        .chunks(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    if dims.contains(&0) {
        return Err(Error::bad_input(
            path,
            format!("IDX header declares an empty dimension: {dims:?}"),
        ));
    }
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            Error::bad_input(
                path,
                format!("IDX header declares an impossible size {dims:?}"),
            )
        })?;
    // A raw file holds its payload; a gzip stream may declare at most 64 times its size
    // (image sets compress 4-6 times; deflate could reach 1032, which would let a small file
    // ask for gigabytes). Either way the buffer grows only as bytes arrive.
    let possible = if is_gzip(raw) {
        raw.len().saturating_mul(MAX_GZIP_RATIO)
    } else {
        raw.len()
    };
    if expected > possible {
        return Err(Error::bad_input(
            path,
            format!(
                "truncated or corrupt IDX file: header says {dims:?} ({expected} bytes), more than {} can hold",
                if is_gzip(raw) {
                    format!("a gzip file of {} bytes (at most {MAX_GZIP_RATIO}x its size)", raw.len())
                } else {
                    format!("its {} bytes", raw.len())
                }
            ),
        ));
    }
    let mut payload = Vec::new();
    reader
        .by_ref()
        .take(expected as u64)
        .read_to_end(&mut payload)
        .map_err(|e| Error::bad_input(path, format!("corrupt or truncated gzip data: {e}")))?;
    let mut extra = [0u8; 1];
    let beyond = read_full(path, &mut reader, &mut extra)?;
    if payload.len() != expected || beyond != 0 {
        return Err(Error::bad_input(
            path,
            format!(
                "truncated or corrupt IDX file: header says {dims:?} ({expected} bytes), the file holds {}",
                if beyond != 0 { "more".to_string() } else { format!("{} bytes", payload.len()) }
            ),
        ));
    }
    Ok((dims, payload))
}

pub fn load(dir: &Path, split: Split) -> Result<Store> {
    let images_path = find(dir, split, "images-idx3-ubyte").ok_or_else(|| {
        Error::bad_input(
            dir,
            format!("no {}-images-idx3-ubyte[.gz] here", prefix(split)),
        )
    })?;
    let labels_path = find(dir, split, "labels-idx1-ubyte").ok_or_else(|| {
        Error::bad_input(
            dir,
            format!(
                "no {}-labels-idx1-ubyte[.gz] beside the images",
                prefix(split)
            ),
        )
    })?;
    let read = |path: &Path| crate::input::read_file(path);
    parse_pair(
        (&images_path, read(&images_path)?),
        (&labels_path, read(&labels_path)?),
    )
}

/// An images file and a labels file (each named for errors, gzip-compressed or raw).
pub fn parse_pair(images: (&Path, Vec<u8>), labels: (&Path, Vec<u8>)) -> Result<Store> {
    let (images_path, labels_path) = (images.0, labels.0);
    let (dims, pixels) = parse(images_path, &images.1, 3)?;
    let (_, labels) = parse(labels_path, &labels.1, 1)?;
    if labels.len() != dims[0] {
        return Err(Error::bad_input(
            labels_path,
            format!("{} labels for {} images", labels.len(), dims[0]),
        ));
    }
    Ok(Store::InMemory {
        pixels,
        shape: (1, dims[1], dims[2]),
        labels: labels.into_iter().map(u32::from).collect(),
    })
}
