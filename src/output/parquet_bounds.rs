//! Checks a Parquet file's footer and page headers against the file's own length and a
//! memory budget before polars reads it. polars sizes its buffers from what the file declares
//! (list counts in the footer, each page's uncompressed size, each column's value count), so a
//! forged file of a few hundred bytes could ask for gigabytes, and an allocation that fails
//! aborts the process. Here every declared size is read with bounds, compared with what the
//! file can hold and with the budget, and refused with a short reason when it cannot be true.
//! (docs/formats.md, "Records files".)

use std::io::{Read, Seek, SeekFrom};

use super::thrift_compact::{expect_integer, kind, Reader, Result};

/// The largest footer read (records files have footers of a few KiB).
const MAX_FOOTER_BYTES: u64 = 8 << 20;
/// The most rows a file may declare: ImageNet's training split is 1.28 million.
pub const MAX_ROWS: u64 = 1 << 24;
/// The most decoded bytes (the sum of the column chunks' uncompressed sizes) and values (the
/// sum of their value counts) a file may declare: what polars may be asked to hold.
const MAX_DECODED_BYTES: u64 = 512 << 20;
const MAX_VALUES: u64 = 64 << 20;
/// Caps on the footer's lists: schema elements, row groups, columns per row group, key-value
/// pairs. A records file has about 12 schema elements and a dozen key-value pairs.
const MAX_SCHEMA_ELEMENTS: usize = 1024;
const MAX_ROW_GROUPS: usize = 1 << 16;
const MAX_COLUMNS: usize = 1024;
const MAX_KEY_VALUES: usize = 4096;
/// A page header is read from a window of this many bytes (headers are a few dozen bytes;
/// their optional statistics hold one minimum and one maximum).
const PAGE_HEADER_WINDOW: u64 = 64 << 10;

const MAGIC: &[u8; 4] = b"PAR1";

/// What the footer declares about one column chunk.
#[derive(Debug, Default, Clone, PartialEq)]
struct Chunk {
    start: i64,
    compressed: i64,
    uncompressed: i64,
    values: i64,
    dictionary_offset: Option<i64>,
    data_offset: i64,
}

/// What the footer declares, as far as the checks need it.
#[derive(Debug, Default)]
struct Footer {
    rows: i64,
    row_groups: Vec<(i64, Vec<Chunk>)>,
}

/// The footer's checks only: enough before polars parses the footer alone (a tag or a
/// provenance read). `len` is the file's length.
pub fn check_footer(file: &mut (impl Read + Seek), len: u64) -> Result<()> {
    read_and_check_footer(file, len).map(drop)
}

/// The footer's checks, then every page header of every column chunk: enough before polars
/// reads the whole file.
pub fn check_file(file: &mut (impl Read + Seek), len: u64) -> Result<()> {
    let (footer, data_end) = read_and_check_footer(file, len)?;
    for (_, chunks) in &footer.row_groups {
        for chunk in chunks {
            check_pages(file, chunk, data_end)?;
        }
    }
    file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    Ok(())
}

/// Reads the footer with bounds and checks what it declares; returns it and where the data
/// region ends (the footer's start).
fn read_and_check_footer(file: &mut (impl Read + Seek), len: u64) -> Result<(Footer, u64)> {
    if len < 12 {
        return Err(format!("is {len} bytes, too short for a Parquet file"));
    }
    let mut head = [0u8; 4];
    let mut tail = [0u8; 8];
    read_at(file, 0, &mut head)?;
    read_at(file, len - 8, &mut tail)?;
    if &head != MAGIC || &tail[4..] != MAGIC {
        return Err("does not begin and end with PAR1".into());
    }
    let footer_len = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    if footer_len > len - 12 || footer_len > MAX_FOOTER_BYTES {
        return Err(format!(
            "declares a footer of {footer_len} bytes in a file of {len} (at most {MAX_FOOTER_BYTES})"
        ));
    }
    let data_end = len - 8 - footer_len;
    let mut bytes = vec![0u8; footer_len as usize];
    read_at(file, data_end, &mut bytes)?;
    let footer = parse_footer(&bytes).map_err(|e| format!("has a footer that {e}"))?;
    check_declared(&footer, data_end)?;
    Ok((footer, data_end))
}

fn read_at(file: &mut (impl Read + Seek), at: u64, into: &mut [u8]) -> Result<()> {
    file.seek(SeekFrom::Start(at))
        .and_then(|_| file.read_exact(into))
        .map_err(|e| format!("cannot be read at byte {at}: {e}"))
}

/// FileMetaData: 2 schema, 3 num_rows, 4 row_groups, 5 key_value_metadata.
fn parse_footer(bytes: &[u8]) -> Result<Footer> {
    let mut r = Reader::new(bytes);
    let mut footer = Footer::default();
    r.fields(|r, id, kind| match id {
        2 => r
            .list(kind::STRUCT, MAX_SCHEMA_ELEMENTS, |r| {
                r.skip(kind::STRUCT, true)
            })
            .map(drop),
        3 => expect_integer(r, kind, kind::I64, "num_rows").map(|v| footer.rows = v),
        4 => r
            .list(kind::STRUCT, MAX_ROW_GROUPS, |r| {
                footer.row_groups.push(parse_row_group(r)?);
                Ok(())
            })
            .map(drop),
        5 => r
            .list(kind::STRUCT, MAX_KEY_VALUES, |r| r.skip(kind::STRUCT, true))
            .map(drop),
        _ => r.skip(kind, false),
    })?;
    Ok(footer)
}

/// RowGroup: 1 columns, 3 num_rows.
fn parse_row_group(r: &mut Reader) -> Result<(i64, Vec<Chunk>)> {
    let (mut rows, mut chunks) = (0, Vec::new());
    r.structure(|r, id, kind| match id {
        1 => r
            .list(kind::STRUCT, MAX_COLUMNS, |r| {
                chunks.push(parse_column_chunk(r)?);
                Ok(())
            })
            .map(drop),
        3 => expect_integer(r, kind, kind::I64, "a row group's num_rows").map(|v| rows = v),
        _ => r.skip(kind, false),
    })?;
    Ok((rows, chunks))
}

/// ColumnChunk: 3 meta_data (ColumnMetaData: 5 num_values, 6 total_uncompressed_size,
/// 7 total_compressed_size, 9 data_page_offset, 11 dictionary_page_offset).
fn parse_column_chunk(r: &mut Reader) -> Result<Chunk> {
    let mut chunk = Chunk::default();
    let mut has_metadata = false;
    r.structure(|r, id, k| {
        if id != 3 {
            return r.skip(k, false);
        }
        if k != kind::STRUCT {
            return Err(format!("has column metadata of type {k}"));
        }
        has_metadata = true;
        r.structure(|r, id, k| {
            let i64_field = |r: &mut Reader, what| expect_integer(r, k, kind::I64, what);
            match id {
                5 => chunk.values = i64_field(r, "num_values")?,
                6 => chunk.uncompressed = i64_field(r, "total_uncompressed_size")?,
                7 => chunk.compressed = i64_field(r, "total_compressed_size")?,
                9 => chunk.data_offset = i64_field(r, "data_page_offset")?,
                11 => chunk.dictionary_offset = Some(i64_field(r, "dictionary_page_offset")?),
                _ => r.skip(k, false)?,
            }
            Ok(())
        })
    })?;
    if !has_metadata {
        return Err("has a column chunk without metadata".into());
    }
    // Some writers record an absent dictionary as offset 0.
    chunk.start = match chunk.dictionary_offset {
        Some(d) if d > 0 => d.min(chunk.data_offset),
        _ => chunk.data_offset,
    };
    Ok(chunk)
}

/// What the footer declares against the file's length and the budget.
fn check_declared(footer: &Footer, data_end: u64) -> Result<()> {
    let group_rows = footer.row_groups.iter().try_fold(0u64, |sum, (rows, _)| {
        u64::try_from(*rows)
            .ok()
            .and_then(|rows| sum.checked_add(rows))
            .ok_or("declares a negative or overflowing row count")
    })?;
    if u64::try_from(footer.rows) != Ok(group_rows) {
        return Err(format!(
            "declares {} rows but its row groups hold {group_rows}",
            footer.rows
        ));
    }
    if group_rows > MAX_ROWS {
        return Err(format!("declares {group_rows} rows (at most {MAX_ROWS})"));
    }
    let (mut bytes, mut values) = (0u64, 0u64);
    for (rows, chunks) in &footer.row_groups {
        for chunk in chunks {
            let sizes = [
                chunk.start,
                chunk.compressed,
                chunk.uncompressed,
                chunk.values,
            ]
            .map(u64::try_from);
            let [Ok(start), Ok(compressed), Ok(uncompressed), Ok(count)] = sizes else {
                return Err("declares a negative size, offset or count in a column chunk".into());
            };
            let end = start.checked_add(compressed);
            if start < MAGIC.len() as u64 || end.is_none_or(|end| end > data_end) {
                return Err(format!(
                    "declares a column chunk at bytes {start}..+{compressed}, outside the data \
                     region 4..{data_end}"
                ));
            }
            // Every row has at least one value or null in each of its columns.
            if count < *rows as u64 {
                return Err(format!(
                    "declares a column chunk of {count} values for {rows} rows"
                ));
            }
            bytes = bytes.saturating_add(uncompressed);
            values = values.saturating_add(count);
        }
    }
    if bytes > MAX_DECODED_BYTES || values > MAX_VALUES {
        return Err(format!(
            "declares {bytes} bytes and {values} values once decoded (at most {MAX_DECODED_BYTES} \
             bytes and {MAX_VALUES} values)"
        ));
    }
    Ok(())
}

/// What a page header declares (PageHeader: 2 uncompressed_page_size, 3 compressed_page_size,
/// 5 data_page_header, 7 dictionary_page_header, 8 data_page_header_v2; each of the three
/// headers has num_values as its field 1).
#[derive(Debug, Default)]
struct Page {
    header_len: u64,
    uncompressed: i64,
    compressed: i64,
    values: i64,
    dictionary: bool,
}

fn parse_page_header(bytes: &[u8]) -> Result<Page> {
    let mut r = Reader::new(bytes);
    let mut page = Page::default();
    r.fields(|r, id, k| match id {
        2 => {
            expect_integer(r, k, kind::I32, "uncompressed_page_size").map(|v| page.uncompressed = v)
        }
        3 => expect_integer(r, k, kind::I32, "compressed_page_size").map(|v| page.compressed = v),
        5 | 7 | 8 if k == kind::STRUCT => {
            page.dictionary = id == 7;
            r.structure(|r, id, k| match id {
                1 => {
                    expect_integer(r, k, kind::I32, "a page's num_values").map(|v| page.values = v)
                }
                _ => r.skip(k, false),
            })
        }
        _ => r.skip(k, false),
    })?;
    page.header_len = r.position() as u64;
    Ok(page)
}

/// Walks a column chunk's pages: each must fit in the chunk, their uncompressed sizes must sum
/// within the chunk's declared total (which the budget has bounded), and their value counts
/// within the chunk's.
fn check_pages(file: &mut (impl Read + Seek), chunk: &Chunk, data_end: u64) -> Result<()> {
    // Checked non-negative and within the data region by `check_declared`.
    let (start, end) = (chunk.start as u64, (chunk.start + chunk.compressed) as u64);
    let (mut at, mut uncompressed, mut values) = (start, 0u64, 0u64);
    let mut window = Vec::new();
    while at < end {
        let take = (end - at).min(PAGE_HEADER_WINDOW).min(data_end - at);
        window.resize(take as usize, 0);
        read_at(file, at, &mut window)?;
        let page = parse_page_header(&window)
            .map_err(|e| format!("has a page header at byte {at} that {e}"))?;
        let (Ok(page_uncompressed), Ok(page_compressed), Ok(page_values)) = (
            u64::try_from(page.uncompressed),
            u64::try_from(page.compressed),
            u64::try_from(page.values),
        ) else {
            return Err(format!(
                "has a page at byte {at} with a negative size or count"
            ));
        };
        let next = at + page.header_len;
        if page_compressed > end - next {
            return Err(format!(
                "has a page at byte {at} of {page_compressed} bytes that runs past its column \
                 chunk's end at {end}"
            ));
        }
        uncompressed += page_uncompressed;
        if page.dictionary {
            // A dictionary's entries take one byte or more each.
            if page_values > page_uncompressed {
                return Err(format!(
                    "has a dictionary page at byte {at} of {page_values} entries in \
                     {page_uncompressed} bytes"
                ));
            }
        } else {
            values += page_values;
        }
        at = next + page_compressed;
    }
    if uncompressed > chunk.uncompressed as u64 || values > chunk.values as u64 {
        return Err(format!(
            "has pages of {uncompressed} bytes and {values} values in a column chunk that \
             declares {} and {}",
            chunk.uncompressed, chunk.values
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
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
    }

    const VALID: Forge = Forge {
        key_values: 1,
        file_rows: 2,
        group_rows: 2,
        chunk_values: 2,
        chunk_uncompressed: None,
        page_uncompressed: None,
        schema_elements: 2,
    };

    /// A one-column (INT32 `index`), one-page, uncompressed PLAIN file of two rows, as a
    /// Parquet writer lays it out, with the declared sizes `forge` asks for.
    fn parquet(forge: Forge) -> Vec<u8> {
        let data = [7i32.to_le_bytes(), 9i32.to_le_bytes()].concat();
        let mut page = Writer::default();
        page.begin();
        page.int_field(1, kind::I32, 0); // DATA_PAGE
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
        f.int_field(1, kind::I32, 2);
        f.field(2, kind::LIST);
        f.list_header(forge.schema_elements, kind::STRUCT);
        for i in 0..forge.schema_elements.min(2) {
            f.begin();
            if i == 0 {
                f.binary_field(4, b"schema");
                f.int_field(5, kind::I32, 1);
            } else {
                f.int_field(1, kind::I32, 1); // INT32
                f.int_field(3, kind::I32, 0); // REQUIRED
                f.binary_field(4, b"index");
            }
            f.end();
        }
        f.int_field(3, kind::I64, forge.file_rows);
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
                "negative",
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
}
