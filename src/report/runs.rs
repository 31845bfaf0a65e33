//! Training runs for display (`blockdrop runs`): one summary row per run, and a folder with
//! their curves.

use std::path::Path;

use crate::error::Result;
use crate::report::{curves, table};
use crate::runs::RunFolder;

const COLUMNS: [&str; 9] = [
    "run",
    "stage",
    "config",
    "epochs",
    "test accuracy (last)",
    "best epoch",
    "its accuracy",
    "its blocks",
    "lr (last)",
];

fn cells(run: &RunFolder) -> Vec<String> {
    let last = run.epochs.last();
    let best = run.best_epoch();
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    vec![
        run.name.clone(),
        run.stage.clone(),
        run.config.clone(),
        run.epochs.len().to_string(),
        or_dash(last.map(|m| format!("{:.4}", m.test_accuracy))),
        or_dash(best.map(|m| (m.epoch + 1).to_string())),
        or_dash(best.map(|m| format!("{:.4}", m.test_accuracy))),
        or_dash(
            best.and_then(|m| m.block_usage_mean)
                .map(|b| format!("{b:.2}")),
        ),
        or_dash(last.map(|m| format!("{:.2e}", m.lr))),
    ]
}

/// One aligned row per run (epochs counted from 1; the best epoch by reward, or test accuracy
/// for a base run).
pub fn summary_text(runs: &[RunFolder]) -> String {
    let rows: Vec<Vec<String>> = runs.iter().map(cells).collect();
    table::aligned(&COLUMNS, &rows, |_| false)
}

/// The runs as a Markdown table.
pub fn summary_markdown(runs: &[RunFolder]) -> String {
    let rows: Vec<Vec<String>> = runs.iter().map(cells).collect();
    table::markdown(&COLUMNS, &rows)
}

/// `training.png` and `index.md` into `out`, under the output rule ([`crate::output`]).
pub fn write_report(runs: &[RunFolder], out: &Path) -> Result<()> {
    crate::output::Staging::build(out, |dir| {
        curves::training_curves(runs, &dir.join("training.png"))?;
        let index = format!(
            "# Training runs\n\n{}\n![training.png](training.png)\n\nTest accuracy, reward and mean blocks (greedy policy, test images) and learning rate per epoch, one line per run.\n",
            summary_markdown(runs)
        );
        crate::atomic::write_bytes_atomic(&dir.join("index.md"), index.as_bytes())
    })
}
