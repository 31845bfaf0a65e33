//! The reader's state: the input, the object arena, the stack, the marks and the memo,
//! with the primitives every opcode is built from (each length and count checked first).

use std::collections::HashMap;

use super::{Global, Id, Obj, PResult, PickleError, MAX_OBJECTS};

pub(super) struct Machine<'a, F> {
    pub(super) data: &'a [u8],
    pub(super) pos: usize,
    pub(super) objects: Vec<Obj>,
    pub(super) stack: Vec<Id>,
    /// Stack lengths at each `MARK` (Python's metastack).
    pub(super) marks: Vec<usize>,
    pub(super) memo: HashMap<u32, Id>,
    /// Items added to lists, tuples and dicts so far.
    pub(super) items: usize,
    pub(super) allow: F,
}
impl<'a, F: Fn(&str, &str) -> bool> Machine<'a, F> {
    pub(super) fn malformed<T>(&self, problem: impl Into<String>) -> PResult<T> {
        Err(PickleError::Malformed {
            offset: self.pos,
            problem: problem.into(),
        })
    }

    pub(super) fn take(&mut self, n: usize) -> PResult<&'a [u8]> {
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

    pub(super) fn u8(&mut self) -> PResult<u8> {
        Ok(self.take(1)?[0])
    }

    /// The next `N` bytes.
    pub(super) fn array<const N: usize>(&mut self) -> PResult<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub(super) fn u16(&mut self) -> PResult<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub(super) fn u32(&mut self) -> PResult<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(super) fn u64(&mut self) -> PResult<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub(super) fn line(&mut self) -> PResult<&'a str> {
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

    pub(super) fn too_large<T>(&self, what: &'static str) -> PResult<T> {
        Err(PickleError::TooLarge {
            what,
            offset: self.pos,
        })
    }

    /// Adds an object to the arena (not to the stack).
    pub(super) fn add(&mut self, obj: Obj) -> PResult<Id> {
        if self.objects.len() >= MAX_OBJECTS {
            return self.too_large("objects");
        }
        self.objects.push(obj);
        Ok(self.objects.len() - 1)
    }

    pub(super) fn push_id(&mut self, id: Id) -> PResult<()> {
        if self.stack.len() >= MAX_OBJECTS {
            return self.too_large("stack entries");
        }
        self.stack.push(id);
        Ok(())
    }

    pub(super) fn push(&mut self, obj: Obj) -> PResult<()> {
        let id = self.add(obj)?;
        self.push_id(id)
    }

    /// Counts `n` items about to be added to containers.
    pub(super) fn count_items(&mut self, n: usize) -> PResult<()> {
        self.items = self.items.saturating_add(n);
        if self.items > MAX_OBJECTS {
            return self.too_large("container items");
        }
        Ok(())
    }

    /// The stack length below which the topmost mark protects entries.
    pub(super) fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    pub(super) fn pop(&mut self) -> PResult<Id> {
        if self.stack.len() <= self.floor() {
            return self.malformed("stack underflow (or a mark in the way)");
        }
        self.stack
            .pop()
            .map_or_else(|| self.malformed("stack underflow"), Ok)
    }

    pub(super) fn top(&self) -> PResult<Id> {
        match self.stack.last() {
            Some(&id) if self.stack.len() > self.floor() => Ok(id),
            _ => self.malformed("no object on top of the stack"),
        }
    }

    /// Pops everything above the topmost mark, and the mark.
    pub(super) fn pop_to_mark(&mut self) -> PResult<Vec<Id>> {
        let Some(mark) = self.marks.pop() else {
            return self.malformed("no mark on the stack");
        };
        Ok(self.stack.split_off(mark))
    }

    pub(super) fn bytes(&mut self, n: usize) -> PResult<()> {
        let b = self.take(n)?.to_vec();
        self.push(Obj::Bytes(b))
    }

    pub(super) fn string(&mut self, n: usize) -> PResult<()> {
        let b = self.take(n)?;
        let s = std::str::from_utf8(b).or_else(|_| self.malformed("string is not UTF-8"))?;
        self.push(Obj::Str(s.to_string()))
    }

    pub(super) fn global(&mut self, module: &str, name: &str) -> PResult<()> {
        if !(self.allow)(module, name) {
            return Err(PickleError::ForbiddenGlobal(format!("{module}.{name}")));
        }
        self.push(Obj::Global(Box::new(Global {
            module: module.to_string(),
            name: name.to_string(),
        })))
    }

    pub(super) fn memo_get(&mut self, key: u32) -> PResult<()> {
        match self.memo.get(&key) {
            Some(&id) => self.push_id(id),
            None => self.malformed(format!("memo key {key} was never stored")),
        }
    }

    pub(super) fn memo_put(&mut self, key: u32) -> PResult<()> {
        let id = self.top()?;
        if self.memo.len() >= MAX_OBJECTS {
            return self.too_large("memo entries");
        }
        self.memo.insert(key, id);
        Ok(())
    }

    pub(super) fn extend_list(&mut self, list: Id, items: Vec<Id>) -> PResult<()> {
        self.count_items(items.len())?;
        match &mut self.objects[list] {
            Obj::List(v) => {
                v.extend(items);
                Ok(())
            }
            _ => self.malformed("APPEND to something that is not a list"),
        }
    }

    pub(super) fn set_items(&mut self, dict: Id, items: Vec<Id>) -> PResult<()> {
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

    pub(super) fn is_global(&self, id: Id, module: &str, name: &str) -> bool {
        matches!(&self.objects[id], Obj::Global(g) if g.module == module && g.name == name)
    }

    /// The `(key, value)` pairs passed to `OrderedDict(...)`: none, or one list of pairs.
    pub(super) fn ordered_dict_pairs(&self, args: Id) -> PResult<Vec<(Id, Id)>> {
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

    pub(super) fn long(&mut self, bytes: &[u8]) -> PResult<()> {
        if bytes.len() > 8 {
            return self.malformed("integer wider than 64 bits");
        }
        let negative = bytes.last().is_some_and(|&b| b & 0x80 != 0);
        let mut a = [if negative { 0xff } else { 0 }; 8];
        a[..bytes.len()].copy_from_slice(bytes);
        self.push(Obj::Int(i64::from_le_bytes(a)))
    }
}
