//! The headless report: figures (plotters PNGs, font embedded), `index.md`, `summary.json`,
//! `records.parquet`, `clusters.parquet` and `tradeoff.csv`, written into a temporary folder
//! and renamed into place so an interrupted export never leaves half a report.

pub mod charts;
pub mod curves;
mod figures;
mod frames;
pub mod grids;
mod index;
pub mod models;
pub mod runs;
pub mod style;
mod summary;
pub mod table;

use std::path::Path;

use crate::analysis::Analysis;
use crate::error::Result;
use crate::records::Summary;
use crate::study::{Options, Study};
use figures::{chart_figures, grid_figures, Figures};
use index::{index_markdown, models_markdown};
use summary::summary_json;

/// What a report shows: one model's study, and the shipped models side by side (`--export`
/// of the bundled default).
pub struct ReportData<'a> {
    pub study: Study<'a>,
    pub models: Option<crate::compare::Comparison>,
}

/// A figure written into the report, with the caption `index.md` gives it.
#[derive(Debug, Clone)]
pub struct Figure {
    pub file: String,
    pub caption: String,
}

/// Writes every file of the report into `dir` (which must exist and be empty).
pub fn write_files(data: &ReportData, options: &Options, dir: &Path) -> Result<Vec<Figure>> {
    let summary = Summary::of(&data.study.records);
    let analysis = Analysis::of(&data.study.records, options.clusters)?;
    let mut figures = Figures {
        dir,
        list: Vec::new(),
    };
    chart_figures(data, options, &summary, &analysis, &mut figures)?;
    grid_figures(data, options, &analysis, &mut figures)?;
    let model_figures = match &data.models {
        Some(models) => models::write_figures(models, dir, "models_")?,
        None => Vec::new(),
    };
    frames::write_tables(data, &analysis.clusters, dir)?;
    let json = summary_json(data, &summary);
    crate::atomic::write_bytes_atomic(
        &dir.join("summary.json"),
        serde_json::to_string_pretty(&json)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    let mut index = index_markdown(data, &summary, &analysis, &figures.list);
    if let Some(models) = &data.models {
        index.push_str(&models_markdown(models, &model_figures));
    }
    crate::atomic::write_bytes_atomic(&dir.join("index.md"), index.as_bytes())?;
    Ok(figures.list.into_iter().chain(model_figures).collect())
}

/// Writes the report into `out` under the output rule ([`crate::output`]): built whole in a
/// hidden sibling folder, then moved in; a folder blockdrop did not write is refused, and in
/// one it did, only its own files are replaced.
pub fn write_report(data: &ReportData, options: &Options, out: &Path) -> Result<Vec<Figure>> {
    crate::output::Staging::build(out, |dir| write_files(data, options, dir))
}
