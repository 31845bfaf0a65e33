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

/// The opcodes the reader supports, named as in Python's `pickletools`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opcode {
    // Stream and stack bookkeeping.
    Proto,
    Frame,
    Stop,
    Mark,
    Pop,
    PopMark,
    Dup,
    // Constants and empty containers.
    None,
    NewTrue,
    NewFalse,
    EmptyTuple,
    EmptyList,
    EmptyDict,
    // Numbers.
    Int,
    Long,
    BinInt,
    BinInt1,
    BinInt2,
    Long1,
    Long4,
    Float,
    BinFloat,
    // Byte strings (Python 2 `str`, Python 3 `bytes`) and text.
    ShortBinString,
    BinString,
    ShortBinBytes,
    BinBytes,
    BinBytes8,
    ShortBinUnicode,
    BinUnicode,
    BinUnicode8,
    // Making containers and adding to them.
    Tuple,
    Tuple1,
    Tuple2,
    Tuple3,
    List,
    Append,
    Appends,
    Dict,
    SetItem,
    SetItems,
    // The memo.
    Get,
    BinGet,
    LongBinGet,
    Put,
    BinPut,
    LongBinPut,
    Memoize,
    // Globals, calls and persistent ids.
    Global,
    StackGlobal,
    Reduce,
    NewObj,
    Build,
    PersId,
    BinPersId,
}

impl Opcode {
    /// The opcode `byte` stands for; `None` for one the reader does not support.
    fn from_byte(byte: u8) -> Option<Self> {
        let op = match byte {
            0x80 => Self::Proto,
            0x95 => Self::Frame,
            b'.' => Self::Stop,
            b'(' => Self::Mark,
            b'0' => Self::Pop,
            b'1' => Self::PopMark,
            b'2' => Self::Dup,
            b'N' => Self::None,
            0x88 => Self::NewTrue,
            0x89 => Self::NewFalse,
            b')' => Self::EmptyTuple,
            b']' => Self::EmptyList,
            b'}' => Self::EmptyDict,
            b'I' => Self::Int,
            b'L' => Self::Long,
            b'J' => Self::BinInt,
            b'K' => Self::BinInt1,
            b'M' => Self::BinInt2,
            0x8a => Self::Long1,
            0x8b => Self::Long4,
            b'F' => Self::Float,
            b'G' => Self::BinFloat,
            b'U' => Self::ShortBinString,
            b'T' => Self::BinString,
            b'C' => Self::ShortBinBytes,
            b'B' => Self::BinBytes,
            0x8e => Self::BinBytes8,
            0x8c => Self::ShortBinUnicode,
            b'X' => Self::BinUnicode,
            0x8d => Self::BinUnicode8,
            b't' => Self::Tuple,
            0x85 => Self::Tuple1,
            0x86 => Self::Tuple2,
            0x87 => Self::Tuple3,
            b'l' => Self::List,
            b'a' => Self::Append,
            b'e' => Self::Appends,
            b'd' => Self::Dict,
            b's' => Self::SetItem,
            b'u' => Self::SetItems,
            b'g' => Self::Get,
            b'h' => Self::BinGet,
            b'j' => Self::LongBinGet,
            b'p' => Self::Put,
            b'q' => Self::BinPut,
            b'r' => Self::LongBinPut,
            0x94 => Self::Memoize,
            b'c' => Self::Global,
            0x93 => Self::StackGlobal,
            b'R' => Self::Reduce,
            0x81 => Self::NewObj,
            b'b' => Self::Build,
            b'P' => Self::PersId,
            b'Q' => Self::BinPersId,
            _ => return Option::None,
        };
        Some(op)
    }
}

struct Machine<'a, F> {
    data: &'a [u8],
    pos: usize,
    objects: Vec<Obj>,
    stack: Vec<Id>,
    /// Stack lengths at each `MARK` (Python's metastack).
    marks: Vec<usize>,
    memo: HashMap<u32, Id>,
    /// Items added to lists, tuples and dicts so far.
    items: usize,
    allow: F,
}

impl<'a, F: Fn(&str, &str) -> bool> Machine<'a, F> {
    fn malformed<T>(&self, problem: impl Into<String>) -> PResult<T> {
        Err(PickleError::Malformed {
            offset: self.pos,
            problem: problem.into(),
        })
    }

    fn take(&mut self, n: usize) -> PResult<&'a [u8]> {
        let remaining = self.data.len() - self.pos;
        if n > remaining {
            return Err(PickleError::Truncated {
                offset: self.pos,
                needed: n - remaining,
            });
        }
        let slice = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    fn u8(&mut self) -> PResult<u8> {
        Ok(self.take(1)?[0])
    }

    /// The next `N` bytes.
    fn array<const N: usize>(&mut self) -> PResult<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u16(&mut self) -> PResult<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> PResult<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> PResult<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn line(&mut self) -> PResult<&'a str> {
        let rest = &self.data[self.pos..];
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return Err(PickleError::Truncated {
                offset: self.pos,
                needed: 1,
            });
        };
        let line =
            std::str::from_utf8(&rest[..end]).or_else(|_| self.malformed("line is not UTF-8"))?;
        self.pos += end + 1;
        Ok(line)
    }

    fn too_large<T>(&self, what: &'static str) -> PResult<T> {
        Err(PickleError::TooLarge {
            what,
            offset: self.pos,
        })
    }

    /// Adds an object to the arena (not to the stack).
    fn add(&mut self, obj: Obj) -> PResult<Id> {
        if self.objects.len() >= MAX_OBJECTS {
            return self.too_large("objects");
        }
        self.objects.push(obj);
        Ok(self.objects.len() - 1)
    }

    fn push_id(&mut self, id: Id) -> PResult<()> {
        if self.stack.len() >= MAX_OBJECTS {
            return self.too_large("stack entries");
        }
        self.stack.push(id);
        Ok(())
    }

    fn push(&mut self, obj: Obj) -> PResult<()> {
        let id = self.add(obj)?;
        self.push_id(id)
    }

    /// Counts `n` items about to be added to containers.
    fn count_items(&mut self, n: usize) -> PResult<()> {
        self.items = self.items.saturating_add(n);
        if self.items > MAX_OBJECTS {
            return self.too_large("container items");
        }
        Ok(())
    }

    /// The stack length below which the topmost mark protects entries.
    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> PResult<Id> {
        if self.stack.len() <= self.floor() {
            return self.malformed("stack underflow (or a mark in the way)");
        }
        self.stack
            .pop()
            .map_or_else(|| self.malformed("stack underflow"), Ok)
    }

    fn top(&self) -> PResult<Id> {
        match self.stack.last() {
            Some(&id) if self.stack.len() > self.floor() => Ok(id),
            _ => self.malformed("no object on top of the stack"),
        }
    }

    /// Pops everything above the topmost mark, and the mark.
    fn pop_to_mark(&mut self) -> PResult<Vec<Id>> {
        let Some(mark) = self.marks.pop() else {
            return self.malformed("no mark on the stack");
        };
        Ok(self.stack.split_off(mark))
    }

    fn bytes(&mut self, n: usize) -> PResult<()> {
        let b = self.take(n)?.to_vec();
        self.push(Obj::Bytes(b))
    }

    fn string(&mut self, n: usize) -> PResult<()> {
        let b = self.take(n)?;
        let s = std::str::from_utf8(b).or_else(|_| self.malformed("string is not UTF-8"))?;
        self.push(Obj::Str(s.to_string()))
    }

    fn global(&mut self, module: &str, name: &str) -> PResult<()> {
        if !(self.allow)(module, name) {
            return Err(PickleError::ForbiddenGlobal(format!("{module}.{name}")));
        }
        self.push(Obj::Global(Box::new(Global {
            module: module.to_string(),
            name: name.to_string(),
        })))
    }

    fn memo_get(&mut self, key: u32) -> PResult<()> {
        match self.memo.get(&key) {
            Some(&id) => self.push_id(id),
            None => self.malformed(format!("memo key {key} was never stored")),
        }
    }

    fn memo_put(&mut self, key: u32) -> PResult<()> {
        let id = self.top()?;
        if self.memo.len() >= MAX_OBJECTS {
            return self.too_large("memo entries");
        }
        self.memo.insert(key, id);
        Ok(())
    }

    fn extend_list(&mut self, list: Id, items: Vec<Id>) -> PResult<()> {
        self.count_items(items.len())?;
        match &mut self.objects[list] {
            Obj::List(v) => {
                v.extend(items);
                Ok(())
            }
            _ => self.malformed("APPEND to something that is not a list"),
        }
    }

    fn set_items(&mut self, dict: Id, items: Vec<Id>) -> PResult<()> {
        if !items.len().is_multiple_of(2) {
            return self.malformed("odd number of items for SETITEMS");
        }
        self.count_items(items.len())?;
        match &mut self.objects[dict] {
            Obj::Dict(v) => {
                v.extend(items.chunks(2).map(|kv| (kv[0], kv[1])));
                Ok(())
            }
            _ => self.malformed("SETITEM on something that is not a dict"),
        }
    }

    fn is_global(&self, id: Id, module: &str, name: &str) -> bool {
        matches!(&self.objects[id], Obj::Global(g) if g.module == module && g.name == name)
    }

    /// The `(key, value)` pairs passed to `OrderedDict(...)`: none, or one list of pairs.
    fn ordered_dict_pairs(&self, args: Id) -> PResult<Vec<(Id, Id)>> {
        let Obj::Tuple(args) = &self.objects[args] else {
            return self.malformed("OrderedDict arguments are not a tuple");
        };
        let Some(&first) = args.first() else {
            return Ok(vec![]);
        };
        let (Obj::List(items) | Obj::Tuple(items)) = &self.objects[first] else {
            return self.malformed("OrderedDict argument is not a list of pairs");
        };
        items
            .iter()
            .map(|&pair| match &self.objects[pair] {
                Obj::List(kv) | Obj::Tuple(kv) if kv.len() == 2 => Ok((kv[0], kv[1])),
                _ => self.malformed("OrderedDict item is not a pair"),
            })
            .collect()
    }

    fn long(&mut self, bytes: &[u8]) -> PResult<()> {
        if bytes.len() > 8 {
            return self.malformed("integer wider than 64 bits");
        }
        let negative = bytes.last().is_some_and(|&b| b & 0x80 != 0);
        let mut a = [if negative { 0xff } else { 0 }; 8];
        a[..bytes.len()].copy_from_slice(bytes);
        self.push(Obj::Int(i64::from_le_bytes(a)))
    }

    /// Runs one opcode; returns false at `STOP`.
    fn step(&mut self) -> PResult<bool> {
        let offset = self.pos;
        let byte = self.u8()?;
        let Some(op) = Opcode::from_byte(byte) else {
            return Err(PickleError::UnsupportedOpcode {
                opcode: byte,
                offset,
            });
        };
        match op {
            Opcode::Stop => return Ok(false),
            Opcode::Proto => {
                self.u8()?; // the version changes nothing we read
            }
            Opcode::Frame => {
                self.u64()?; // a length hint only
            }
            Opcode::Mark | Opcode::Pop | Opcode::PopMark | Opcode::Dup => self.stack_op(op)?,
            Opcode::None
            | Opcode::NewTrue
            | Opcode::NewFalse
            | Opcode::EmptyTuple
            | Opcode::EmptyList
            | Opcode::EmptyDict => self.push_constant(op)?,
            Opcode::Int
            | Opcode::Long
            | Opcode::BinInt
            | Opcode::BinInt1
            | Opcode::BinInt2
            | Opcode::Long1
            | Opcode::Long4
            | Opcode::Float
            | Opcode::BinFloat => self.push_number(op)?,
            Opcode::ShortBinString
            | Opcode::BinString
            | Opcode::ShortBinBytes
            | Opcode::BinBytes
            | Opcode::BinBytes8
            | Opcode::ShortBinUnicode
            | Opcode::BinUnicode
            | Opcode::BinUnicode8 => self.push_string(op)?,
            Opcode::Tuple
            | Opcode::Tuple1
            | Opcode::Tuple2
            | Opcode::Tuple3
            | Opcode::List
            | Opcode::Dict => self.build_container(op)?,
            Opcode::Append | Opcode::Appends | Opcode::SetItem | Opcode::SetItems => {
                self.extend_container(op)?
            }
            Opcode::Get
            | Opcode::BinGet
            | Opcode::LongBinGet
            | Opcode::Put
            | Opcode::BinPut
            | Opcode::LongBinPut
            | Opcode::Memoize => self.memo_op(op)?,
            Opcode::Global | Opcode::StackGlobal => self.push_global(op)?,
            Opcode::Reduce
            | Opcode::NewObj
            | Opcode::Build
            | Opcode::PersId
            | Opcode::BinPersId => self.record_call(op)?,
        }
        Ok(true)
    }

    /// MARK, POP, POP_MARK, DUP: opcodes that only move stack entries and marks.
    fn stack_op(&mut self, op: Opcode) -> PResult<()> {
        match op {
            Opcode::Mark => {
                if self.marks.len() >= MAX_OBJECTS {
                    return self.too_large("marks");
                }
                self.marks.push(self.stack.len());
            }
            // The top object, or the mark when nothing is above it (as Python does).
            Opcode::Pop => {
                if self.stack.len() > self.floor() {
                    self.stack.pop();
                } else if self.marks.pop().is_none() {
                    return self.malformed("POP on an empty stack");
                }
            }
            Opcode::PopMark => {
                self.pop_to_mark()?;
            }
            Opcode::Dup => {
                let id = self.top()?;
                self.push_id(id)?;
            }
            _ => unreachable!("step sends {op:?} elsewhere"),
        }
        Ok(())
    }

    /// `None`, `True`, `False` and the empty containers: no operand.
    fn push_constant(&mut self, op: Opcode) -> PResult<()> {
        let obj = match op {
            Opcode::None => Obj::None,
            Opcode::NewTrue => Obj::Bool(true),
            Opcode::NewFalse => Obj::Bool(false),
            Opcode::EmptyTuple => Obj::Tuple(vec![]),
            Opcode::EmptyList => Obj::List(vec![]),
            Opcode::EmptyDict => Obj::Dict(vec![]),
            _ => unreachable!("step sends {op:?} elsewhere"),
        };
        self.push(obj)
    }

    /// Integers and floats, as decimal text or binary.
    fn push_number(&mut self, op: Opcode) -> PResult<()> {
        match op {
            // Protocol 0 spells booleans as `I01` and `I00`; a `LONG` ends in `L`.
            Opcode::Int | Opcode::Long => {
                let line = self.line()?.trim_end_matches('L');
                let obj = match line {
                    "01" if op == Opcode::Int => Obj::Bool(true),
                    "00" if op == Opcode::Int => Obj::Bool(false),
                    _ => Obj::Int(
                        line.parse()
                            .or_else(|_| self.malformed(format!("bad integer {line:?}")))?,
                    ),
                };
                self.push(obj)
            }
            Opcode::BinInt => {
                let v = self.u32()? as i32;
                self.push(Obj::Int(v as i64))
            }
            Opcode::BinInt1 => {
                let v = self.u8()?;
                self.push(Obj::Int(v as i64))
            }
            Opcode::BinInt2 => {
                let v = self.u16()?;
                self.push(Obj::Int(v as i64))
            }
            Opcode::Long1 => {
                let n = self.u8()? as usize;
                let b = self.take(n)?;
                self.long(b)
            }
            Opcode::Long4 => {
                let n = self.u32()? as usize;
                let b = self.take(n)?;
                self.long(b)
            }
            Opcode::Float => {
                let line = self.line()?;
                let v = line
                    .parse()
                    .or_else(|_| self.malformed(format!("bad float {line:?}")))?;
                self.push(Obj::Float(v))
            }
            // The one big-endian operand in the format.
            Opcode::BinFloat => {
                let v = f64::from_be_bytes(self.array()?);
                self.push(Obj::Float(v))
            }
            _ => unreachable!("step sends {op:?} elsewhere"),
        }
    }

    /// Byte strings and text, whose operand is a length of one, four or eight bytes.
    fn push_string(&mut self, op: Opcode) -> PResult<()> {
        let n = match op {
            Opcode::ShortBinString | Opcode::ShortBinBytes | Opcode::ShortBinUnicode => {
                self.u8()? as usize
            }
            Opcode::BinString | Opcode::BinBytes | Opcode::BinUnicode => self.u32()? as usize,
            // A length past `usize::MAX` cannot fit in what remains: `take` says truncated.
            Opcode::BinBytes8 | Opcode::BinUnicode8 => {
                usize::try_from(self.u64()?).unwrap_or(usize::MAX)
            }
            _ => unreachable!("step sends {op:?} elsewhere"),
        };
        match op {
            Opcode::ShortBinUnicode | Opcode::BinUnicode | Opcode::BinUnicode8 => self.string(n),
            _ => self.bytes(n),
        }
    }

    /// TUPLE, TUPLE1-3, LIST and DICT: a new container of the items above the mark, or of
    /// the top one to three entries.
    fn build_container(&mut self, op: Opcode) -> PResult<()> {
        match op {
            Opcode::Tuple | Opcode::List => {
                let items = self.pop_to_mark()?;
                self.count_items(items.len())?;
                self.push(match op {
                    Opcode::Tuple => Obj::Tuple(items),
                    _ => Obj::List(items),
                })
            }
            Opcode::Tuple1 | Opcode::Tuple2 | Opcode::Tuple3 => {
                let n = match op {
                    Opcode::Tuple1 => 1,
                    Opcode::Tuple2 => 2,
                    _ => 3,
                };
                let mut items = (0..n).map(|_| self.pop()).collect::<PResult<Vec<_>>>()?;
                items.reverse();
                self.count_items(n)?;
                self.push(Obj::Tuple(items))
            }
            Opcode::Dict => {
                let items = self.pop_to_mark()?;
                self.push(Obj::Dict(vec![]))?;
                let dict = self.top()?;
                self.set_items(dict, items)
            }
            _ => unreachable!("step sends {op:?} elsewhere"),
        }
    }

    /// APPEND(S) and SETITEM(S): add to the list or dict on top of the stack, in place.
    fn extend_container(&mut self, op: Opcode) -> PResult<()> {
        match op {
            Opcode::Append => {
                let item = self.pop()?;
                let list = self.top()?;
                self.extend_list(list, vec![item])
            }
            Opcode::Appends => {
                let items = self.pop_to_mark()?;
                let list = self.top()?;
                self.extend_list(list, items)
            }
            Opcode::SetItem => {
                let value = self.pop()?;
                let key = self.pop()?;
                let dict = self.top()?;
                self.set_items(dict, vec![key, value])
            }
            Opcode::SetItems => {
                let items = self.pop_to_mark()?;
                let dict = self.top()?;
                self.set_items(dict, items)
            }
            _ => unreachable!("step sends {op:?} elsewhere"),
        }
    }

    /// GET and PUT, whose key is a decimal line, one byte or four, and MEMOIZE, which puts
    /// under the next free key.
    fn memo_op(&mut self, op: Opcode) -> PResult<()> {
        let key = match op {
            Opcode::Get | Opcode::Put => {
                let line = self.line()?;
                line.parse::<u32>()
                    .or_else(|_| self.malformed(format!("bad memo key {line:?}")))?
            }
            Opcode::BinGet | Opcode::BinPut => self.u8()? as u32,
            Opcode::LongBinGet | Opcode::LongBinPut => self.u32()?,
            Opcode::Memoize => u32::try_from(self.memo.len()).unwrap_or(u32::MAX),
            _ => unreachable!("step sends {op:?} elsewhere"),
        };
        match op {
            Opcode::Get | Opcode::BinGet | Opcode::LongBinGet => self.memo_get(key),
            _ => self.memo_put(key),
        }
    }

    /// GLOBAL (module and name as two lines) and STACK_GLOBAL (as two strings on the stack).
    fn push_global(&mut self, op: Opcode) -> PResult<()> {
        match op {
            Opcode::Global => {
                let module = self.line()?;
                let name = self.line()?;
                self.global(module, name)
            }
            Opcode::StackGlobal => {
                let name = self.pop()?;
                let module = self.pop()?;
                match (&self.objects[module], &self.objects[name]) {
                    (Obj::Str(m), Obj::Str(n)) => {
                        let (m, n) = (m.clone(), n.clone());
                        self.global(&m, &n)
                    }
                    _ => self.malformed("STACK_GLOBAL needs two strings"),
                }
            }
            _ => unreachable!("step sends {op:?} elsewhere"),
        }
    }

    /// REDUCE, NEWOBJ, BUILD and persistent ids: recorded as objects, never run.
    fn record_call(&mut self, op: Opcode) -> PResult<()> {
        match op {
            Opcode::Reduce | Opcode::NewObj => {
                let args = self.pop()?;
                let func = self.pop()?;
                // `OrderedDict(...)` is the one call read as what it makes, a dict, because
                // the items follow as SETITEMS on it (or come as a list of pairs).
                if self.is_global(func, "collections", "OrderedDict") {
                    let pairs = self.ordered_dict_pairs(args)?;
                    self.push(Obj::Dict(pairs))
                } else {
                    self.push(Obj::Call { func, args })
                }
            }
            Opcode::Build => {
                let state = self.pop()?;
                let target = self.top()?;
                // BUILD changes the object in place: every reference to it sees the state.
                let moved = self.add(Obj::None)?;
                self.objects.swap(target, moved);
                self.objects[target] = Obj::Built { obj: moved, state };
                Ok(())
            }
            Opcode::PersId => {
                let line = self.line()?.to_string();
                let pid = self.add(Obj::Str(line))?;
                self.push(Obj::PersistentId(pid))
            }
            Opcode::BinPersId => {
                let pid = self.pop()?;
                self.push(Obj::PersistentId(pid))
            }
            _ => unreachable!("step sends {op:?} elsewhere"),
        }
    }
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
mod tests {
    use super::*;

    #[test]
    fn forbidden_global_is_named() {
        // cos\nsystem\n(S'ls'\ntR.  — the classic exploit, protocol 0.
        let err = read(b"cos\nsystem\n(S'ls'\ntR.", |_, _| false).unwrap_err();
        assert_eq!(err, PickleError::ForbiddenGlobal("os.system".into()));
    }

    #[test]
    fn truncated_length_is_refused_before_allocation() {
        // BINBYTES claiming 4 GiB with three bytes left.
        let err = read(b"\x80\x02B\xff\xff\xff\xffabc", |_, _| true).unwrap_err();
        assert!(matches!(err, PickleError::Truncated { .. }), "{err:?}");
    }

    #[test]
    fn a_stream_of_one_byte_opcodes_stops_at_the_object_cap() {
        let mut stream = b"\x80\x02".to_vec();
        stream.extend(std::iter::repeat_n(b']', MAX_OBJECTS + 1));
        stream.push(b'.');
        let err = read(&stream, |_, _| true).unwrap_err();
        assert!(
            matches!(
                err,
                PickleError::TooLarge {
                    what: "objects",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn pop_takes_the_mark_when_nothing_is_above_it() {
        // ( 0 N .  → None, the mark popped as Python's POP does.
        let p = read(b"\x80\x02(0N.", |_, _| true).unwrap();
        assert_eq!(p.get(p.root), &Obj::None);
        // A mark cannot be popped as an object: ( t needs none, ( R needs two.
        assert!(read(b"\x80\x02N(R.", |_, _| true).is_err());
    }

    #[test]
    fn memo_shares_the_object_appended_after_put() {
        // ] q\x00 ( K\x01 K\x02 e h\x00 \x86 .  → ([1, 2], [1, 2]) with one list.
        let p = read(b"\x80\x02]q\x00(K\x01K\x02eh\x00\x86.", |_, _| true).unwrap();
        let items = p.as_seq(p.root).unwrap();
        assert_eq!(items[0], items[1]);
        assert_eq!(p.as_seq(items[0]).unwrap().len(), 2);
    }
}
