//! Per-image records as a polars frame, written as Parquet (by extension) or CSV. Columns as
//! the README's `--records` fixes them; in CSV the list columns are space-separated numbers in
//! one field.

use std::path::Path;

use polars::prelude::*;

use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use crate::eval::Record;

/// How list columns are stored.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lists {
    Native,
    SpaceSeparated,
}

fn list_column(name: &str, rows: impl Iterator<Item = Vec<f32>>, lists: Lists) -> Column {
    match lists {
        Lists::Native => {
            let series: Vec<Series> = rows.map(|v| Series::new(PlSmallStr::EMPTY, v)).collect();
            Column::new(name.into(), series)
        }
        Lists::SpaceSeparated => {
            let text: Vec<String> = rows
                .map(|v| {
                    v.iter()
                        .map(|x| x.to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect();
            Column::new(name.into(), text)
        }
    }
}

fn frame(records: &[Record], lists: Lists) -> Result<DataFrame> {
    let mut columns = vec![
        Column::new(
            "index".into(),
            records.iter().map(|r| r.index).collect::<Vec<u32>>(),
        ),
        Column::new(
            "label".into(),
            records.iter().map(|r| r.label).collect::<Vec<u32>>(),
        ),
        Column::new(
            "pred".into(),
            records.iter().map(|r| r.pred).collect::<Vec<u32>>(),
        ),
        Column::new(
            "correct".into(),
            records.iter().map(|r| r.correct).collect::<Vec<bool>>(),
        ),
        Column::new(
            "policy".into(),
            records.iter().map(Record::policy).collect::<Vec<String>>(),
        ),
        Column::new(
            "blocks".into(),
            records.iter().map(|r| r.blocks).collect::<Vec<u32>>(),
        ),
        Column::new(
            "flops".into(),
            records.iter().map(|r| r.flops).collect::<Vec<f64>>(),
        ),
        list_column("probs", records.iter().map(|r| r.probs.clone()), lists),
    ];
    if records.iter().all(|r| r.logits.is_some()) && !records.is_empty() {
        columns.push(list_column(
            "logits",
            records.iter().filter_map(|r| r.logits.clone()),
            lists,
        ));
    }
    Ok(DataFrame::new_infer_height(columns)?)
}

/// True when `path` names a Parquet file (by extension).
pub fn is_parquet(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

/// Whether a Parquet file carries blockdrop's tag in its key-value metadata.
fn tagged_parquet(path: &Path) -> bool {
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let mut reader = ParquetReader::new(file);
    // The footer only: the rows are never loaded.
    let Ok(metadata) = reader.get_metadata() else {
        return false;
    };
    metadata.key_value_metadata.as_ref().is_some_and(|kv| {
        kv.iter().any(|entry| {
            entry.key == crate::output::WRITER_KEY
                && entry.value.as_deref() == Some(crate::output::WRITER)
        })
    })
}

/// Writes a frame atomically: Parquet (tagged as blockdrop's) when `path` ends in `.parquet`,
/// CSV otherwise. An existing file is replaced only when it is a tagged Parquet file.
pub fn write_frame(df: &mut DataFrame, path: &Path) -> Result<()> {
    let parquet = is_parquet(path);
    crate::output::check_replaceable(path, |p| parquet && tagged_parquet(p))?;
    write_atomic(path, |file| {
        if parquet {
            let tag = KeyValueMetadata::from_static(vec![(
                crate::output::WRITER_KEY.to_string(),
                crate::output::WRITER.to_string(),
            )]);
            ParquetWriter::new(file)
                .with_key_value_metadata(Some(tag))
                .finish(df)
                .map(drop)
        } else {
            CsvWriter::new(file).finish(df)
        }
        .map_err(|e| Error::bad_input(path, format!("cannot write: {e}")))
    })
}

/// Writes `records` to `path`: Parquet when it ends in `.parquet`, CSV otherwise (list columns
/// then as space-separated numbers).
pub fn write(records: &[Record], path: &Path) -> Result<()> {
    let lists = if is_parquet(path) {
        Lists::Native
    } else {
        Lists::SpaceSeparated
    };
    write_frame(&mut frame(records, lists)?, path)
}

/// Reads records written by [`write`] (Parquet) back into a frame.
pub fn read_parquet(path: &Path) -> Result<DataFrame> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    ParquetReader::new(file)
        .finish()
        .map_err(|e| Error::bad_input(path, format!("not a readable Parquet file: {e}")))
}
