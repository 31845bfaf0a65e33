//! IDX files (MNIST, Fashion-MNIST), gzip-compressed or raw: `{t10k,train}-images-idx3-ubyte`
//! and `{t10k,train}-labels-idx1-ubyte`, as the Debian package `dataset-fashion-mnist`
//! installs them under `/usr/share/datasets/fashion-mnist/`.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::data::{Split, Store};
use crate::error::{Error, Result};

fn prefix(split: Split) -> &'static str {
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

/// Inflates `raw` when it starts with the gzip magic; `path` names it in errors.
pub fn maybe_gunzip(path: &Path, raw: Vec<u8>) -> Result<Vec<u8>> {
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(raw.as_slice())
        .read_to_end(&mut out)
        .map_err(|e| Error::bad_input(path, format!("corrupt or truncated gzip data: {e}")))?;
    Ok(out)
}

/// Parses an IDX header of unsigned bytes with `rank` dimensions; returns the dimensions and
/// the payload, whose length must be exactly their product.
fn parse(path: &Path, bytes: &[u8], rank: u8) -> Result<(Vec<usize>, Vec<u8>)> {
    let header_len = 4 + 4 * rank as usize;
    if bytes.len() < header_len {
        return Err(Error::bad_input(
            path,
            format!(
                "truncated IDX file: {} bytes, shorter than its header",
                bytes.len()
            ),
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 || bytes[3] != rank {
        return Err(Error::bad_input(
            path,
            format!(
                "not an IDX file of unsigned bytes with {rank} dimension(s) (magic {:02x?})",
                &bytes[..4]
            ),
        ));
    }
    let dims: Vec<usize> = bytes[4..header_len]
        .chunks(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let expected = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let payload = &bytes[header_len..];
    if expected != Some(payload.len()) {
        return Err(Error::bad_input(
            path,
            format!("truncated or corrupt IDX file: header says {dims:?} ({} bytes), file holds {} bytes", expected.map_or("too many".to_string(), |e| e.to_string()), payload.len()),
        ));
    }
    Ok((dims, payload.to_vec()))
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
    let read = |path: &Path| std::fs::read(path).map_err(|e| Error::io(path, e));
    parse_pair(
        (&images_path, read(&images_path)?),
        (&labels_path, read(&labels_path)?),
    )
}

/// An images file and a labels file (each named for errors, gzip-compressed or raw).
pub fn parse_pair(images: (&Path, Vec<u8>), labels: (&Path, Vec<u8>)) -> Result<Store> {
    let (images_path, labels_path) = (images.0, labels.0);
    let (dims, pixels) = parse(images_path, &maybe_gunzip(images_path, images.1)?, 3)?;
    let (_, labels) = parse(labels_path, &maybe_gunzip(labels_path, labels.1)?, 1)?;
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
