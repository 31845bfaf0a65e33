//! Records and analysis results as polars frames: reading `records*.parquet` shards back as
//! one set of records, and the cluster table written beside a report.

use std::path::Path;

use polars::prelude::*;

use crate::analysis::Cluster;
use crate::error::{Error, Result};
use crate::eval::Record;
use crate::model::blockdrop::policy_string;

fn list_of_f32(column: &Column, row: usize) -> Option<Vec<f32>> {
    let value = column.get(row).ok()?;
    match value {
        AnyValue::List(series) => series.f32().ok().map(|ca| ca.into_no_null_iter().collect()),
        AnyValue::Null => None,
        _ => None,
    }
}

/// Records from a frame written by `eval --records … .parquet` (or `export`).
pub fn records_from_frame(df: &DataFrame, source: &Path) -> Result<Vec<Record>> {
    let bad = |what: &str| Error::bad_input(source, format!("not a records file: {what}"));
    let column = |name: &str| {
        df.column(name)
            .map_err(|_| bad(&format!("no '{name}' column")))
    };
    let u32s = |name: &str| -> Result<Vec<u32>> {
        Ok(column(name)?
            .u32()
            .map_err(|_| bad(&format!("'{name}' is not u32")))?
            .into_no_null_iter()
            .collect())
    };
    let (index, label, pred, blocks) = (
        u32s("index")?,
        u32s("label")?,
        u32s("pred")?,
        u32s("blocks")?,
    );
    let correct = column("correct")?
        .bool()
        .map_err(|_| bad("'correct' is not bool"))?;
    let flops: Vec<f64> = column("flops")?
        .f64()
        .map_err(|_| bad("'flops' is not f64"))?
        .into_no_null_iter()
        .collect();
    let policy = column("policy")?
        .str()
        .map_err(|_| bad("'policy' is not a string"))?;
    let probs = column("probs")?;
    let logits = df.column("logits").ok();
    (0..df.height())
        .map(|row| {
            Ok(Record {
                index: index[row],
                label: label[row],
                pred: pred[row],
                correct: correct.get(row).ok_or_else(|| bad("a missing 'correct'"))?,
                keep: policy
                    .get(row)
                    .ok_or_else(|| bad("a missing 'policy'"))?
                    .chars()
                    .map(|c| c == '1')
                    .collect(),
                blocks: blocks[row],
                flops: flops[row],
                probs: list_of_f32(probs, row)
                    .ok_or_else(|| bad("'probs' is not a list of f32"))?,
                logits: logits.and_then(|c| list_of_f32(c, row)),
            })
        })
        .collect()
}

/// Reads and concatenates record shards (e.g. one per part of a large evaluation).
pub fn load_records(paths: &[impl AsRef<Path>]) -> Result<Vec<Record>> {
    let mut all = Vec::new();
    for path in paths {
        let path = path.as_ref();
        let df = crate::records::read_parquet(path)?;
        all.extend(records_from_frame(&df, path)?);
    }
    Ok(all)
}

/// One row per cluster: size, accuracy, mean blocks, medoid policy.
pub fn clusters_frame(clusters: &[Cluster]) -> Result<DataFrame> {
    Ok(DataFrame::new_infer_height(vec![
        Column::new(
            "cluster".into(),
            (0..clusters.len() as u32).collect::<Vec<_>>(),
        ),
        Column::new(
            "images".into(),
            clusters
                .iter()
                .map(|c| c.members.len() as u32)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "accuracy".into(),
            clusters.iter().map(|c| c.accuracy).collect::<Vec<_>>(),
        ),
        Column::new(
            "mean_blocks".into(),
            clusters.iter().map(|c| c.mean_blocks).collect::<Vec<_>>(),
        ),
        Column::new(
            "medoid".into(),
            clusters
                .iter()
                .map(|c| policy_string(&c.medoid))
                .collect::<Vec<_>>(),
        ),
    ])?)
}
