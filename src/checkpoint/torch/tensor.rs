//! Tensors rebuilt from their storages: each storage reference checked against the file, and
//! every view's size, stride and offset against the storage it reads.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use super::{bad, storage_dtype, text, Reader, StorageRef, MAX_KEY_LEN, MAX_RANK};
use crate::error::Result;
use crate::pickle::{Id, Obj, Pickle};

fn storage_ref(path: &Path, p: &Pickle, pid: Id) -> Result<StorageRef> {
    let items = p
        .as_seq(pid)
        .ok_or_else(|| bad(path, "a persistent id is not a tuple"))?;
    let text = |id: Id| text(p, id);
    let count = |id: Id| p.as_int(id).and_then(|v| usize::try_from(v).ok());
    let [kind, class, key, _location, numel, rest @ ..] = items else {
        return Err(bad(path, "a storage id has too few fields"));
    };
    if text(*kind).as_deref() != Some("storage") {
        return Err(bad(path, "a persistent id that is not a storage"));
    }
    let Some(name) = p.global_name(*class) else {
        return Err(bad(path, "a storage id without a storage class"));
    };
    let (dtype, element_size) =
        storage_dtype(name).ok_or_else(|| bad(path, format!("unsupported storage type {name}")))?;
    if p.as_bytes_len(*key).is_some_and(|n| n > MAX_KEY_LEN) {
        return Err(bad(
            path,
            format!("a storage key longer than {MAX_KEY_LEN} bytes"),
        ));
    }
    let key = text(*key).ok_or_else(|| bad(path, "a storage key is not a string"))?;
    let numel = count(*numel).ok_or_else(|| bad(path, "a storage size is not a count"))?;
    let view = match rest.first().map(|&id| (id, p.as_seq(id))) {
        Some((_, Some([root, offset, size]))) => Some((
            text(*root).ok_or_else(|| bad(path, "a storage view's root is not a string"))?,
            count(*offset).ok_or_else(|| bad(path, "bad storage view offset"))?,
            count(*size).ok_or_else(|| bad(path, "bad storage view size"))?,
        )),
        _ => None,
    };
    Ok(StorageRef {
        key,
        dtype,
        element_size,
        numel,
        view,
    })
}

/// Every storage the object pickle refers to, by key. All references to one key must agree
/// on its type and size (the file holds one buffer per key).
pub(super) fn storage_refs(path: &Path, p: &Pickle) -> Result<BTreeMap<String, StorageRef>> {
    let mut refs: BTreeMap<String, StorageRef> = BTreeMap::new();
    // A persistent id shared through the memo is described once, however often it is used.
    let mut seen = std::collections::HashSet::new();
    for obj in &p.objects {
        if let Obj::PersistentId(pid) = obj {
            if !seen.insert(*pid) {
                continue;
            }
            let r = storage_ref(path, p, *pid)?;
            match refs.get(&r.key) {
                Some(seen) if (seen.dtype, seen.element_size, seen.numel) != (r.dtype, r.element_size, r.numel) => {
                    return Err(bad(
                        path,
                        format!(
                            "storage {} is described twice, as {} {:?} elements and as {} {:?} elements",
                            r.key, seen.numel, seen.dtype, r.numel, r.dtype
                        ),
                    ))
                }
                Some(_) => {}
                None => {
                    refs.insert(r.key.clone(), r);
                }
            }
        }
    }
    Ok(refs)
}

/// Converts raw file bytes of `element_size` to candle's layout for `dtype` (int32 widens).
pub(super) fn to_candle_bytes(raw: Vec<u8>, dtype: DType, element_size: usize) -> Vec<u8> {
    if dtype == DType::I64 && element_size == 4 {
        raw.chunks_exact(4)
            .flat_map(|c| (i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64).to_le_bytes())
            .collect()
    } else {
        raw
    }
}

pub(super) fn byte_len(path: &Path, numel: usize, element_size: usize) -> Result<usize> {
    numel.checked_mul(element_size).ok_or_else(|| {
        bad(
            path,
            format!("storage of {numel} elements is impossibly large"),
        )
    })
}

impl Reader<'_> {
    /// The tensor the call `id` rebuilds, built once however often it is referred to.
    pub(super) fn shared_tensor(&self, id: Id, args: Id) -> Result<Tensor> {
        if let Some(t) = self.tensors.borrow().get(&id) {
            return Ok(t.clone());
        }
        let t = self.tensor(args)?;
        self.tensors.borrow_mut().insert(id, t.clone());
        Ok(t)
    }

    /// A tensor's size or stride: at most [`MAX_RANK`] non-negative integers.
    fn dims(&self, id: Id) -> Result<Vec<usize>> {
        let p = &self.pickle;
        let items = p
            .as_seq(id)
            .ok_or_else(|| self.bad("a tensor size or stride is not a tuple"))?;
        if items.len() > MAX_RANK {
            return Err(self.bad(format!(
                "a tensor of {} dimensions (at most {MAX_RANK})",
                items.len()
            )));
        }
        items
            .iter()
            .map(|&d| {
                p.as_int(d)
                    .and_then(|v| usize::try_from(v).ok())
                    .ok_or_else(|| self.bad("bad tensor size or stride"))
            })
            .collect()
    }

    /// `_rebuild_tensor[_v2](storage, offset, size, stride, …)`.
    fn tensor(&self, args: Id) -> Result<Tensor> {
        let p = &self.pickle;
        let args = p
            .as_seq(args)
            .ok_or_else(|| self.bad("tensor arguments are not a tuple"))?;
        let [storage, offset, size, stride, ..] = args else {
            return Err(self.bad("a tensor with too few arguments"));
        };
        let Obj::PersistentId(pid) = p.get(*storage) else {
            return Err(self.bad("a tensor whose storage is not a persistent id"));
        };
        let r = storage_ref(self.path, p, *pid)?;
        let (size, stride) = (self.dims(*size)?, self.dims(*stride)?);
        let offset = p
            .as_int(*offset)
            .and_then(|v| usize::try_from(v).ok())
            .ok_or_else(|| self.bad("bad storage offset"))?;
        if size.len() != stride.len() {
            return Err(self.bad("tensor size and stride differ in rank"));
        }
        let (root_key, view_offset, numel) = match &r.view {
            Some((root, view_offset, view_size)) => (root.as_str(), *view_offset, *view_size),
            None => (r.key.as_str(), 0, r.numel),
        };
        let data = self
            .storages
            .get(root_key)
            .ok_or_else(|| self.bad(format!("storage {root_key} is missing")))?;
        let element = r.dtype.size_in_bytes();
        let count = size
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| self.bad("tensor too large"))?;
        if count > numel.max(1) {
            return Err(self.bad(format!(
                "a tensor of {count} elements over a storage of {numel}"
            )));
        }
        // The elements this tensor may reach: the view's window within the root storage.
        let window_end = view_offset
            .checked_add(numel)
            .and_then(|end| end.checked_mul(element));
        if window_end.is_none_or(|end| end > data.len()) {
            return Err(self.bad(format!(
                "a view of {numel} elements at {view_offset} reaches past storage {root_key}"
            )));
        }
        let bytes_needed = count * element; // ≤ numel · element ≤ data.len(): no overflow
        let left = self.copy_left.get();
        if bytes_needed > left {
            return Err(
                self.bad("its tensors copy far more bytes than its storages hold; refusing")
            );
        }
        self.copy_left.set(left - bytes_needed);
        let mut bytes = Vec::with_capacity(bytes_needed);
        if count > 0 {
            // Every dimension is ≥ 1 here (count > 0), and the last element's index bounds all
            // others, so checking it checks every index below.
            let last = size
                .iter()
                .zip(&stride)
                .try_fold(offset, |a, (&d, &s)| a.checked_add((d - 1).checked_mul(s)?));
            if last.is_none_or(|last| last >= numel) {
                return Err(self.bad(format!("a tensor view reaches past its storage {root_key}")));
            }
            let window = &data[view_offset * element..(view_offset + numel) * element];
            copy_strided(window, element, offset, &size, &stride, &mut bytes);
        }
        Ok(Tensor::from_raw_buffer(
            &bytes,
            r.dtype,
            &size,
            &Device::Cpu,
        )?)
    }
}

/// Appends the elements of the strided view (`offset`, `size`, `stride`, in elements of
/// `element` bytes) of `window` to `out`, in row-major order. The caller has checked that the
/// view's last element lies inside `window`.
fn copy_strided(
    window: &[u8],
    element: usize,
    offset: usize,
    size: &[usize],
    stride: &[usize],
    out: &mut Vec<u8>,
) {
    let count: usize = size.iter().product();
    let mut index = vec![0usize; size.len()];
    for _ in 0..count {
        let at = offset + index.iter().zip(stride).map(|(i, s)| i * s).sum::<usize>();
        out.extend_from_slice(&window[at * element..(at + 1) * element]);
        for axis in (0..size.len()).rev() {
            index[axis] += 1;
            if index[axis] < size[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
}
