//! PyTorch `torch.save` files, both formats, read without Python and without executing
//! anything:
//!
//! - zip (PyTorch ≥ 1.6): `{archive}/data.pkl` plus one entry `{archive}/data/{key}` per
//!   storage;
//! - legacy (PyTorch ≤ 1.5, and `_use_new_zipfile_serialization=False`): five pickles back to
//!   back (magic number, protocol, system info, the object, the storage keys), then each
//!   storage as an int64 element count and its raw bytes, in key order.
//!
//! The object pickle goes through [`crate::pickle`] with only the globals a state dict needs;
//! tensors are rebuilt from their storage, offset, size and stride after checking every index
//! against the storage.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::io::{Cursor, Read};
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};
use crate::pickle::{self, Id, Obj, Pickle};

/// The first four bytes of a zip archive.
pub const ZIP_MAGIC: &[u8; 4] = b"PK\x03\x04";

/// The start of a legacy `torch.save` file: pickle protocol 2, then the LONG1 magic number
/// 0x1950a86a20f9469cfc6c.
pub const LEGACY_MAGIC: &[u8] = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";

/// Python containers nest this deep at most in anything we read; deeper is hostile.
const MAX_DEPTH: usize = 32;

/// A training flag's value is shown in at most this many characters.
const MAX_FIELD_TEXT: usize = 200;

/// A flag's name is shown in at most this many characters; at most this many flags are kept.
const MAX_FIELD_NAME: usize = 64;
const MAX_FIELDS: usize = 256;

/// Tensors have at most this many dimensions (ours have four).
const MAX_RANK: usize = 8;

/// Storage keys are short numbers ("0", "140234…"); a longer one is hostile.
const MAX_KEY_LEN: usize = 256;

/// Zip entries may inflate to this many times the file's size in all (PyTorch stores them
/// uncompressed; a re-zipped checkpoint of weights barely compresses). Bounds a zip bomb.
const MAX_INFLATION: usize = 16;

/// The globals a checkpoint of state dicts may name; any other is refused.
fn allowed_global(module: &str, name: &str) -> bool {
    match module {
        "collections" => name == "OrderedDict",
        "torch._utils" => matches!(
            name,
            "_rebuild_tensor" | "_rebuild_tensor_v2" | "_rebuild_parameter"
        ),
        "torch" => storage_dtype(name).is_some(),
        // Metrics saved as numpy scalars, and Python 3's protocol-2 spelling of bytes.
        "numpy.core.multiarray" | "numpy._core.multiarray" => name == "scalar",
        "numpy" => name == "dtype",
        "_codecs" => name == "encode",
        // Training scripts' flags (`torch.save({'args': args, …})`): read as a plain mapping
        // of its fields ([`Value::Namespace`]), never made.
        "argparse" => name == "Namespace",
        _ => false,
    }
}

/// candle dtype, element size in the file, for a storage class name.
fn storage_dtype(class: &str) -> Option<(DType, usize)> {
    Some(match class {
        "FloatStorage" => (DType::F32, 4),
        "DoubleStorage" => (DType::F64, 8),
        "HalfStorage" => (DType::F16, 2),
        "BFloat16Storage" => (DType::BF16, 2),
        "LongStorage" => (DType::I64, 8),
        "IntStorage" => (DType::I64, 4),
        "ByteStorage" | "BoolStorage" => (DType::U8, 1),
        _ => return None,
    })
}

/// A decoded value of the checkpoint: what a state-dict reader needs, nothing more.
#[derive(Debug, Clone)]
pub enum Value {
    Tensor(Tensor),
    Dict(Vec<(String, Value)>),
    Int(i64),
    Float(f64),
    Str(String),
    /// An `argparse.Namespace` of a training script's flags: each field with its value
    /// written as Python would print it. Only plain data (numbers, text, None, booleans and
    /// lists, tuples and dicts of them) is accepted in it.
    Namespace(Vec<(String, String)>),
    /// Anything else (lists, None, numpy scalars, …): kept out of the way.
    Other,
}

impl Value {
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(items) => items.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// One storage's description from its persistent id.
struct StorageRef {
    key: String,
    dtype: DType,
    element_size: usize,
    numel: usize,
    /// Legacy storages may be views: `(root key, offset, size)` in elements.
    view: Option<(String, usize, usize)>,
}

struct Reader<'a> {
    path: &'a Path,
    pickle: Pickle,
    /// Raw bytes per storage key, converted to candle's element layout.
    storages: HashMap<String, Vec<u8>>,
    /// Tensors already built, by the pickle object that rebuilds them (a shared tensor is one
    /// buffer).
    tensors: RefCell<HashMap<Id, Tensor>>,
    /// Objects [`Reader::value`] may still visit: a state dict visits each object about once,
    /// while a graph of shared dicts would otherwise expand into an exponential tree.
    visits_left: Cell<usize>,
    /// Bytes tensors may still copy out of the storages (twice their total: tied weights).
    copy_left: Cell<usize>,
    /// Bytes of names and strings values may still copy (twice the pickle: a string shared
    /// by many keys is copied for each).
    text_left: Cell<usize>,
}

fn bad(path: &Path, problem: impl Into<String>) -> Error {
    Error::bad_input(path, problem.into())
}

fn read_pickle(path: &Path, bytes: &[u8], what: &str) -> Result<Pickle> {
    pickle::read(bytes, allowed_global).map_err(|e| bad(path, format!("{what}: {e}")))
}

/// A string, whether pickled as text or (by Python 2) as bytes.
fn text(p: &Pickle, id: Id) -> Option<String> {
    match p.get(id) {
        Obj::Str(s) => Some(s.clone()),
        _ => p.as_bytes(id).and_then(|b| String::from_utf8(b).ok()),
    }
}

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
fn storage_refs(path: &Path, p: &Pickle) -> Result<BTreeMap<String, StorageRef>> {
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
fn to_candle_bytes(raw: Vec<u8>, dtype: DType, element_size: usize) -> Vec<u8> {
    if dtype == DType::I64 && element_size == 4 {
        raw.chunks_exact(4)
            .flat_map(|c| (i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64).to_le_bytes())
            .collect()
    } else {
        raw
    }
}

fn byte_len(path: &Path, numel: usize, element_size: usize) -> Result<usize> {
    numel.checked_mul(element_size).ok_or_else(|| {
        bad(
            path,
            format!("storage of {numel} elements is impossibly large"),
        )
    })
}

impl<'a> Reader<'a> {
    fn zip(path: &'a Path, bytes: &[u8]) -> Result<Self> {
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

    fn legacy(path: &'a Path, bytes: &[u8]) -> Result<Self> {
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

    fn bad(&self, problem: impl Into<String>) -> Error {
        bad(self.path, problem)
    }

    fn value(&self, id: Id, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(self.bad(format!("objects nested deeper than {MAX_DEPTH} levels")));
        }
        let left = self.visits_left.get();
        if left == 0 {
            return Err(self.bad(
                "objects are shared far more often than a checkpoint shares them; refusing to expand them",
            ));
        }
        self.visits_left.set(left - 1);
        let p = &self.pickle;
        Ok(match p.get(id) {
            Obj::Int(v) => Value::Int(*v),
            Obj::Bool(b) => Value::Int(*b as i64),
            Obj::Float(v) => Value::Float(*v),
            Obj::Str(s) => {
                self.spend_text(id)?;
                Value::Str(s.clone())
            }
            // Python 2's `str` (a released checkpoint's `arch`, say) is bytes in the pickle.
            Obj::Bytes(b) if b.len() <= MAX_FIELD_TEXT => match std::str::from_utf8(b) {
                Ok(s) => Value::Str(s.to_string()),
                Err(_) => Value::Other,
            },
            Obj::Dict(items) => self.dict(items, depth)?,
            Obj::Built { obj, state } if self.is_namespace(*obj) => {
                self.namespace(*obj, Some(*state))?
            }
            Obj::Call { func, .. } if p.is_global(*func, "argparse", "Namespace") => {
                self.namespace(id, None)?
            }
            // BUILD on an OrderedDict sets attributes such as `_metadata`: the items stay.
            Obj::Built { obj, .. } => self.value(*obj, depth + 1)?,
            Obj::Call { func, args } => match p.global_name(*func) {
                Some("_rebuild_tensor" | "_rebuild_tensor_v2") => {
                    Value::Tensor(self.shared_tensor(id, *args)?)
                }
                Some("_rebuild_parameter") => {
                    let data = p.as_seq(*args).and_then(|a| a.first().copied());
                    let data = data.ok_or_else(|| self.bad("a parameter without data"))?;
                    self.value(data, depth + 1)?
                }
                _ => Value::Other,
            },
            _ => Value::Other,
        })
    }

    /// True when `id` makes an `argparse.Namespace` (`NEWOBJ` or `REDUCE` of the class).
    fn is_namespace(&self, id: Id) -> bool {
        matches!(self.pickle.get(id), Obj::Call { func, .. }
            if self.pickle.is_global(*func, "argparse", "Namespace"))
    }

    /// The fields of the Namespace `call` makes, from its `BUILD` state (a dict of field
    /// names to plain data). The class is never called: it must be called with no arguments,
    /// as pickle makes it, and anything in it that is not plain data is refused.
    fn namespace(&self, call: Id, state: Option<Id>) -> Result<Value> {
        let p = &self.pickle;
        if let Obj::Call { args, .. } = p.get(call) {
            if !matches!(p.get(*args), Obj::Tuple(a) if a.is_empty()) {
                return Err(self.bad(
                    "an argparse.Namespace made with arguments; pickle makes it without: refusing it",
                ));
            }
        }
        let Some(state) = state else {
            return Ok(Value::Namespace(Vec::new()));
        };
        let items = match p.get(state) {
            Obj::Dict(items) => items,
            // `(dict, slots)` as pickle writes a state with slots.
            Obj::Tuple(parts) => match parts.first().map(|&d| p.get(d)) {
                Some(Obj::Dict(items)) if parts.len() == 2 && p.get(parts[1]) == &Obj::None => {
                    items
                }
                _ => return Err(self.bad("an argparse.Namespace whose state is not a dict")),
            },
            _ => return Err(self.bad("an argparse.Namespace whose state is not a dict")),
        };
        // Every field is checked; the first MAX_FIELDS are kept, names shortened and escaped.
        let mut fields = Vec::with_capacity(items.len().min(MAX_FIELDS));
        for &(k, v) in items {
            self.spend_text(k)?;
            let name = text(p, k)
                .ok_or_else(|| self.bad("an argparse.Namespace field whose name is not text"))?;
            let name = crate::error::shown(&name, MAX_FIELD_NAME);
            let mut shown = String::new();
            self.plain(v, 0, &mut shown).map_err(|what| {
                self.bad(format!(
                    "argparse.Namespace field '{name}' holds {what}, not plain data: refusing it"
                ))
            })?;
            if fields.len() < MAX_FIELDS {
                fields.push((name, shown));
            }
        }
        Ok(Value::Namespace(fields))
    }

    /// Writes the plain value `id` as Python prints it into `out` (at most
    /// [`MAX_FIELD_TEXT`] characters, then `…`), or names what is not plain data.
    fn plain(&self, id: Id, depth: usize, out: &mut String) -> std::result::Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("containers nested deeper than {MAX_DEPTH} levels"));
        }
        let left = self.visits_left.get();
        if left == 0 {
            return Err("objects shared far more often than flags are".into());
        }
        self.visits_left.set(left - 1);
        // At most MAX_FIELD_TEXT characters, control characters escaped (a value can neither
        // forge a line of output nor grow without bound), then `…`.
        let push = |out: &mut String, s: &str| {
            for c in s.chars().flat_map(crate::error::escaped) {
                if out.len() >= MAX_FIELD_TEXT {
                    if !out.ends_with('…') {
                        out.push('…');
                    }
                    return;
                }
                out.push(c);
            }
        };
        let p = &self.pickle;
        let items = |out: &mut String,
                     ids: &[Id],
                     open: &str,
                     close: &str|
         -> std::result::Result<(), String> {
            push(out, open);
            for (i, &item) in ids.iter().enumerate() {
                if i > 0 {
                    push(out, ", ");
                }
                self.plain(item, depth + 1, out)?;
            }
            push(out, close);
            Ok(())
        };
        match p.get(id) {
            Obj::None => push(out, "None"),
            Obj::Bool(b) => push(out, if *b { "True" } else { "False" }),
            Obj::Int(v) => push(out, &v.to_string()),
            Obj::Float(v) => push(out, &format!("{v:?}")),
            Obj::Str(_) | Obj::Bytes(_) => {
                // Every reference to a string is charged, so a string shared by many fields
                // cannot multiply the work; only its first characters are ever looked at.
                self.spend_text(id)
                    .map_err(|_| "strings copied far more often than flags are")?;
                let head = match p.get(id) {
                    Obj::Str(s) => s.chars().take(MAX_FIELD_TEXT + 1).collect(),
                    Obj::Bytes(b) => {
                        String::from_utf8_lossy(&b[..b.len().min(4 * MAX_FIELD_TEXT)]).into_owned()
                    }
                    _ => String::new(),
                };
                push(out, "'");
                push(out, &head);
                push(out, "'");
            }
            Obj::Tuple(ids) => items(out, ids, "(", ")")?,
            Obj::List(ids) => items(out, ids, "[", "]")?,
            Obj::Dict(pairs) => {
                push(out, "{");
                for (i, &(k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        push(out, ", ");
                    }
                    self.plain(k, depth + 1, out)?;
                    push(out, ": ");
                    self.plain(v, depth + 1, out)?;
                }
                push(out, "}");
            }
            Obj::Global(g) => return Err(format!("the global {}.{}", g.module, g.name)),
            Obj::Call { .. } | Obj::Built { .. } => return Err("an object made by a call".into()),
            Obj::PersistentId(_) => return Err("a storage reference".into()),
        }
        Ok(())
    }

    /// Counts `id`'s text against the budget of copied strings.
    fn spend_text(&self, id: Id) -> Result<()> {
        let len = self.pickle.as_bytes_len(id).unwrap_or(0);
        let left = self.text_left.get();
        if len > left {
            return Err(
                self.bad("its strings are copied far more often than a checkpoint's; refusing")
            );
        }
        self.text_left.set(left - len);
        Ok(())
    }

    fn dict(&self, items: &[(Id, Id)], depth: usize) -> Result<Value> {
        let mut out = Vec::with_capacity(items.len());
        for &(k, v) in items {
            self.spend_text(k)?;
            let Some(key) = text(&self.pickle, k) else {
                continue;
            };
            out.push((key, self.value(v, depth + 1)?));
        }
        Ok(Value::Dict(out))
    }

    /// The tensor the call `id` rebuilds, built once however often it is referred to.
    fn shared_tensor(&self, id: Id, args: Id) -> Result<Tensor> {
        if let Some(t) = self.tensors.borrow().get(&id) {
            return Ok(t.clone());
        }
        let t = self.tensor(args)?;
        self.tensors.borrow_mut().insert(id, t.clone());
        Ok(t)
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
        let dims = |id: Id| -> Result<Vec<usize>> {
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
        };
        let (size, stride) = (dims(*size)?, dims(*stride)?);
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
            let mut index = vec![0usize; size.len()];
            for _ in 0..count {
                let at = view_offset
                    + offset
                    + index.iter().zip(&stride).map(|(i, s)| i * s).sum::<usize>();
                bytes.extend_from_slice(&data[at * element..(at + 1) * element]);
                for axis in (0..size.len()).rev() {
                    index[axis] += 1;
                    if index[axis] < size[axis] {
                        break;
                    }
                    index[axis] = 0;
                }
            }
        }
        Ok(Tensor::from_raw_buffer(
            &bytes,
            r.dtype,
            &size,
            &Device::Cpu,
        )?)
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

/// Reads a `torch.save` file (either format) into plain values.
pub fn read(path: &Path, bytes: &[u8]) -> Result<Value> {
    let reader = if bytes.starts_with(ZIP_MAGIC) {
        Reader::zip(path, bytes)?
    } else if bytes.starts_with(LEGACY_MAGIC) {
        Reader::legacy(path, bytes)?
    } else {
        return Err(bad(path, "not a PyTorch checkpoint"));
    };
    reader.value(reader.pickle.root, 0)
}
