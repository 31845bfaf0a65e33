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
use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Tensor};

use crate::error::{Error, Result};
use crate::pickle::{self, Id, Obj, Pickle};

mod files;
mod tensor;

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

impl Reader<'_> {
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
