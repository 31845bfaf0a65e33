//! CIFAR-10 and CIFAR-100 exactly as their users have them: the binary version
//! (`cifar-10-batches-bin`: `data_batch_{1..5}.bin`, `test_batch.bin`; `cifar-100-binary`:
//! `train.bin`, `test.bin`) and the python version torchvision downloads
//! (`cifar-10-batches-py`, `cifar-100-python`: pickled dicts of numpy arrays, read here
//! without Python). Images are 3x32x32, planes R, G, B.

use std::path::{Path, PathBuf};

use crate::data::{Split, Store};
use crate::error::{Error, Result};
use crate::pickle::{self, Obj, Pickle};

const PIXELS: usize = 3 * 32 * 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Cifar10Bin,
    Cifar10Py,
    Cifar100Bin,
    Cifar100Py,
}

impl Variant {
    /// The files of `split` in the order torchvision reads them.
    fn files(self, split: Split) -> Vec<String> {
        match (self, split) {
            (Variant::Cifar10Bin, Split::Test) => vec!["test_batch.bin".into()],
            (Variant::Cifar10Bin, Split::Train) => {
                (1..=5).map(|i| format!("data_batch_{i}.bin")).collect()
            }
            (Variant::Cifar10Py, Split::Test) => vec!["test_batch".into()],
            (Variant::Cifar10Py, Split::Train) => {
                (1..=5).map(|i| format!("data_batch_{i}")).collect()
            }
            (Variant::Cifar100Bin, Split::Test) => vec!["test.bin".into()],
            (Variant::Cifar100Bin, Split::Train) => vec!["train.bin".into()],
            (Variant::Cifar100Py, Split::Test) => vec!["test".into()],
            (Variant::Cifar100Py, Split::Train) => vec!["train".into()],
        }
    }

    /// Detects the variant from the files in `dir` (any split's files count, so a folder
    /// holding only the test batch is recognised).
    pub fn detect(dir: &Path) -> Option<Variant> {
        [
            Variant::Cifar10Bin,
            Variant::Cifar100Bin,
            Variant::Cifar10Py,
            Variant::Cifar100Py,
        ]
        .into_iter()
        .find(|v| {
            [Split::Test, Split::Train]
                .iter()
                .flat_map(|&s| v.files(s))
                .any(|f| dir.join(f).is_file())
        })
    }
}

pub fn load(dir: &Path, variant: Variant, split: Split) -> Result<Store> {
    let files: Vec<PathBuf> = variant
        .files(split)
        .into_iter()
        .map(|f| dir.join(f))
        .filter(|p| p.is_file())
        .collect();
    if files.is_empty() {
        return Err(Error::bad_input(
            dir,
            format!(
                "no {split} files here (expected {})",
                variant.files(split).join(", ")
            ),
        ));
    }
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for path in &files {
        let bytes = crate::input::read_file(path)?;
        parse_file(path, variant, &bytes, &mut pixels, &mut labels)?;
    }
    Ok(Store::InMemory {
        pixels,
        shape: (3, 32, 32),
        labels,
    })
}

/// Appends the images and labels of one batch file of `variant` (its bytes; `path` names it
/// in errors).
pub fn parse_file(
    path: &Path,
    variant: Variant,
    bytes: &[u8],
    pixels: &mut Vec<u8>,
    labels: &mut Vec<u32>,
) -> Result<()> {
    match variant {
        Variant::Cifar10Bin => read_binary(path, bytes, 1, pixels, labels),
        Variant::Cifar100Bin => read_binary(path, bytes, 2, pixels, labels),
        Variant::Cifar10Py | Variant::Cifar100Py => read_python(path, bytes, pixels, labels),
    }
}

/// Binary records: `label_bytes` label bytes (CIFAR-100: coarse, then fine; we use the last),
/// then 3072 pixel bytes.
fn read_binary(
    path: &Path,
    bytes: &[u8],
    label_bytes: usize,
    pixels: &mut Vec<u8>,
    labels: &mut Vec<u32>,
) -> Result<()> {
    let record = label_bytes + PIXELS;
    if bytes.is_empty() || !bytes.len().is_multiple_of(record) {
        return Err(Error::bad_input(
            path,
            format!("truncated or not a CIFAR binary batch: {} bytes is not a whole number of {record}-byte records", bytes.len()),
        ));
    }
    for r in bytes.chunks(record) {
        labels.push(u32::from(r[label_bytes - 1]));
        pixels.extend_from_slice(&r[label_bytes..]);
    }
    Ok(())
}

/// The globals a pickled dict of numpy arrays names; any other is refused.
fn numpy_globals(module: &str, name: &str) -> bool {
    matches!(
        (module, name),
        (
            "numpy.core.multiarray" | "numpy._core.multiarray",
            "_reconstruct"
        ) | ("numpy", "ndarray" | "dtype")
            | ("_codecs", "encode")
    )
}

fn read_python(
    path: &Path,
    bytes: &[u8],
    pixels: &mut Vec<u8>,
    labels: &mut Vec<u32>,
) -> Result<()> {
    let bad = |problem: String| Error::bad_input(path, problem);
    let p = pickle::read(bytes, numpy_globals)
        .map_err(|e| bad(format!("not a CIFAR python batch: {e}")))?;
    let data = p
        .dict_get(p.root, "data")
        .ok_or_else(|| bad("CIFAR python batch has no 'data' entry".into()))?;
    let (shape, raw) =
        numpy_u8_array(&p, data).ok_or_else(|| bad("'data' is not a numpy uint8 array".into()))?;
    if shape.len() != 2 || shape[1] != PIXELS || Some(raw.len()) != shape[0].checked_mul(PIXELS) {
        return Err(bad(format!(
            "'data' has shape {shape:?} and {} bytes; expected N x {PIXELS}",
            raw.len()
        )));
    }
    let label_ids = p
        .dict_get(p.root, "fine_labels")
        .or_else(|| p.dict_get(p.root, "labels"))
        .and_then(|id| p.as_seq(id))
        .ok_or_else(|| bad("CIFAR python batch has no 'labels' or 'fine_labels' list".into()))?;
    if label_ids.len() != shape[0] {
        return Err(bad(format!(
            "{} labels for {} images",
            label_ids.len(),
            shape[0]
        )));
    }
    for &id in label_ids {
        let label = p
            .as_int(id)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| bad("a label is not a small integer".into()))?;
        labels.push(label);
    }
    pixels.extend_from_slice(&raw);
    Ok(())
}

/// Decodes numpy's pickled `ndarray` (`_reconstruct` + `__setstate__((version, shape, dtype,
/// fortran, data))`) when it is a C-ordered uint8 array.
fn numpy_u8_array(p: &Pickle, id: pickle::Id) -> Option<(Vec<usize>, Vec<u8>)> {
    let Obj::Built { obj, state } = p.get(id) else {
        return None;
    };
    let Obj::Call { func, .. } = p.get(*obj) else {
        return None;
    };
    if p.global_name(*func) != Some("_reconstruct") {
        return None;
    }
    let state = p.as_seq(*state)?;
    let [_, shape, dtype, fortran, data] = state else {
        return None;
    };
    let shape = p
        .as_seq(*shape)?
        .iter()
        .map(|&d| p.as_int(d).and_then(|v| usize::try_from(v).ok()))
        .collect::<Option<Vec<_>>>()?;
    if p.as_int(*fortran)? != 0 || !is_uint8_dtype(p, *dtype) {
        return None;
    }
    Some((shape, p.as_bytes(*data)?))
}

fn is_uint8_dtype(p: &Pickle, id: pickle::Id) -> bool {
    let Obj::Built { obj, .. } = p.get(id) else {
        return false;
    };
    let Obj::Call { args, .. } = p.get(*obj) else {
        return false;
    };
    let Some(&first) = p.as_seq(*args).and_then(|a| a.first()) else {
        return false;
    };
    match p.get(first) {
        Obj::Str(s) => s == "u1",
        Obj::Bytes(b) => b == b"u1",
        _ => false,
    }
}
