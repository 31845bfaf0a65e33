//! A pickle *reader*, never an interpreter: it turns a pickle stream into a graph of plain
//! values and refuses any global the caller did not allow. `REDUCE`, `NEWOBJ` and `BUILD` are
//! recorded as data (`Call`, `Built`) for the caller to interpret; nothing is ever executed.
//!
//! Objects live in an arena and are referred to by index, so the memo shares them as Python
//! does (a list appended to after `PUT` is the same list under `GET`), and memory stays
//! proportional to the stream: each opcode adds at most one object, every length is checked
//! against the bytes that remain before anything is allocated, and the arena, the stack and
//! the memo each have a hard cap ([`MAX_OBJECTS`]) far above what any checkpoint or dataset
//! batch holds, so even a stream of one-byte opcodes costs at most a few hundred MB.

use std::collections::HashMap;

mod machine;
mod opcode;
mod ops;

use machine::Machine;

/// Index of an object in [`Pickle::objects`].
pub type Id = usize;

/// Objects, container items, stack entries and memo keys a stream may make, each. A ResNet-101
/// state dict makes about 10^4 objects, a CIFAR python batch about 10^5; a stream past this is
/// not one we read, and the cap bounds the reader's memory (about 32 bytes per object).
pub const MAX_OBJECTS: usize = 1 << 22;

#[derive(Debug, Clone, PartialEq)]
pub enum Obj {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Python 2 `str` and Python 3 `bytes`.
    Bytes(Vec<u8>),
    Str(String),
    Tuple(Vec<Id>),
    List(Vec<Id>),
    Dict(Vec<(Id, Id)>),
    /// Boxed: globals are rare, and the enum stays 32 bytes.
    Global(Box<Global>),
    /// `func(*args)` from `REDUCE` or `NEWOBJ`: recorded, not called.
    Call {
        func: Id,
        args: Id,
    },
    /// `obj.__setstate__(state)` from `BUILD`: recorded, not called.
    Built {
        obj: Id,
        state: Id,
    },
    PersistentId(Id),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Global {
    pub module: String,
    pub name: String,
}

/// Why a stream was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PickleError {
    #[error("pickle refers to global {0}, which a data file has no reason to use; refusing it")]
    ForbiddenGlobal(String),
    #[error("pickle is truncated: needs {needed} more byte(s) at offset {offset}")]
    Truncated { offset: usize, needed: usize },
    #[error("unsupported pickle opcode 0x{opcode:02x} at offset {offset}")]
    UnsupportedOpcode { opcode: u8, offset: usize },
    #[error("malformed pickle at offset {offset}: {problem}")]
    Malformed { offset: usize, problem: String },
    #[error("pickle makes more than {MAX_OBJECTS} {what} (at offset {offset}); no checkpoint or dataset does")]
    TooLarge { what: &'static str, offset: usize },
}

type PResult<T> = Result<T, PickleError>;

/// The decoded stream: every object and the root the stream returned.
#[derive(Debug)]
pub struct Pickle {
    pub objects: Vec<Obj>,
    pub root: Id,
    /// Bytes the stream took (a file may hold several pickles back to back).
    pub consumed: usize,
}
/// Reads one pickle from the start of `data`. `allow(module, name)` decides which globals
/// the stream may name; any other is refused.
pub fn read(data: &[u8], allow: impl Fn(&str, &str) -> bool) -> PResult<Pickle> {
    let mut machine = Machine {
        data,
        pos: 0,
        objects: Vec::new(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        items: 0,
        allow,
    };
    while machine.step()? {}
    let root = machine.pop()?;
    Ok(Pickle {
        objects: machine.objects,
        root,
        consumed: machine.pos,
    })
}

impl Pickle {
    pub fn get(&self, id: Id) -> &Obj {
        &self.objects[id]
    }

    /// The value under `key` in dict `id`, matching `str` and `bytes` keys alike (Python 2
    /// pickles have byte-string keys, Python 3's protocol 2 spells them as `_codecs.encode`).
    /// Compares in place: a key is never copied.
    pub fn dict_get(&self, id: Id, key: &str) -> Option<Id> {
        let Obj::Dict(items) = self.get(id) else {
            return None;
        };
        items
            .iter()
            .find_map(|&(k, v)| self.equals_text(k, key).then_some(v))
    }

    /// Whether object `id` is the text `key`, as `str`, `bytes` or `_codecs.encode(...)`.
    fn equals_text(&self, id: Id, key: &str) -> bool {
        match self.get(id) {
            Obj::Str(s) => s == key,
            Obj::Bytes(b) => b == key.as_bytes(),
            _ => match self.encoded_text(id) {
                Some(text) => text
                    .chars()
                    .map(|c| c as u32)
                    .eq(key.bytes().map(u32::from)),
                None => false,
            },
        }
    }

    /// The text of `_codecs.encode(text, 'latin1')`, Python 3's protocol-2 spelling of bytes.
    fn encoded_text(&self, id: Id) -> Option<&str> {
        let Obj::Call { func, args } = self.get(id) else {
            return None;
        };
        if !self.is_global(*func, "_codecs", "encode") {
            return None;
        }
        let Obj::Tuple(a) = self.get(*args) else {
            return None;
        };
        match self.get(*a.first()?) {
            Obj::Str(text) => Some(text),
            _ => None,
        }
    }

    /// The length in bytes of a `str`, `bytes` or encoded-bytes object, without copying it.
    pub fn as_bytes_len(&self, id: Id) -> Option<usize> {
        match self.get(id) {
            Obj::Str(s) => Some(s.len()),
            Obj::Bytes(b) => Some(b.len()),
            _ => self.encoded_text(id).map(|t| t.chars().count()),
        }
    }

    /// Raw bytes: a `bytes`/`str` object, or Python 3's protocol-2 spelling of bytes,
    /// `_codecs.encode(text, 'latin1')`.
    pub fn as_bytes(&self, id: Id) -> Option<Vec<u8>> {
        match self.get(id) {
            Obj::Bytes(b) => Some(b.clone()),
            _ => self
                .encoded_text(id)?
                .chars()
                .map(|c| u8::try_from(c as u32).ok())
                .collect(),
        }
    }

    pub fn as_int(&self, id: Id) -> Option<i64> {
        match self.get(id) {
            Obj::Int(v) => Some(*v),
            Obj::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }

    /// Items of a list or tuple.
    pub fn as_seq(&self, id: Id) -> Option<&[Id]> {
        match self.get(id) {
            Obj::List(v) | Obj::Tuple(v) => Some(v),
            _ => None,
        }
    }

    pub fn is_global(&self, id: Id, module: &str, name: &str) -> bool {
        matches!(self.get(id), Obj::Global(g) if g.module == module && g.name == name)
    }

    /// The name of a global (`_rebuild_tensor`, `FloatStorage`, …), whatever its module.
    pub fn global_name(&self, id: Id) -> Option<&str> {
        match self.get(id) {
            Obj::Global(g) => Some(&g.name),
            _ => None,
        }
    }
}
#[cfg(test)]
mod tests;
