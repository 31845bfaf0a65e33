//! Checks a Parquet file's footer and page headers against the file's own length and a
//! memory budget before polars reads it. polars sizes its buffers from what the file declares
//! (list counts in the footer, each page's uncompressed size, each column's value count), so a
//! forged file of a few hundred bytes could ask for gigabytes, and an allocation that fails
//! aborts the process. Here every footer and page header is first checked against the field
//! types polars decodes (`parquet_thrift`: so both read the same fields), then every declared
//! size is compared with what the file can hold and with the budget, and refused with a short
//! reason when it cannot be true. (docs/formats.md, "Per-image records".)

use std::io::{Read, Seek, SeekFrom};

use super::parquet_thrift::{FILE_META_DATA, PAGE_HEADER};
use super::thrift_compact::{expect_integer, kind, Reader, Result};

/// The largest footer read (records files have footers of a few KiB).
const MAX_FOOTER_BYTES: u64 = 8 << 20;
/// The most rows a file may declare: ImageNet's training split is 1.28 million.
pub const MAX_ROWS: u64 = 1 << 21;
/// The most decoded bytes (the sum of the column chunks' uncompressed sizes) and values (the
/// sum of their value counts, dictionaries' entries included) a file may declare: what polars
/// may be asked to hold.
const MAX_DECODED_BYTES: u64 = 512 << 20;
const MAX_VALUES: u64 = 64 << 20;
/// Caps on the footer's lists: schema elements, row groups, columns per row group, key-value
/// pairs. A records file has about 12 schema elements and a dozen key-value pairs.
const MAX_SCHEMA_ELEMENTS: usize = 1024;
const MAX_ROW_GROUPS: usize = 1 << 16;
const MAX_COLUMNS: usize = 1024;
const MAX_KEY_VALUES: usize = 4096;
/// Nesting of the schema: a records file's lists are three levels deep (root, list, element).
const MAX_SCHEMA_DEPTH: usize = 4;
/// Physical types polars would materialise at a size the file declares: INT96 and
/// FIXED_LEN_BYTE_ARRAY (records files have neither).
const REFUSED_PHYSICAL_TYPES: [i64; 2] = [3, 7];
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
    let mut dictionary_entries = 0u64;
    for (_, chunks) in &footer.row_groups {
        for chunk in chunks {
            dictionary_entries =
                dictionary_entries.saturating_add(check_pages(file, chunk, data_end)?);
        }
    }
    if dictionary_entries > MAX_VALUES {
        return Err(format!(
            "declares dictionaries of {dictionary_entries} entries (at most {MAX_VALUES})"
        ));
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
    let footer = Reader::new(&bytes)
        .check_struct(FILE_META_DATA)
        .and_then(|()| parse_footer(&bytes))
        .map_err(|e| format!("has a footer that {e}"))?;
    check_declared(&footer, data_end)?;
    Ok((footer, data_end))
}

fn read_at(file: &mut (impl Read + Seek), at: u64, into: &mut [u8]) -> Result<()> {
    file.seek(SeekFrom::Start(at))
        .and_then(|_| file.read_exact(into))
        .map_err(|e| format!("cannot be read at byte {at}: {e}"))
}

/// FileMetaData: 2 schema, 3 num_rows, 4 row_groups, 5 key_value_metadata (the types were
/// checked by `check_struct`).
fn parse_footer(bytes: &[u8]) -> Result<Footer> {
    let mut r = Reader::new(bytes);
    let mut footer = Footer::default();
    r.fields(|r, id, kind| match id {
        2 => {
            let mut schema = Vec::new();
            r.list(kind::STRUCT, MAX_SCHEMA_ELEMENTS, |r| {
                schema.push(parse_schema_element(r)?);
                Ok(())
            })?;
            check_schema(&schema)
        }
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

/// SchemaElement: `(physical type, number of children)` (fields 1 and 5).
fn parse_schema_element(r: &mut Reader) -> Result<(Option<i64>, i64)> {
    let (mut physical, mut children) = (None, 0);
    r.structure(|r, id, k| match id {
        1 => expect_integer(r, k, kind::I32, "a physical type").map(|v| physical = Some(v)),
        5 => expect_integer(r, k, kind::I32, "num_children").map(|v| children = v),
        _ => r.skip(k, false),
    })?;
    Ok((physical, children))
}

/// The schema tree (flattened depth first, each group followed by its children) nests at most
/// `MAX_SCHEMA_DEPTH` deep, every element belongs to it, and no column has a physical type
/// whose values take a size the file declares.
fn check_schema(schema: &[(Option<i64>, i64)]) -> Result<()> {
    // The children still expected by each open group, innermost last.
    let mut open: Vec<i64> = Vec::new();
    for (i, &(physical, children)) in schema.iter().enumerate() {
        if i > 0 {
            while open.last() == Some(&0) {
                open.pop();
            }
            let Some(slot) = open.last_mut() else {
                return Err(format!(
                    "has schema element {i} outside its root's children"
                ));
            };
            *slot -= 1;
        }
        if children < 0 {
            return Err(format!("has a schema element with {children} children"));
        }
        if children > 0 {
            open.push(children);
            if open.len() > MAX_SCHEMA_DEPTH {
                return Err(format!(
                    "nests its schema deeper than {MAX_SCHEMA_DEPTH} levels"
                ));
            }
        }
        if physical.is_some_and(|t| REFUSED_PHYSICAL_TYPES.contains(&t)) {
            return Err("has an INT96 or fixed-length byte array column".into());
        }
    }
    if open.iter().any(|&left| left > 0) {
        return Err("declares more schema children than it holds".into());
    }
    Ok(())
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
    // polars starts reading at the dictionary page when there is one (`byte_range`).
    chunk.start = chunk.dictionary_offset.unwrap_or(chunk.data_offset);
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
            if chunk.start > chunk.data_offset {
                return Err(format!(
                    "declares a dictionary page at byte {start}, after its data pages at {}",
                    chunk.data_offset
                ));
            }
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

/// What a page header declares (PageHeader: 1 type, 2 uncompressed_page_size,
/// 3 compressed_page_size; 5 data_page_header, 7 dictionary_page_header, 8
/// data_page_header_v2, each with num_values as its field 1).
#[derive(Debug, Default)]
struct Page {
    header_len: u64,
    uncompressed: u64,
    compressed: u64,
    values: u64,
    dictionary: bool,
}

/// Page types polars reads, and the sub-header each must carry (field id).
const DATA_PAGE: (i64, i16) = (0, 5);
const DICTIONARY_PAGE: (i64, i16) = (2, 7);
const DATA_PAGE_V2: (i64, i16) = (3, 8);

fn parse_page_header(bytes: &[u8]) -> Result<Page> {
    let mut r = Reader::new(bytes);
    r.check_struct(PAGE_HEADER)?;
    let mut r = Reader::new(bytes);
    let (mut page_type, mut sizes, mut headers) = (None, [None, None], Vec::new());
    let non_negative_i32 = |r: &mut Reader, k, what: &str| -> Result<u64> {
        let v = expect_integer(r, k, kind::I32, what)?;
        i32::try_from(v)
            .ok()
            .and_then(|v| u64::try_from(v).ok())
            .ok_or_else(|| format!("has {what} {v}, not a size or count"))
    };
    let mut values = 0;
    r.fields(|r, id, k| match id {
        1 => expect_integer(r, k, kind::I32, "a page type").map(|v| page_type = Some(v)),
        2 => non_negative_i32(r, k, "uncompressed_page_size").map(|v| sizes[0] = Some(v)),
        3 => non_negative_i32(r, k, "compressed_page_size").map(|v| sizes[1] = Some(v)),
        5 | 7 | 8 => {
            headers.push(id);
            r.structure(|r, sub, k| match sub {
                1 => non_negative_i32(r, k, "a page's num_values").map(|v| values = v),
                _ => r.skip(k, false),
            })
        }
        _ => r.skip(k, false),
    })?;
    let kind = [DATA_PAGE, DICTIONARY_PAGE, DATA_PAGE_V2]
        .into_iter()
        .find(|&(t, _)| page_type == Some(t))
        .ok_or_else(|| format!("has page type {page_type:?}, not one a records file holds"))?;
    if headers != [kind.1] {
        return Err(format!(
            "has page type {} with the sub-headers {headers:?} (exactly field {} belongs)",
            kind.0, kind.1
        ));
    }
    let [Some(uncompressed), Some(compressed)] = sizes else {
        return Err("has a page header without its sizes".into());
    };
    Ok(Page {
        header_len: r.position() as u64,
        uncompressed,
        compressed,
        values,
        dictionary: kind == DICTIONARY_PAGE,
    })
}

/// Walks a column chunk's pages: each must fit in the chunk, their uncompressed sizes must sum
/// within the chunk's declared total (which the budget has bounded), and their value counts
/// within the chunk's. Returns the entries its dictionary page declares (the caller budgets
/// them: polars reserves one value per entry).
fn check_pages(file: &mut (impl Read + Seek), chunk: &Chunk, data_end: u64) -> Result<u64> {
    // Checked non-negative and within the data region by `check_declared`.
    let (start, end) = (chunk.start as u64, (chunk.start + chunk.compressed) as u64);
    let (mut at, mut uncompressed, mut values, mut dictionary) = (start, 0u64, 0u64, 0u64);
    // The bytes from `window_at`: page headers are parsed from it while they lie inside it.
    let (mut window, mut window_at) = (Vec::new(), 0u64);
    while at < end {
        let in_window = at >= window_at && at - window_at < window.len() as u64;
        let window_end = window_at + window.len() as u64;
        let reaches_end = window_end >= end.min(data_end);
        if !in_window || (window_end - at < PAGE_HEADER_WINDOW / 2 && !reaches_end) {
            let take = (end - at).min(PAGE_HEADER_WINDOW).min(data_end - at);
            window.resize(take as usize, 0);
            read_at(file, at, &mut window)?;
            window_at = at;
        }
        let page = parse_page_header(&window[(at - window_at) as usize..])
            .map_err(|e| format!("has a page header at byte {at} that {e}"))?;
        let next = at + page.header_len;
        if page.compressed > end - next {
            return Err(format!(
                "has a page at byte {at} of {} bytes that runs past its column chunk's end at \
                 {end}",
                page.compressed
            ));
        }
        uncompressed = uncompressed.saturating_add(page.uncompressed);
        if page.dictionary {
            // A dictionary's entries take one byte or more each.
            if page.values > page.uncompressed {
                return Err(format!(
                    "has a dictionary page at byte {at} of {} entries in {} bytes",
                    page.values, page.uncompressed
                ));
            }
            dictionary = dictionary.saturating_add(page.values);
        } else {
            values = values.saturating_add(page.values);
        }
        at = next + page.compressed;
    }
    if uncompressed > chunk.uncompressed as u64 || values > chunk.values as u64 {
        return Err(format!(
            "has pages of {uncompressed} bytes and {values} values in a column chunk that \
             declares {} and {}",
            chunk.uncompressed, chunk.values
        ));
    }
    Ok(dictionary)
}

#[cfg(test)]
#[path = "parquet_bounds_tests.rs"]
mod tests;
