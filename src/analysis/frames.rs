//! Analysis results as polars frames: the cluster table written beside a report.

use polars::prelude::*;

use crate::analysis::Cluster;
use crate::error::Result;
use crate::model::blockdrop::policy_string;

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
