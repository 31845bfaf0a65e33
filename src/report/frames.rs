//! The report's tables: records, clusters and the trade-off.

use std::path::Path;

use polars::prelude::*;

use super::ReportData;
use crate::analysis::{frames, Cluster};
use crate::error::Result;
use crate::eval::tradeoff::TradeoffPoint;
use crate::model::blockdrop::policy_string;

fn tradeoff_frame(points: &[TradeoffPoint]) -> Result<DataFrame> {
    Ok(DataFrame::new_infer_height(vec![
        Column::new(
            "method".into(),
            points.iter().map(|p| p.method.name()).collect::<Vec<_>>(),
        ),
        Column::new(
            "parameter".into(),
            points.iter().map(|p| p.parameter).collect::<Vec<_>>(),
        ),
        Column::new(
            "policy".into(),
            points
                .iter()
                .map(|p| p.policy.as_deref().map(policy_string))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "seed".into(),
            points
                .iter()
                .map(|p| p.seed.map(|s| s as u32))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "accuracy".into(),
            points.iter().map(|p| p.accuracy).collect::<Vec<_>>(),
        ),
        Column::new(
            "mean_blocks".into(),
            points.iter().map(|p| p.mean_blocks).collect::<Vec<_>>(),
        ),
        Column::new(
            "mean_flops".into(),
            points.iter().map(|p| p.mean_flops).collect::<Vec<_>>(),
        ),
    ])?)
}

/// The report's tables: records, clusters and the trade-off.
pub(super) fn write_tables(data: &ReportData, clusters: &[Cluster], dir: &Path) -> Result<()> {
    let records = &data.study.records;
    crate::records::write(records, &dir.join("records.parquet"))?;
    crate::output::frame::write_frame(
        &mut frames::clusters_frame(clusters)?,
        &dir.join("clusters.parquet"),
    )?;
    if let Some(tradeoff) = &data.study.tradeoff {
        crate::output::frame::write_frame(
            &mut tradeoff_frame(&tradeoff.points)?,
            &dir.join("tradeoff.csv"),
        )?;
    }
    Ok(())
}
