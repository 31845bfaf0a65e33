//! The bounds checks against forged footers: each forged size or structure is refused with
//! a message naming it, before polars reads the file.

use std::io::Cursor;

use super::super::thrift_compact::encode::Writer;
use super::super::thrift_compact::kind;
use super::{check_file, check_footer};

/// What a forged file changes from a valid one.
#[derive(Clone, Copy)]
struct Forge {
    key_values: u64,
    file_rows: i64,
    group_rows: i64,
    chunk_values: i64,
    chunk_uncompressed: Option<i64>,
    page_uncompressed: Option<i32>,
    schema_elements: u64,
    /// FileMetaData's `version` written as a byte string (polars decodes field 1 as an
    /// i32 whatever its declared type).
    version_as_binary: bool,
    /// `num_rows` written twice.
    repeated_rows: bool,
    /// The page's type (0 is a data page, whose sub-header field 5 is written).
    page_type: i64,
    /// The `index` column's physical type (1 is INT32).
    physical_type: i64,
    dictionary_offset: Option<i64>,
}

const VALID: Forge = Forge {
    key_values: 1,
    file_rows: 2,
    group_rows: 2,
    chunk_values: 2,
    chunk_uncompressed: None,
    page_uncompressed: None,
    schema_elements: 2,
    version_as_binary: false,
    repeated_rows: false,
    page_type: 0,
    physical_type: 1,
    dictionary_offset: None,
};

/// A one-column (INT32 `index`), one-page, uncompressed PLAIN file of two rows, as a
/// Parquet writer lays it out, with the declared sizes `forge` asks for.
fn parquet(forge: Forge) -> Vec<u8> {
    let data = [7i32.to_le_bytes(), 9i32.to_le_bytes()].concat();
    let mut page = Writer::default();
    page.begin();
    page.int_field(1, kind::I32, forge.page_type);
    let declared = forge.page_uncompressed.unwrap_or(data.len() as i32);
    page.int_field(2, kind::I32, i64::from(declared));
    page.int_field(3, kind::I32, data.len() as i64);
    page.field(5, kind::STRUCT);
    page.begin();
    page.int_field(1, kind::I32, 2);
    page.int_field(2, kind::I32, 0); // PLAIN
    page.int_field(3, kind::I32, 3); // RLE levels
    page.int_field(4, kind::I32, 3);
    page.end();
    page.end();
    let chunk_len = (page.bytes.len() + data.len()) as i64;
    let mut file = b"PAR1".to_vec();
    file.extend_from_slice(&page.bytes);
    file.extend_from_slice(&data);

    let mut f = Writer::default();
    f.begin();
    if forge.version_as_binary {
        f.binary_field(1, &[0x16, 0x04]);
    } else {
        f.int_field(1, kind::I32, 2);
    }
    f.field(2, kind::LIST);
    f.list_header(forge.schema_elements, kind::STRUCT);
    for i in 0..forge.schema_elements.min(2) {
        f.begin();
        if i == 0 {
            f.binary_field(4, b"schema");
            f.int_field(5, kind::I32, 1);
        } else {
            f.int_field(1, kind::I32, forge.physical_type);
            f.int_field(3, kind::I32, 0); // REQUIRED
            f.binary_field(4, b"index");
        }
        f.end();
    }
    f.int_field(3, kind::I64, forge.file_rows);
    if forge.repeated_rows {
        // Written in full form (a delta of 0 has none).
        f.int_field(3, kind::I64, forge.file_rows);
    }
    f.field(4, kind::LIST);
    f.list_header(1, kind::STRUCT);
    f.begin();
    f.field(1, kind::LIST);
    f.list_header(1, kind::STRUCT);
    f.begin();
    f.int_field(2, kind::I64, 4);
    f.field(3, kind::STRUCT);
    f.begin();
    f.int_field(1, kind::I32, 1);
    f.field(2, kind::LIST);
    f.list_header(1, kind::I32);
    f.integer(0);
    f.field(3, kind::LIST);
    f.list_header(1, kind::BINARY);
    f.varint(5);
    f.bytes.extend_from_slice(b"index");
    f.int_field(4, kind::I32, 0); // UNCOMPRESSED
    f.int_field(5, kind::I64, forge.chunk_values);
    f.int_field(6, kind::I64, forge.chunk_uncompressed.unwrap_or(chunk_len));
    f.int_field(7, kind::I64, chunk_len);
    f.int_field(9, kind::I64, 4);
    if let Some(offset) = forge.dictionary_offset {
        f.int_field(11, kind::I64, offset);
    }
    f.end();
    f.end();
    f.int_field(2, kind::I64, chunk_len);
    f.int_field(3, kind::I64, forge.group_rows);
    f.end();
    f.field(5, kind::LIST);
    f.list_header(forge.key_values, kind::STRUCT);
    for _ in 0..forge.key_values.min(1) {
        f.begin();
        f.binary_field(1, b"written_by");
        f.binary_field(2, b"blockdrop");
        f.end();
    }
    f.end();
    file.extend_from_slice(&f.bytes);
    file.extend_from_slice(&(f.bytes.len() as u32).to_le_bytes());
    file.extend_from_slice(b"PAR1");
    file
}

fn check(bytes: &[u8]) -> Result<(), String> {
    check_file(&mut Cursor::new(bytes), bytes.len() as u64)
}

#[test]
fn a_valid_file_passes_and_polars_reads_it() {
    let bytes = parquet(VALID);
    check(&bytes).unwrap();
    use polars::prelude::SerReader;
    let df = polars::prelude::ParquetReader::new(Cursor::new(bytes))
        .finish()
        .unwrap();
    assert_eq!(df.height(), 2);
}

#[test]
fn forged_sizes_are_refused_before_polars_reads_them() {
    let cases = [
        (
            Forge {
                key_values: (1 << 31) - 1,
                ..VALID
            },
            "2147483647 elements",
        ),
        (
            Forge {
                schema_elements: 1 << 20,
                ..VALID
            },
            "elements in",
        ),
        (
            Forge {
                file_rows: 1 << 40,
                group_rows: 1 << 40,
                chunk_values: 1 << 40,
                ..VALID
            },
            "rows (at most",
        ),
        (
            Forge {
                file_rows: 5,
                ..VALID
            },
            "declares 5 rows but",
        ),
        (
            Forge {
                file_rows: -1,
                group_rows: -1,
                ..VALID
            },
            "negative",
        ),
        (
            Forge {
                chunk_values: 1 << 31,
                ..VALID
            },
            "values once decoded",
        ),
        (
            Forge {
                chunk_values: 1,
                ..VALID
            },
            "1 values for 2 rows",
        ),
        (
            Forge {
                chunk_uncompressed: Some(2 << 30),
                ..VALID
            },
            "bytes and",
        ),
        (
            Forge {
                page_uncompressed: Some(i32::MAX),
                ..VALID
            },
            "pages of 2147483647 bytes",
        ),
        (
            Forge {
                page_uncompressed: Some(-1),
                ..VALID
            },
            "not a size or count",
        ),
    ];
    for (forge, needle) in cases {
        let err = check(&parquet(forge)).unwrap_err();
        assert!(err.contains(needle), "{needle:?} not in {err:?}");
    }
}

#[test]
fn forged_structure_is_refused_before_polars_reads_it() {
    let cases = [
        (
            Forge {
                version_as_binary: true,
                ..VALID
            },
            "has field 1 of type 8",
        ),
        (
            Forge {
                repeated_rows: true,
                ..VALID
            },
            "repeats field 3",
        ),
        (
            Forge {
                page_type: 2,
                ..VALID
            },
            "sub-headers [5]",
        ),
        (
            Forge {
                page_type: 1,
                ..VALID
            },
            "page type Some(1)",
        ),
        (
            Forge {
                physical_type: 7,
                ..VALID
            },
            "fixed-length byte array",
        ),
        (
            Forge {
                dictionary_offset: Some(5),
                ..VALID
            },
            "after its data pages",
        ),
    ];
    for (forge, needle) in cases {
        let err = check(&parquet(forge)).unwrap_err();
        assert!(err.contains(needle), "{needle:?} not in {err:?}");
    }
}

#[test]
fn truncated_and_foreign_files_are_refused() {
    let bytes = parquet(VALID);
    for cut in 0..bytes.len() {
        assert!(check(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    let mut long_footer = bytes.clone();
    let n = long_footer.len();
    long_footer[n - 8..n - 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(check(&long_footer)
        .unwrap_err()
        .contains("footer of 4294967295"));
    // Every single-byte change either passes the checks or is refused: never a panic.
    for i in 0..bytes.len() {
        for v in [0u8, 0x7f, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[i] = v;
            let _ = check(&b);
            let _ = check_footer(&mut Cursor::new(&b), b.len() as u64);
        }
    }
}
