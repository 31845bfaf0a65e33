//! Records as one polars frame, one row per image, and the analysis as `group_by`,
//! aggregations and `sort` on it.
//!
//! Polars' expression API lives in its `lazy` feature, which would double the project's cold
//! build (a streaming engine, tokio, an HTTP stack). The eager `GroupBy` computes the same
//! hash grouping and per-group means; docs/architecture.md has the trade-off.

use polars::prelude::*;

use crate::analysis::clusters::kmedoids;
use crate::analysis::{confidence, ClassRow, Cluster, PolicyGroup};
use crate::error::Result;
use crate::records::schema::{column, per_record};
use crate::records::Record;

/// Column names of the analysis frame beyond the records' own.
mod name {
    /// The record's position in the slice the frame was built from.
    pub const ROW: &str = "row";
    /// [`crate::analysis::confidence`] of the record.
    pub const CONFIDENCE: &str = "confidence";
    /// Images per group (added to grouped frames).
    pub const IMAGES: &str = "images";
    /// A group's position before sorting (added to grouped frames).
    pub const GROUP: &str = "group";
    /// The cluster of each record (added for the cluster summaries).
    pub const CLUSTER: &str = "cluster";

    /// One boolean column per block: does the record run it?
    pub fn keep(block: usize) -> String {
        format!("keep_{block}")
    }

    /// The column polars' grouped mean names after `column`.
    pub fn mean(column: &str) -> String {
        format!("{column}_mean")
    }
}

/// One row per record: `row`, `label`, `correct`, `policy` ('0'/'1' per block), `blocks`,
/// `flops`, `confidence` and `keep_0 … keep_{K−1}`.
pub struct RecordFrame {
    frame: DataFrame,
    blocks: usize,
}

/// One `group_by`: per group its keys and aggregates (in `frame`, with `images` and `group`
/// columns), and its members (record positions, ascending) in `members[group]`.
struct Grouped {
    frame: DataFrame,
    members: Vec<Vec<usize>>,
}

impl RecordFrame {
    /// The frame of `records`. Every record must have the same number of blocks.
    pub fn of(records: &[Record]) -> Result<RecordFrame> {
        let blocks = records.first().map_or(0, |r| r.keep.len());
        if let Some(r) = records.iter().find(|r| r.keep.len() != blocks) {
            return Err(polars_err!(
                ShapeMismatch: "record of image {} has {} blocks, the first has {blocks}",
                r.index, r.keep.len()
            )
            .into());
        }
        let rows: Vec<u64> = (0..records.len() as u64).collect();
        let mut columns = vec![
            Column::new(name::ROW.into(), rows),
            per_record(column::LABEL, records, |r| r.label),
            per_record(column::CORRECT, records, |r| r.correct),
            per_record(column::POLICY, records, Record::policy),
            per_record(column::BLOCKS, records, |r| r.blocks),
            per_record(column::FLOPS, records, |r| r.flops),
            per_record(name::CONFIDENCE, records, confidence),
        ];
        for block in 0..blocks {
            columns.push(per_record(&name::keep(block), records, |r| r.keep[block]));
        }
        Ok(RecordFrame {
            frame: DataFrame::new(records.len(), columns)?,
            blocks,
        })
    }

    /// The frame itself (one row per record).
    pub fn frame(&self) -> &DataFrame {
        &self.frame
    }

    fn keep_columns(&self) -> Vec<String> {
        (0..self.blocks).map(name::keep).collect()
    }

    /// Fraction of images that keep each block: the mean of each `keep_k` column.
    pub fn keep_rates(&self) -> Result<Vec<f64>> {
        let height = self.frame.height().max(1) as f64;
        self.keep_columns()
            .iter()
            .map(|keep| {
                let kept = self.frame.column(keep)?.bool()?.sum().unwrap_or(0);
                Ok(kept as f64 / height)
            })
            .collect()
    }

    /// `group_by(keys)` of `frame` with the mean of each column in `means`.
    fn group(frame: &DataFrame, keys: &[&str], means: &[String]) -> Result<Grouped> {
        let by = frame.group_by_stable(keys)?;
        let positions = by.groups()?;
        let lists = positions
            .select_at_idx(keys.len())
            .ok_or_else(|| polars_err!(ComputeError: "group_by gave no groups column"))?
            .list()?;
        let members: Vec<Vec<usize>> = (0..lists.len())
            .map(|group| -> Result<Vec<usize>> {
                let mut rows: Vec<usize> = match lists.get_as_series(group) {
                    Some(rows) => rows
                        .cast(&DataType::UInt64)?
                        .u64()?
                        .into_no_null_iter()
                        .map(|r| r as usize)
                        .collect(),
                    None => vec![],
                };
                rows.sort_unstable();
                Ok(rows)
            })
            .collect::<Result<_>>()?;
        // Polars' eager per-group aggregation (the `lazy` feature's replacement is not built).
        #[allow(deprecated)]
        let mut grouped = if means.is_empty() {
            DataFrame::new(members.len(), by.keys())?
        } else {
            by.select(means.iter().map(String::as_str)).mean()?
        };
        let images: Vec<u64> = members.iter().map(|m| m.len() as u64).collect();
        grouped.with_column(Column::new(name::IMAGES.into(), images))?;
        grouped.with_column(Column::new(
            name::GROUP.into(),
            (0..members.len() as u64).collect::<Vec<_>>(),
        ))?;
        Ok(Grouped {
            frame: grouped,
            members,
        })
    }

    /// Per class (ascending label): images, accuracy, mean blocks, mean FLOPs, keep rates.
    pub fn per_class(&self) -> Result<Vec<ClassRow>> {
        let keeps = self.keep_columns();
        let mut means = vec![
            column::CORRECT.to_string(),
            column::BLOCKS.to_string(),
            column::FLOPS.to_string(),
        ];
        means.extend(keeps.iter().cloned());
        let grouped = Self::group(&self.frame, &[column::LABEL], &means)?;
        let frame = grouped
            .frame
            .sort([column::LABEL], SortMultipleOptions::default())?;
        let f64s = |column: &str| -> Result<Vec<f64>> {
            Ok(frame
                .column(&name::mean(column))?
                .f64()?
                .into_no_null_iter()
                .collect())
        };
        let labels: Vec<u32> = frame
            .column(column::LABEL)?
            .u32()?
            .into_no_null_iter()
            .collect();
        let images = u64s(&frame, name::IMAGES)?;
        let (accuracy, blocks, flops) = (
            f64s(column::CORRECT)?,
            f64s(column::BLOCKS)?,
            f64s(column::FLOPS)?,
        );
        let keep_rates: Vec<Vec<f64>> = keeps.iter().map(|k| f64s(k)).collect::<Result<_>>()?;
        Ok((0..frame.height())
            .map(|row| ClassRow {
                label: labels[row],
                images: images[row] as usize,
                accuracy: accuracy[row],
                mean_blocks: blocks[row],
                mean_flops: flops[row],
                keep_rates: keep_rates.iter().map(|k| k[row]).collect(),
            })
            .collect())
    }

    /// Exact policy groups, largest first (ties: fewer blocks first, then the policy).
    pub fn exact_groups(&self) -> Result<Vec<PolicyGroup>> {
        let means = [column::CORRECT.to_string(), column::BLOCKS.to_string()];
        let mut grouped = Self::group(&self.frame, &[column::POLICY], &means)?;
        let frame = grouped.frame.sort(
            [name::IMAGES, &name::mean(column::BLOCKS), column::POLICY],
            SortMultipleOptions::default().with_order_descending_multi([true, false, false]),
        )?;
        let policies = frame.column(column::POLICY)?.str()?;
        let accuracy = frame.column(&name::mean(column::CORRECT))?.f64()?;
        u64s(&frame, name::GROUP)?
            .into_iter()
            .enumerate()
            .map(|(row, group)| {
                Ok(PolicyGroup {
                    policy: policies
                        .get(row)
                        .unwrap_or_default()
                        .chars()
                        .map(|c| c == '1')
                        .collect(),
                    members: std::mem::take(&mut grouped.members[group as usize]),
                    accuracy: accuracy.get(row).unwrap_or(f64::NAN),
                })
            })
            .collect()
    }

    /// The coarse clustering of the records into at most `k` clusters, largest first (ties:
    /// the medoid policy): k-medoids over the distinct policies of `groups` (this frame's
    /// [`Self::exact_groups`]), each weighted by its images; then per cluster a `group_by`.
    pub fn clusters(&self, groups: &[PolicyGroup], k: usize) -> Result<Vec<Cluster>> {
        let mut distinct: Vec<&PolicyGroup> = groups.iter().collect();
        distinct.sort_by(|a, b| a.policy.cmp(&b.policy));
        let policies: Vec<&[bool]> = distinct.iter().map(|g| g.policy.as_slice()).collect();
        let weights: Vec<usize> = distinct.iter().map(|g| g.members.len()).collect();
        let (medoids, assignment) = kmedoids(&policies, &weights, k);
        if medoids.is_empty() {
            return Ok(vec![]);
        }
        let mut cluster_of_row = vec![0u32; self.frame.height()];
        for (group, &cluster) in distinct.iter().zip(&assignment) {
            for &row in &group.members {
                cluster_of_row[row] = cluster as u32;
            }
        }
        let mut frame = self.frame.clone();
        frame.with_column(Column::new(name::CLUSTER.into(), cluster_of_row))?;
        let means = [column::CORRECT.to_string(), column::BLOCKS.to_string()];
        let mut grouped = Self::group(&frame, &[name::CLUSTER], &means)?;
        let medoid_of = |cluster: u32| policies[medoids[cluster as usize]];
        let medoid_strings: Vec<String> = grouped
            .frame
            .column(name::CLUSTER)?
            .u32()?
            .into_no_null_iter()
            .map(|c| crate::model::blockdrop::policy_string(medoid_of(c)))
            .collect();
        grouped
            .frame
            .with_column(Column::new("medoid".into(), medoid_strings))?;
        let sorted = grouped.frame.sort(
            [name::IMAGES, "medoid"],
            SortMultipleOptions::default().with_order_descending_multi([true, false]),
        )?;
        let clusters = sorted.column(name::CLUSTER)?.u32()?;
        let accuracy = sorted.column(&name::mean(column::CORRECT))?.f64()?;
        let blocks = sorted.column(&name::mean(column::BLOCKS))?.f64()?;
        u64s(&sorted, name::GROUP)?
            .into_iter()
            .enumerate()
            .map(|(row, group)| {
                Ok(Cluster {
                    medoid: medoid_of(clusters.get(row).unwrap_or_default()).to_vec(),
                    members: std::mem::take(&mut grouped.members[group as usize]),
                    accuracy: accuracy.get(row).unwrap_or(f64::NAN),
                    mean_blocks: blocks.get(row).unwrap_or(f64::NAN),
                })
            })
            .collect()
    }

    /// Record positions from easiest to hardest: fewest blocks first; among equal block
    /// counts, the more confident prediction first; then the record's position.
    pub fn easy_to_hard(&self) -> Result<Vec<usize>> {
        let sorted = self
            .frame
            .select([name::ROW, column::BLOCKS, name::CONFIDENCE])?
            .sort(
                [column::BLOCKS, name::CONFIDENCE, name::ROW],
                SortMultipleOptions::default().with_order_descending_multi([false, true, false]),
            )?;
        Ok(u64s(&sorted, name::ROW)?
            .into_iter()
            .map(|r| r as usize)
            .collect())
    }
}

fn u64s(frame: &DataFrame, column: &str) -> Result<Vec<u64>> {
    Ok(frame.column(column)?.u64()?.into_no_null_iter().collect())
}
