//! A bounded reader of Thrift's compact protocol, the encoding of Parquet footers and page
//! headers: every length and count is checked against the bytes that remain before anything
//! is skipped, and nesting is capped, so a forged count costs nothing (docs/formats.md,
//! "Records files": why blockdrop reads Parquet footers itself before polars does).

/// Deepest nesting of structs, lists and maps accepted (Parquet's own structures nest 4 deep).
const MAX_DEPTH: usize = 32;

/// Compact-protocol type ids (the low nibble of a field header or list header).
pub mod kind {
    pub const TRUE: u8 = 1;
    pub const FALSE: u8 = 2;
    pub const BYTE: u8 = 3;
    pub const I16: u8 = 4;
    pub const I32: u8 = 5;
    pub const I64: u8 = 6;
    pub const DOUBLE: u8 = 7;
    pub const BINARY: u8 = 8;
    pub const LIST: u8 = 9;
    pub const SET: u8 = 10;
    pub const MAP: u8 = 11;
    pub const STRUCT: u8 = 12;
    pub const UUID: u8 = 13;
}

/// A cursor over compact-protocol bytes. Errors are short phrases for the caller's message.
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    depth: usize,
}

pub type Result<T> = std::result::Result<T, String>;

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            at: 0,
            depth: 0,
        }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.at
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn byte(&mut self) -> Result<u8> {
        let b = *self.bytes.get(self.at).ok_or("ends inside a structure")?;
        self.at += 1;
        Ok(b)
    }

    fn advance(&mut self, n: u64) -> Result<()> {
        if n > self.remaining() as u64 {
            return Err(format!(
                "declares {n} bytes where {} remain",
                self.remaining()
            ));
        }
        self.at += n as usize;
        Ok(())
    }

    fn varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return Err("holds a variable-length integer over 64 bits".into());
            }
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("holds a variable-length integer over 64 bits".into())
    }

    /// A zigzag-encoded integer (i16, i32 and i64 are all sent this way).
    pub fn integer(&mut self) -> Result<i64> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    /// The next field's `(id, type)` of the struct being read, or `None` at its end.
    pub fn field(&mut self, last_id: &mut i16) -> Result<Option<(i16, u8)>> {
        let header = self.byte()?;
        if header == 0 {
            return Ok(None);
        }
        let (delta, kind) = (header >> 4, header & 0x0f);
        let id = if delta == 0 {
            i16::try_from(self.integer()?).map_err(|_| "has a field id beyond 16 bits")?
        } else {
            last_id
                .checked_add(i16::from(delta))
                .ok_or("has a field id beyond 16 bits")?
        };
        *last_id = id;
        Ok(Some((id, kind)))
    }

    /// A list or set header: `(element count, element type)`. The count is at most the bytes
    /// left (every element takes one byte or more), so a forged count is refused here.
    pub fn list_header(&mut self) -> Result<(usize, u8)> {
        let header = self.byte()?;
        let (short, kind) = (header >> 4, header & 0x0f);
        let count = if short == 15 {
            self.varint()?
        } else {
            u64::from(short)
        };
        if count > self.remaining() as u64 {
            return Err(format!(
                "declares a list of {count} elements in {} bytes",
                self.remaining()
            ));
        }
        Ok((count as usize, kind))
    }

    /// A value of type `kind` (a field's, or a list element's when `in_list`: there a boolean
    /// takes a byte), read past without keeping it.
    pub fn skip(&mut self, kind: u8, in_list: bool) -> Result<()> {
        match kind {
            kind::TRUE | kind::FALSE if !in_list => Ok(()),
            kind::TRUE | kind::FALSE | kind::BYTE => self.advance(1),
            kind::I16 | kind::I32 | kind::I64 => self.varint().map(drop),
            kind::DOUBLE => self.advance(8),
            kind::UUID => self.advance(16),
            kind::BINARY => {
                let n = self.varint()?;
                self.advance(n)
            }
            kind::LIST | kind::SET => self.nested(|r| {
                let (count, element) = r.list_header()?;
                (0..count).try_for_each(|_| r.skip(element, true))
            }),
            kind::MAP => self.nested(|r| {
                let count = r.varint()?;
                if count == 0 {
                    return Ok(());
                }
                if count > r.remaining() as u64 / 2 {
                    return Err(format!(
                        "declares a map of {count} entries in {} bytes",
                        r.remaining()
                    ));
                }
                let types = r.byte()?;
                (0..count).try_for_each(|_| {
                    r.skip(types >> 4, true)?;
                    r.skip(types & 0x0f, true)
                })
            }),
            kind::STRUCT => self.nested(|r| r.fields(|r, _, kind| r.skip(kind, false))),
            other => Err(format!("holds an unknown type id {other}")),
        }
    }

    /// Reads the fields of a struct until its end, handing each `(id, type)` to `each`, which
    /// must consume the value (reading or skipping it).
    pub fn fields(&mut self, mut each: impl FnMut(&mut Self, i16, u8) -> Result<()>) -> Result<()> {
        let mut last = 0i16;
        while let Some((id, kind)) = self.field(&mut last)? {
            each(self, id, kind)?;
        }
        Ok(())
    }

    /// A struct value read by `each` (its fields), one nesting level deeper.
    pub fn structure(&mut self, each: impl FnMut(&mut Self, i16, u8) -> Result<()>) -> Result<()> {
        self.nested(|r| r.fields(each))
    }

    /// A list of `element`s, each read by `each`, with `count` checked against `max`.
    pub fn list(
        &mut self,
        element: u8,
        max: usize,
        mut each: impl FnMut(&mut Self) -> Result<()>,
    ) -> Result<usize> {
        self.nested(|r| {
            let (count, kind) = r.list_header()?;
            if count > 0 && kind != element {
                return Err(format!("has a list of type {kind} where {element} belongs"));
            }
            if count > max {
                return Err(format!(
                    "declares a list of {count} entries (at most {max})"
                ));
            }
            (0..count).try_for_each(|_| each(r))?;
            Ok(count)
        })
    }

    fn nested<T>(&mut self, read: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        if self.depth >= MAX_DEPTH {
            return Err(format!("nests deeper than {MAX_DEPTH} levels"));
        }
        self.depth += 1;
        let out = read(self);
        self.depth -= 1;
        out
    }
}

/// What a known field holds, as the reader that comes after this one (polars) decodes it: it
/// decodes a field by its id alone, whatever type the file declares, so a field of the wrong
/// type would be read differently there than here.
#[derive(Debug)]
pub enum Ty {
    Bool,
    I8,
    I16,
    I32,
    I64,
    Binary,
    List(&'static Ty),
    Struct(&'static [(i16, Ty)]),
}

impl Ty {
    fn accepts(&self, kind: u8) -> bool {
        match self {
            Ty::Bool => kind == kind::TRUE || kind == kind::FALSE,
            Ty::I8 => kind == kind::BYTE,
            Ty::I16 => kind == kind::I16,
            Ty::I32 => kind == kind::I32,
            Ty::I64 => kind == kind::I64,
            Ty::Binary => kind == kind::BINARY,
            Ty::List(_) => kind == kind::LIST || kind == kind::SET,
            Ty::Struct(_) => kind == kind::STRUCT,
        }
    }
}

impl Reader<'_> {
    /// Reads past a struct whose known fields (`fields`: id and type) must have their types
    /// and appear once; unknown fields are skipped by their declared type, as polars skips
    /// them. So this reader and polars see the same fields at the same places.
    pub fn check_struct(&mut self, fields: &'static [(i16, Ty)]) -> Result<()> {
        self.nested(|r| {
            let mut seen: Vec<i16> = Vec::new();
            r.fields(|r, id, kind| {
                if seen.contains(&id) {
                    return Err(format!("repeats field {id}"));
                }
                seen.push(id);
                match fields.iter().find(|(known, _)| *known == id) {
                    Some((_, ty)) => r.check_value(ty, kind, false, id),
                    None => r.skip(kind, false),
                }
            })
        })
    }

    fn check_value(&mut self, ty: &'static Ty, kind: u8, in_list: bool, id: i16) -> Result<()> {
        if !ty.accepts(kind) {
            return Err(format!(
                "has field {id} of type {kind} where {ty:?} belongs"
            ));
        }
        match ty {
            Ty::Struct(fields) => self.check_struct(fields),
            Ty::List(element) => self.nested(|r| {
                let (count, kind) = r.list_header()?;
                if count > 0 && !element.accepts(kind) {
                    return Err(format!(
                        "has field {id}, a list of type {kind} where {element:?} belongs"
                    ));
                }
                (0..count).try_for_each(|_| r.check_value(element, kind, true, id))
            }),
            _ => self.skip(kind, in_list),
        }
    }
}

/// Reads an integer field of type `want` (an I32 or I64), refusing any other type.
pub fn expect_integer(r: &mut Reader, kind: u8, want: u8, what: &str) -> Result<i64> {
    if kind != want {
        return Err(format!("has {what} of type {kind}, not {want}"));
    }
    r.integer()
}

#[cfg(test)]
pub mod encode {
    //! A compact-protocol writer for building footers and page headers in tests.

    use super::kind;

    #[derive(Default)]
    pub struct Writer {
        pub bytes: Vec<u8>,
        last: Vec<i16>,
    }

    impl Writer {
        pub fn varint(&mut self, mut v: u64) {
            loop {
                let b = (v & 0x7f) as u8;
                v >>= 7;
                if v == 0 {
                    self.bytes.push(b);
                    return;
                }
                self.bytes.push(b | 0x80);
            }
        }
        pub fn integer(&mut self, v: i64) {
            self.varint(((v << 1) ^ (v >> 63)) as u64);
        }
        pub fn field(&mut self, id: i16, kind: u8) {
            let last = self.last.last_mut().expect("inside a struct");
            let delta = id - *last;
            *last = id;
            if (1..=15).contains(&delta) {
                self.bytes.push(((delta as u8) << 4) | kind);
            } else {
                self.bytes.push(kind);
                self.integer(i64::from(id));
            }
        }
        pub fn begin(&mut self) {
            self.last.push(0);
        }
        pub fn end(&mut self) {
            self.bytes.push(0);
            self.last.pop();
        }
        pub fn int_field(&mut self, id: i16, kind: u8, v: i64) {
            self.field(id, kind);
            self.integer(v);
        }
        pub fn binary_field(&mut self, id: i16, v: &[u8]) {
            self.field(id, kind::BINARY);
            self.varint(v.len() as u64);
            self.bytes.extend_from_slice(v);
        }
        pub fn list_header(&mut self, count: u64, element: u8) {
            if count < 15 {
                self.bytes.push(((count as u8) << 4) | element);
            } else {
                self.bytes.push(0xf0 | element);
                self.varint(count);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::encode::Writer;
    use super::{kind, Reader};

    #[test]
    fn nested_values_are_skipped_and_forged_counts_refused() {
        let mut w = Writer::default();
        w.begin();
        w.int_field(1, kind::I32, -7);
        w.binary_field(2, b"abc");
        w.field(40, kind::LIST);
        w.list_header(2, kind::STRUCT);
        for v in [1, 2] {
            w.begin();
            w.int_field(1, kind::I64, v);
            w.end();
        }
        w.end();
        let mut r = Reader::new(&w.bytes);
        let mut seen = Vec::new();
        r.fields(|r, id, kind| {
            seen.push(id);
            r.skip(kind, false)
        })
        .unwrap();
        assert_eq!((seen, r.position()), (vec![1, 2, 40], w.bytes.len()));

        // A list of 2^31 structs in a few bytes.
        let mut w = Writer::default();
        w.list_header(1 << 31, kind::STRUCT);
        let err = Reader::new(&w.bytes).skip(kind::LIST, false).unwrap_err();
        assert!(err.contains("2147483648 elements"), "{err}");
        // A binary longer than the buffer, and nesting without end.
        let mut w = Writer::default();
        w.varint(1 << 40);
        assert!(Reader::new(&w.bytes).skip(kind::BINARY, false).is_err());
        let deep = vec![0x1c; 10_000];
        let err = Reader::new(&deep).skip(kind::STRUCT, false).unwrap_err();
        assert!(err.contains("deeper"), "{err}");
    }
}
