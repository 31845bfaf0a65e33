//! Per-image records as a polars frame, written as Parquet (by extension) or CSV. Columns as
//! DESIGN.md fixes them; in CSV the list columns are space-separated numbers in one field.

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

/// The column names of a table file: Parquet by extension, else the first line of a CSV.
fn columns_of(path: &Path) -> Option<Vec<String>> {
    if is_parquet(path) {
        let file = std::fs::File::open(path).ok()?;
        let schema = ParquetReader::new(file).schema().ok()?;
        // (Reading the footer only: the rows are never loaded.)
        Some(schema.iter_names().map(|n| n.to_string()).collect())
    } else {
        use std::io::{BufRead, Read};
        let file = std::fs::File::open(path).ok()?;
        let mut line = String::new();
        std::io::BufReader::new(file)
            .take(64 * 1024)
            .read_line(&mut line)
            .ok()?;
        Some(line.trim_end().split(',').map(str::to_string).collect())
    }
}

/// Writes a frame atomically: Parquet when `path` ends in `.parquet`, CSV otherwise. An
/// existing file is replaced only when it is a table with the same columns (an earlier run's).
pub fn write_frame(df: &mut DataFrame, path: &Path) -> Result<()> {
    let parquet = is_parquet(path);
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    crate::output::check_replaceable(path, |p| columns_of(p).as_ref() == Some(&names))?;
    write_atomic(path, |file| {
        if parquet {
            ParquetWriter::new(file).finish(df).map(drop)
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
