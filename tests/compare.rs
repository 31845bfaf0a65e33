//! `blockdrop compare` and `blockdrop runs` as a user runs them: rows that match `eval`, a
//! mix of model formats, a run folder as a model, one broken model among good ones, and the
//! report folder's files.

mod common;

use std::path::Path;

use common::*;

/// The table row of `name` split on runs of two or more spaces.
fn row<'a>(table: &'a str, name: &str) -> Vec<&'a str> {
    let line = table
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no row for {name}:\n{table}"));
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

/// Accuracy, Block Usage, FLOPs/img and Unique Policies as `eval` prints them.
fn eval_figures(model: &Path, data: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "eval",
        "--model",
        path_str(model),
        "--data",
        path_str(data),
        "--no-baselines",
    ];
    args.extend_from_slice(extra);
    let out = blockdrop(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .take(4)
        .map(|l| l.split_once(": ").unwrap().1.to_string())
        .collect()
}

#[test]
fn a_mix_of_formats_matches_eval_and_a_broken_model_keeps_its_row() {
    let dir = tempfile::tempdir().unwrap();
    let imported = dir.path().join("imported.safetensors");
    let out = blockdrop(&[
        "import",
        "--torch",
        path_str(&fixture("r32_c10.pth")),
        "--out",
        path_str(&imported),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let broken = dir.path().join("broken.safetensors");
    copy_truncated(&imported, &broken, 1000);
    let data = fixture("cifar-10-batches-bin");
    let zip = fixture("r32_c10.pth");
    let legacy = fixture("r32_c10_legacy.pth");
    let fmnist = asset("default.safetensors");
    let out = blockdrop(&[
        "compare",
        "--data",
        path_str(&data),
        "--no-profile",
        path_str(&zip),
        path_str(&legacy),
        path_str(&imported),
        path_str(&broken),
        path_str(&fmnist),
    ]);
    // A model failed: exit code 2, and every row is there.
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let expected = eval_figures(&zip, &data, &[]);
    for name in ["r32_c10.pth", "r32_c10_legacy.pth", "imported.safetensors"] {
        let cells = row(&table, name);
        assert_eq!(cells[1..5], expected[..], "{name}:\n{table}");
        assert_eq!(cells.last(), Some(&"R32_C10"));
    }
    assert!(
        row(&table, "broken.safetensors")[1].starts_with("failed: "),
        "{table}"
    );
    // The Fashion-MNIST model meets CIFAR images: its row says why it cannot run them.
    let fmnist_row = row(&table, "default.safetensors").join(" ");
    assert!(
        fmnist_row.contains("failed: ") && fmnist_row.contains("expects 1x28x28"),
        "{fmnist_row}"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("2 of 5 models could not be compared"),
        "{stderr}"
    );
}

/// A run folder as `train` leaves it: the shipped γ = −5 run's config and metrics, with its
/// model as best.safetensors.
fn run_folder(dir: &Path) -> std::path::PathBuf {
    let run = dir.join("g5-run");
    std::fs::create_dir(&run).unwrap();
    let shipped = asset("training/fmnist-finetune-g5");
    for name in ["config.json", "metrics.csv"] {
        std::fs::copy(shipped.join(name), run.join(name)).unwrap();
    }
    std::fs::copy(
        asset("fmnist-finetuned-g5.safetensors"),
        run.join("best.safetensors"),
    )
    .unwrap();
    run
}

#[test]
fn a_run_folder_compares_as_its_best_model_and_the_report_has_every_figure() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_folder(dir.path());
    let data = asset("fashion-mnist-sample");
    let out_dir = dir.path().join("comparison");
    // A cost table written by hand, as for a device this machine is not: 10 µs per block,
    // 106 µs for the policy network, stem and head.
    let blocks = vec![serde_json::json!({"us": 10.0, "flops": 1.0}); 15];
    let table = serde_json::json!({
        "version": 1, "config": "R32_FMNIST", "device": "phone", "kernels": "npu",
        "threads": 4, "batch": 1, "blocks": blocks,
        "policy": {"us": 100.0, "flops": 1.0}, "stem": {"us": 5.0, "flops": 1.0},
        "head": {"us": 1.0, "flops": 1.0},
    });
    let cost = dir.path().join("phone.json");
    std::fs::write(&cost, table.to_string()).unwrap();
    let out = blockdrop(&[
        "compare",
        "--data",
        path_str(&data),
        "--limit",
        "120",
        "--tradeoff-images",
        "60",
        "--selection-images",
        "12",
        "--cost",
        path_str(&cost),
        "--out",
        path_str(&out_dir),
        path_str(&run),
        path_str(&asset("default.safetensors")),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert_eq!(
        row(&table, "g5-run")[1..5],
        eval_figures(&run.join("best.safetensors"), &data, &["--limit", "120"])[..]
    );
    assert_eq!(
        row(&table, "default.safetensors")[1..5],
        eval_figures(&asset("default.safetensors"), &data, &["--limit", "120"])[..]
    );
    // Blocks per segment add up to the block usage; the predicted latency follows the table.
    let cells = row(&table, "default.safetensors");
    let usage: f64 = cells[2].split(' ').next().unwrap().parse().unwrap();
    let per_segment: f64 = cells[5]
        .split(" / ")
        .map(|b| b.parse::<f64>().unwrap())
        .sum();
    assert!((per_segment - usage).abs() < 0.02, "{table}");
    let predicted: f64 = cells[11].parse().unwrap();
    assert!((predicted - (106.0 + 10.0 * usage)).abs() < 1.0, "{table}");
    let index = std::fs::read_to_string(out_dir.join("index.md")).unwrap();
    for figure in ["pareto.png", "keep_rates.png", "training.png"] {
        assert!(
            index.contains(&format!("]({figure})")),
            "{figure} not linked"
        );
        let img = image::open(out_dir.join(figure)).unwrap().to_luma8();
        let pixels: Vec<f64> = img.pixels().map(|p| p[0] as f64).collect();
        let mean = pixels.iter().sum::<f64>() / pixels.len() as f64;
        let var = pixels.iter().map(|p| (p - mean).powi(2)).sum::<f64>() / pixels.len() as f64;
        assert!(var > 100.0, "{figure} is blank");
    }
    assert!(index.contains("## Policy agreement"));
    assert!(
        index.contains("| g5-run | default.safetensors |"),
        "{index}"
    );
    let csv = std::fs::read_to_string(out_dir.join("comparison.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    // The report folder follows the output rule: a second run replaces its own files.
    let again = blockdrop(&[
        "compare",
        "--data",
        path_str(&data),
        "--limit",
        "20",
        "--no-profile",
        "--tradeoff-images",
        "20",
        "--selection-images",
        "4",
        "--out",
        path_str(&out_dir),
        path_str(&asset("default.safetensors")),
    ]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    // An output folder inside a run folder is refused before any work.
    let inside = blockdrop(&[
        "compare",
        "--data",
        path_str(&data),
        "--out",
        path_str(&run.join("report")),
        path_str(&run),
    ]);
    assert_eq!(inside.status.code(), Some(2));
    assert!(!run.join("report").exists());
}

#[test]
fn runs_prints_a_row_per_run_draws_curves_and_names_a_bad_metrics_file() {
    let training = asset("training");
    let base = training.join("fmnist-base");
    let g5 = training.join("fmnist-finetune-g5");
    // The latency-aware run writes the newer metrics.csv (with cost_share_mean).
    let latency = training.join("fmnist-latency-g12");
    let out = blockdrop(&["runs", path_str(&base), path_str(&g5), path_str(&latency)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let g5_row = row(&table, "fmnist-finetune-g5");
    assert_eq!(g5_row[1..3], ["finetune", "R32_FMNIST"]);
    assert_eq!(row(&table, "fmnist-base")[1], "base");
    assert_eq!(row(&table, "fmnist-latency-g12")[1], "finetune");
    // Its cost table is the one its reward weighed blocks by.
    let cost = blockdrop::profile::cost::CostTable::read(&latency.join("cost.json")).unwrap();
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(latency.join("config.json")).unwrap())
            .unwrap();
    let weights: Vec<f64> = config["options"]["cost"]["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_f64().unwrap())
        .collect();
    assert_eq!(
        weights,
        cost.blocks.iter().map(|b| b.us).collect::<Vec<_>>()
    );

    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("curves");
    let out = blockdrop(&[
        "runs",
        "--out",
        path_str(&out_dir),
        path_str(&base),
        path_str(&g5),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out_dir.join("training.png").is_file());

    // A run still training: its last row, half written, is left out.
    let live = dir.path().join("live");
    std::fs::create_dir(&live).unwrap();
    std::fs::copy(g5.join("config.json"), live.join("config.json")).unwrap();
    let metrics = std::fs::read_to_string(g5.join("metrics.csv")).unwrap();
    let epochs = metrics.lines().count() - 1;
    std::fs::write(live.join("metrics.csv"), format!("{metrics}9,1e-4,0.1")).unwrap();
    let out = blockdrop(&["runs", path_str(&live)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(row(&text(&out.stdout), "live")[3], epochs.to_string());

    // A broken row is an error naming the file and line, exit code 2.
    std::fs::write(
        live.join("metrics.csv"),
        format!("{metrics}9,1e-4,zero,0.1,0.1,,,,,1,1\n"),
    )
    .unwrap();
    let out = blockdrop(&["runs", path_str(&live)]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("metrics.csv") && stderr.contains(&format!("line {}", epochs + 2)),
        "{stderr}"
    );
}
