//! The per-image record file: its columns, written and read back in this one module.
//! Parquet keeps list columns as lists; CSV holds them as space-separated numbers in one
//! field (and is write-only). The columns are listed in `docs/formats.md`.

use std::path::Path;

use polars::prelude::*;

use crate::error::{Error, Result};
use crate::output::frame::{is_parquet, read_parquet, write_frame_with};
use crate::records::Record;

/// The column names, in file order (`logits` only when every record has them).
pub mod column {
    pub const INDEX: &str = "index";
    pub const LABEL: &str = "label";
    pub const PRED: &str = "pred";
    pub const CORRECT: &str = "correct";
    /// The policy as '0'/'1' per block.
    pub const POLICY: &str = "policy";
    pub const BLOCKS: &str = "blocks";
    pub const FLOPS: &str = "flops";
    pub const PROBS: &str = "probs";
    pub const LOGITS: &str = "logits";
}

/// How list columns are stored.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lists {
    Native,
    SpaceSeparated,
}

fn list_column(name: &str, rows: impl Iterator<Item = Vec<f32>>, lists: Lists) -> Column {
    match lists {
        Lists::Native => {
            let (capacity, _) = rows.size_hint();
            let mut builder = ListPrimitiveChunkedBuilder::<Float32Type>::new(
                name.into(),
                capacity,
                capacity.saturating_mul(16),
                DataType::Float32,
            );
            for row in rows {
                builder.append_slice(&row);
            }
            builder.finish().into_column()
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

/// A column of one value per record.
pub(crate) fn per_record<T, P: ?Sized>(
    name: &str,
    records: &[Record],
    value: impl Fn(&Record) -> T,
) -> Column
where
    Series: NamedFrom<Vec<T>, P>,
{
    Column::new(name.into(), records.iter().map(value).collect::<Vec<T>>())
}

fn frame(records: &[Record], lists: Lists) -> Result<DataFrame> {
    let mut columns = vec![
        per_record(column::INDEX, records, |r| r.index),
        per_record(column::LABEL, records, |r| r.label),
        per_record(column::PRED, records, |r| r.pred),
        per_record(column::CORRECT, records, |r| r.correct),
        per_record(column::POLICY, records, Record::policy),
        per_record(column::BLOCKS, records, |r| r.blocks),
        per_record(column::FLOPS, records, |r| r.flops),
        list_column(
            column::PROBS,
            records.iter().map(|r| r.probs.clone()),
            lists,
        ),
    ];
    if records.iter().all(|r| r.logits.is_some()) && !records.is_empty() {
        columns.push(list_column(
            column::LOGITS,
            records.iter().filter_map(|r| r.logits.clone()),
            lists,
        ));
    }
    Ok(DataFrame::new_infer_height(columns)?)
}

/// Writes `records` to `path`: Parquet when it ends in `.parquet`, CSV otherwise (list columns
/// then as space-separated numbers).
pub fn write(records: &[Record], path: &Path) -> Result<()> {
    write_with(records, path, &[])
}

/// [`write`], with `metadata` in a Parquet file's key-value metadata.
pub fn write_with(records: &[Record], path: &Path, metadata: &[(String, String)]) -> Result<()> {
    let lists = if is_parquet(path) {
        Lists::Native
    } else {
        Lists::SpaceSeparated
    };
    write_frame_with(&mut frame(records, lists)?, path, metadata)
}

fn list_of_f32(column: &Column, row: usize) -> Option<Vec<f32>> {
    match column.get(row).ok()? {
        AnyValue::List(series) => series.f32().ok().map(|ca| ca.into_no_null_iter().collect()),
        _ => None,
    }
}

/// Records from a frame written by [`write`] as Parquet; `source` names it in errors.
pub fn from_frame(df: &DataFrame, source: &Path) -> Result<Vec<Record>> {
    let bad = |what: &str| Error::bad_input(source, format!("not a records file: {what}"));
    let column = |name: &str| {
        df.column(name)
            .map_err(|_| bad(&format!("no '{name}' column")))
    };
    let height = df.height();
    // Every row has every value: a null (or a column shorter than the frame) is refused here,
    // before any row is indexed.
    let complete = |name: &str, nulls: usize, len: usize| -> Result<()> {
        if nulls > 0 || len != height {
            return Err(bad(&format!(
                "'{name}' has {nulls} missing values of {height}"
            )));
        }
        Ok(())
    };
    let u32s = |name: &str| -> Result<Vec<u32>> {
        let values = column(name)?
            .u32()
            .map_err(|_| bad(&format!("'{name}' is not u32")))?;
        complete(name, values.null_count(), values.len())?;
        Ok(values.into_no_null_iter().collect())
    };
    let (index, label, pred, blocks) = (
        u32s(column::INDEX)?,
        u32s(column::LABEL)?,
        u32s(column::PRED)?,
        u32s(column::BLOCKS)?,
    );
    let correct = column(column::CORRECT)?
        .bool()
        .map_err(|_| bad("'correct' is not bool"))?;
    complete(column::CORRECT, correct.null_count(), correct.len())?;
    let flops = column(column::FLOPS)?
        .f64()
        .map_err(|_| bad("'flops' is not f64"))?;
    complete(column::FLOPS, flops.null_count(), flops.len())?;
    let flops: Vec<f64> = flops.into_no_null_iter().collect();
    let policy = column(column::POLICY)?
        .str()
        .map_err(|_| bad("'policy' is not a string"))?;
    complete(column::POLICY, policy.null_count(), policy.len())?;
    let probs = column(column::PROBS)?;
    complete(column::PROBS, probs.null_count(), probs.len())?;
    let logits = df.column(column::LOGITS).ok();
    if let Some(logits) = logits {
        complete(column::LOGITS, logits.null_count(), logits.len())?;
    }
    // Every policy as long as the first.
    let mut width: Option<usize> = None;
    (0..height)
        .map(|row| {
            Ok(Record {
                index: index[row],
                label: label[row],
                pred: pred[row],
                correct: correct.get(row).ok_or_else(|| bad("a missing 'correct'"))?,
                keep: {
                    let text = policy.get(row).ok_or_else(|| bad("a missing 'policy'"))?;
                    parse_policy(text, blocks[row], width.get_or_insert(text.len()))
                        .map_err(|problem| bad(&format!("row {row}: {problem}")))?
                },
                blocks: blocks[row],
                flops: flops[row],
                probs: list_of_f32(probs, row)
                    .ok_or_else(|| bad("'probs' is not a list of f32"))?,
                logits: logits.and_then(|c| list_of_f32(c, row)),
            })
        })
        .collect()
}

/// The most decisions a policy string may hold (ResNet-152 has 50 blocks): a longer one is
/// refused before its bits are collected, row after row.
const MAX_POLICY_WIDTH: usize = 1024;

/// A policy string's keep bits: only '0' and '1', `width` of them, `blocks` of them '1'.
fn parse_policy(text: &str, blocks: u32, width: &usize) -> Result<Vec<bool>, String> {
    if *width > MAX_POLICY_WIDTH {
        return Err(format!(
            "its policy has {width} decisions (at most {MAX_POLICY_WIDTH})"
        ));
    }
    if text.len() != *width {
        return Err(format!(
            "its policy has {} blocks, the first row's {width}",
            text.len()
        ));
    }
    let keep = text
        .bytes()
        .map(|b| match b {
            b'0' => Ok(false),
            b'1' => Ok(true),
            _ => Err(format!("its policy '{text}' is not 0s and 1s")),
        })
        .collect::<Result<Vec<bool>, String>>()?;
    let kept = keep.iter().filter(|&&k| k).count();
    if kept != blocks as usize {
        return Err(format!("'blocks' is {blocks}, its policy keeps {kept}"));
    }
    Ok(keep)
}

/// Reads and concatenates record files (Parquet), e.g. one per part of a large evaluation.
pub fn load(paths: &[impl AsRef<Path>]) -> Result<Vec<Record>> {
    let mut all = Vec::new();
    for path in paths {
        let path = path.as_ref();
        all.extend(from_frame(&read_parquet(path)?, path)?);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records() -> Vec<Record> {
        ["1100", "1010", "0001"]
            .iter()
            .enumerate()
            .map(|(i, policy)| {
                let keep: Vec<bool> = policy.chars().map(|c| c == '1').collect();
                Record {
                    index: i as u32,
                    label: 0,
                    pred: 0,
                    correct: true,
                    blocks: keep.iter().filter(|&&k| k).count() as u32,
                    flops: 1.0,
                    probs: vec![0.5; 4],
                    keep,
                    logits: None,
                }
            })
            .collect()
    }

    /// The records' frame with row 2's policy replaced by `policy`.
    fn with_policy(policy: &str) -> Result<Vec<Record>> {
        let mut df = frame(&records(), Lists::Native)?;
        df.replace(
            column::POLICY,
            Column::new(column::POLICY.into(), ["1100", "1010", policy]),
        )?;
        from_frame(&df, Path::new("r.parquet"))
    }

    #[test]
    fn policies_are_read_back_and_odd_ones_refused() {
        assert_eq!(with_policy("0001").unwrap(), records());
        for (policy, problem) in [
            ("00010", "row 2: its policy has 5 blocks, the first row's 4"),
            ("0x01", "row 2: its policy '0x01' is not 0s and 1s"),
            ("0011", "row 2: 'blocks' is 1, its policy keeps 2"),
        ] {
            let error = with_policy(policy).unwrap_err().to_string();
            assert!(
                error.starts_with("r.parquet: not a records file: ") && error.ends_with(problem),
                "{error}"
            );
        }
    }
}
