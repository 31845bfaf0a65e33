//! The two file formats around the object pickle: the zip archive (PyTorch ≥ 1.6) and the
//! legacy stream of pickles and raw storages (PyTorch ≤ 1.5), each checked entry by entry.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::path::Path;

use super::tensor::{byte_len, storage_refs, to_candle_bytes};
use super::{bad, read_pickle, text, Reader, LEGACY_MAGIC, MAX_INFLATION, MAX_KEY_LEN};
use crate::error::Result;
use crate::pickle::Pickle;

impl<'a> Reader<'a> {
    pub(super) fn zip(path: &'a Path, bytes: &[u8]) -> Result<Self> {
        let zip_error = |e: zip::result::ZipError| {
            bad(
                path,
                format!("corrupt or truncated PyTorch zip archive: {e}"),
            )
        };
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(zip_error)?;
        if zip_entry_count(bytes).is_some_and(|n| n != archive.len() as u64) {
            return Err(bad(
                path,
                "zip archive lists an entry name twice; refusing an ambiguous checkpoint",
            ));
        }
        let mut inflate_left = bytes.len().saturating_mul(MAX_INFLATION).max(1 << 20);
        let pkl_name = archive
            .file_names()
            .filter_map(|n| n.ok())
            .find(|n| n.ends_with("data.pkl"))
            .map(|n| n.into_owned())
            .ok_or_else(|| bad(path, "zip archive without data.pkl: not a torch.save file"))?;
        let prefix = pkl_name.trim_end_matches("data.pkl").to_string();
        let pkl = read_entry(path, &mut archive, &pkl_name, None, &mut inflate_left)?;
        let pickle = read_pickle(path, &pkl, "data.pkl")?;
        let mut storages = HashMap::new();
        for (key, r) in storage_refs(path, &pickle)? {
            let len = byte_len(path, r.numel, r.element_size)?;
            let raw = read_entry(
                path,
                &mut archive,
                &format!("{prefix}data/{key}"),
                Some(len),
                &mut inflate_left,
            )?;
            storages.insert(key, to_candle_bytes(raw, r.dtype, r.element_size));
        }
        Ok(Self::new(path, pickle, storages))
    }

    fn new(path: &'a Path, pickle: Pickle, storages: HashMap<String, Vec<u8>>) -> Self {
        let stored: usize = storages.values().map(Vec::len).sum();
        Self {
            visits_left: Cell::new(pickle.objects.len().saturating_mul(2).saturating_add(64)),
            copy_left: Cell::new(stored.saturating_mul(2)),
            text_left: Cell::new(pickle.consumed.saturating_mul(2).saturating_add(1 << 20)),
            tensors: RefCell::new(HashMap::new()),
            path,
            pickle,
            storages,
        }
    }

    pub(super) fn legacy(path: &'a Path, bytes: &[u8]) -> Result<Self> {
        // The magic number is a 10-byte integer; checked as bytes, then skip its STOP.
        let mut pos = LEGACY_MAGIC.len() + 1;
        if bytes.get(pos - 1) != Some(&b'.') {
            return Err(bad(path, "bad legacy PyTorch header"));
        }
        let mut next = |what: &str| -> Result<Pickle> {
            let p = read_pickle(path, bytes.get(pos..).unwrap_or_default(), what)?;
            pos += p.consumed;
            Ok(p)
        };
        let _protocol = next("protocol version")?;
        let _sys_info = next("system info")?;
        let pickle = next("checkpoint object")?;
        let keys_pickle = next("storage keys")?;
        let keys: Vec<String> = keys_pickle
            .as_seq(keys_pickle.root)
            .ok_or_else(|| bad(path, "storage keys are not a list"))?
            .iter()
            .map(|&id| {
                if keys_pickle
                    .as_bytes_len(id)
                    .is_some_and(|n| n > MAX_KEY_LEN)
                {
                    return Err(bad(
                        path,
                        format!("a storage key longer than {MAX_KEY_LEN} bytes"),
                    ));
                }
                text(&keys_pickle, id).ok_or_else(|| bad(path, "a storage key is not a string"))
            })
            .collect::<Result<_>>()?;
        let refs = storage_refs(path, &pickle)?;
        let mut storages = HashMap::new();
        for key in keys {
            let header = bytes
                .get(pos..pos + 8)
                .ok_or_else(|| bad(path, format!("truncated before storage {key}")))?;
            let numel = u64::from_le_bytes(
                header
                    .try_into()
                    .map_err(|_| bad(path, "truncated storage header"))?,
            );
            pos += 8;
            let r = refs.get(&key).ok_or_else(|| {
                bad(
                    path,
                    format!("storage {key} is not referred to by the checkpoint"),
                )
            })?;
            if numel != r.numel as u64 {
                return Err(bad(
                    path,
                    format!(
                        "storage {key} holds {numel} elements, its tensor says {}",
                        r.numel
                    ),
                ));
            }
            let len = byte_len(path, r.numel, r.element_size)?;
            let raw = bytes.get(pos..pos.saturating_add(len)).ok_or_else(|| {
                bad(
                    path,
                    format!(
                        "truncated: storage {key} needs {len} bytes, {} remain",
                        bytes.len().saturating_sub(pos)
                    ),
                )
            })?;
            pos += len;
            if storages
                .insert(
                    key.clone(),
                    to_candle_bytes(raw.to_vec(), r.dtype, r.element_size),
                )
                .is_some()
            {
                return Err(bad(path, format!("storage {key} is stored twice")));
            }
        }
        Ok(Self::new(path, pickle, storages))
    }
}

/// The number of entries the zip's end-of-central-directory record declares (zip64 too), or
/// `None` when it cannot be found. The zip reader keeps one entry per name, so a count above
/// its own reveals a name listed twice.
fn zip_entry_count(bytes: &[u8]) -> Option<u64> {
    const EOCD: &[u8] = b"PK\x05\x06";
    let search_from = bytes.len().saturating_sub(22 + 65_535);
    let eocd = search_from + bytes[search_from..].windows(4).rposition(|w| w == EOCD)?;
    let u16_at = |at: usize| Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?));
    let count = u16_at(eocd + 10)?;
    if count != u16::MAX {
        return Some(u64::from(count));
    }
    // Zip64: a locator 20 bytes before the record points at the zip64 record.
    let locator = eocd.checked_sub(20)?;
    if bytes.get(locator..locator + 4)? != b"PK\x06\x07" {
        return None;
    }
    let record = usize::try_from(u64_at(locator + 8)?).ok()?;
    if bytes.get(record..record.checked_add(4)?)? != b"PK\x06\x06" {
        return None;
    }
    u64_at(record + 32)
}

fn read_entry(
    path: &Path,
    archive: &mut zip::ZipArchive<Cursor<&[u8]>>,
    name: &str,
    expected: Option<usize>,
    inflate_left: &mut usize,
) -> Result<Vec<u8>> {
    let mut entry = archive
        .by_name(name)
        .map_err(|e| bad(path, format!("zip entry {name}: {e}")))?;
    let declared = usize::try_from(entry.size()).unwrap_or(usize::MAX);
    if declared > *inflate_left {
        return Err(bad(
            path,
            format!(
                "zip entry {name} would inflate to {} bytes, more than {MAX_INFLATION}x the file; refusing",
                entry.size()
            ),
        ));
    }
    *inflate_left -= declared;
    if let Some(expected) = expected {
        if entry.size() != expected as u64 {
            return Err(bad(
                path,
                format!(
                    "zip entry {name} holds {} bytes, its tensor needs {expected}",
                    entry.size()
                ),
            ));
        }
    }
    let limit = expected.map_or(entry.size(), |e| e as u64);
    let mut out = Vec::new();
    entry
        .by_ref()
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| bad(path, format!("zip entry {name}: {e}")))?;
    Ok(out)
}
