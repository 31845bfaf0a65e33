//! What each opcode does to the machine: one function per group of opcodes.

use super::machine::Machine;
use super::opcode::Opcode;
use super::{Obj, PResult, PickleError, MAX_OBJECTS};

impl<F: Fn(&str, &str) -> bool> Machine<'_, F> {
    /// Runs one opcode; returns false at `STOP`.
    pub(super) fn step(&mut self) -> PResult<bool> {
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
