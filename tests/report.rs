//! The headless report: trade-off points checked by hand, record shards read back as one, and
//! an export whose files all exist, decode and agree with `eval`.

mod common;

use blockdrop::eval::baselines::Selection;
use blockdrop::eval::tradeoff::{tradeoff, ChosenSubsets, Method, TradeoffOptions};
use blockdrop::eval::{evaluate, EvalOptions};
use blockdrop::exec::forward_skip;
use blockdrop::model::BlockDropFlops;
use blockdrop::records::load as load_records;
use blockdrop::records::Summary;
use blockdrop::report::{write_report, ReportData};
use blockdrop::stats::argmax;
use blockdrop::study::{self, Options};
use candle_core::Device;
use common::*;

#[test]
fn tradeoff_points_agree_with_evaluation_and_hand_counts() {
    let (model, data) = (r32_model(), cifar_bin());
    let options = TradeoffOptions {
        thresholds: vec![0.5],
        random_seeds: 1,
        limit: None,
        batch: 16,
        ..TradeoffOptions::default()
    };
    let none = ChosenSubsets {
        subsets: Vec::new(),
        from: "none".into(),
    };
    let points = tradeoff(&model, &data, &none, &options, &Device::Cpu, |_, _| {})
        .unwrap()
        .points;
    let summary = Summary::of(
        &evaluate(
            &model,
            &data,
            &EvalOptions::default(),
            &Device::Cpu,
            |_, _| {},
        )
        .unwrap(),
    );
    let learned = points
        .iter()
        .find(|p| p.method == Method::BlockDrop)
        .unwrap();
    assert_eq!(
        (learned.accuracy, learned.mean_blocks),
        (summary.accuracy, summary.block_usage_mean)
    );
    assert!((learned.mean_flops - summary.flops_mean).abs() < 1e-6 * summary.flops_mean);

    // FirstK at the learned budget (5.5 → k = 6): the first six blocks for every image.
    let first_k = points.iter().find(|p| p.method == Method::FirstK).unwrap();
    assert_eq!(first_k.parameter, 6.0);
    let keep: Vec<bool> = (0..15).map(|b| b < 6).collect();
    let x = data
        .batch(
            &(0..data.len()).collect::<Vec<_>>(),
            &model.config,
            &Device::Cpu,
        )
        .unwrap();
    let logits = forward_skip(&model.resnet, &x, &keep)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let correct = logits
        .iter()
        .zip(data.labels())
        .filter(|(l, &y)| argmax(l) == y)
        .count();
    assert_eq!(first_k.accuracy, correct as f64 / data.len() as f64);
    let flops = BlockDropFlops::for_config(&model.config);
    assert_eq!(first_k.mean_flops, flops.base.with_policy(&keep) as f64);

    let full = points.iter().find(|p| p.method == Method::Full).unwrap();
    assert_eq!(
        (full.mean_blocks, full.mean_flops),
        (15.0, flops.base.full() as f64)
    );
    let random = points.iter().find(|p| p.method == Method::Random).unwrap();
    assert!(
        (random.mean_blocks - 6.0).abs() < 1.5,
        "{}",
        random.mean_blocks
    );
}

#[test]
fn record_shards_load_as_one() {
    let records = evaluate(
        &r32_model(),
        &cifar_bin(),
        &EvalOptions {
            keep_logits: true,
            ..EvalOptions::default()
        },
        &Device::Cpu,
        |_, _| {},
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        dir.path().join("records-0.parquet"),
        dir.path().join("records-1.parquet"),
    );
    blockdrop::records::write(&records[..20], &a).unwrap();
    blockdrop::records::write(&records[20..], &b).unwrap();
    assert_eq!(load_records(&[a, b]).unwrap(), records);
}

/// The fixture has no training split to choose best subsets on.
fn no_split() -> Selection<'static> {
    Selection::Unavailable("the fixture has no training split".into())
}

/// The report of the fixture model on the fixture images, with `options`.
fn collect_fixture<'a>(
    model: &'a blockdrop::model::BlockDrop,
    data: &'a blockdrop::data::Dataset,
    options: &Options,
) -> ReportData<'a> {
    let study = study::run(
        model,
        data,
        &no_split(),
        options,
        &Device::Cpu,
        |_, _, _| {},
    )
    .unwrap();
    ReportData {
        study,
        models: None,
    }
}

fn png_variance(path: &std::path::Path) -> (u32, u32, f64) {
    let img = image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_luma8();
    let pixels: Vec<f64> = img.pixels().map(|p| p[0] as f64).collect();
    let mean = pixels.iter().sum::<f64>() / pixels.len() as f64;
    let var = pixels.iter().map(|p| (p - mean).powi(2)).sum::<f64>() / pixels.len() as f64;
    (img.width(), img.height(), var)
}

#[test]
fn an_export_writes_every_linked_file_and_agrees_with_eval() {
    let (model, data) = (r32_model(), cifar_bin());
    let mut options = Options::default();
    options.tradeoff.thresholds = vec![0.3, 0.5, 0.7];
    options.profile = Some(blockdrop::profile::ProfileOptions {
        images: 2,
        batch: 1,
        repeat: 2,
        warmup: 1,
    });
    let report = collect_fixture(&model, &data, &options);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    write_report(&report, &options, &out).unwrap();
    // A second report replaces the first's files and keeps what the user put beside them.
    std::fs::write(out.join("notes.txt"), "the user's notes").unwrap();
    let figures = write_report(&report, &options, &out).unwrap();
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "the user's notes"
    );
    let marker = std::fs::read_to_string(out.join(blockdrop::output::MARKER)).unwrap();
    assert!(marker.lines().any(|l| l.starts_with("index.md\t")) && !marker.contains("notes.txt"));
    // No temporary folder is left beside it.
    let siblings: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(siblings, ["report"]);

    let index = std::fs::read_to_string(out.join("index.md")).unwrap();
    let links: Vec<&str> = index
        .split("](")
        .skip(1)
        .map(|s| &s[..s.find(')').unwrap()])
        .collect();
    assert!(links.len() >= figures.len() + 4, "{links:?}");
    for link in &links {
        assert!(
            out.join(link).is_file(),
            "index.md links {link}, which is missing"
        );
    }
    for name in [
        "tradeoff.png",
        "latency.png",
        "usage_histogram.png",
        "keep_rates.png",
        "policy_heatmap.png",
        "class_usage.png",
        "easy.png",
        "hard.png",
        "cluster_0.png",
    ] {
        assert!(figures.iter().any(|f| f.file == name), "{name} not drawn");
    }
    for f in &figures {
        let (w, h, var) = png_variance(&out.join(&f.file));
        assert!(
            w >= 600 && h >= 200 && var > 100.0,
            "{}: {w}x{h}, variance {var}",
            f.file
        );
    }
    assert_eq!(png_variance(&out.join("tradeoff.png")).0, 1500);

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    // summary.json holds its lines under "lines", as the fixture does under "summary".
    let lines = summary_lines(&serde_json::json!({ "summary": summary["lines"] }));
    assert_eq!(lines, summary_lines(&json("r32_c10_expected.json")));
    assert_eq!(
        load_records(&[out.join("records.parquet")]).unwrap(),
        report.study.records
    );
    let tradeoff_csv = std::fs::read_to_string(out.join("tradeoff.csv")).unwrap();
    assert!(
        tradeoff_csv.starts_with("method,parameter,policy,seed,accuracy,mean_blocks,mean_flops"),
        "{tradeoff_csv}"
    );
    // The model's own policies run fixed, with their policy strings; the oracle bound.
    let used = report
        .study
        .tradeoff
        .as_ref()
        .unwrap()
        .adaptivity
        .statics
        .len()
        - 1;
    assert_eq!(tradeoff_csv.matches("\nUsedPolicy,").count(), used.min(8));
    for row in ["\nFull,15.0,111111111111111,", "\nOracle,"] {
        assert!(
            tradeoff_csv.contains(row),
            "{row:?} missing:\n{tradeoff_csv}"
        );
    }
    let adaptivity = &summary["adaptivity"];
    assert_eq!(adaptivity["images"], 48);
    assert!(adaptivity["gain_blocks"].is_f64() && adaptivity["oracle"]["accuracy"].is_f64());
    assert_eq!(
        adaptivity["per_class"].as_array().map(Vec::len),
        Some(10),
        "{adaptivity}"
    );
    assert!(index.contains("## Adaptivity") && index.contains("adaptivity gain"));
    assert!(index
        .contains("| class | images | accuracy | mean blocks | mean MFLOPs | gain | off-mode |"));
}

#[test]
fn export_into_a_missing_parent_fails_without_writing() {
    let (model, data) = (r32_model(), cifar_bin());
    let mut options = Options {
        profile: None,
        ..Options::default()
    };
    options.tradeoff.thresholds = vec![0.5];
    let report = collect_fixture(&model, &data, &options);
    let err = write_report(
        &report,
        &options,
        std::path::Path::new("/no/such/parent/report"),
    )
    .unwrap_err();
    assert!(
        err.is_user_error() && err.to_string().contains("/no/such/parent"),
        "{err}"
    );
}

/// A cost table (here written by hand, as for another device) predicts the report's
/// latency: the records' path, every trade-off point, and the trade-off figure's x-axis.
#[test]
fn a_cost_table_predicts_the_latency_the_report_shows() {
    use blockdrop::profile::cost::{CostTable, StageCost};
    let (model, data) = (r32_model(), cifar_bin());
    let stage = |us: f64| StageCost { us, flops: 1.0 };
    let table = CostTable {
        written_by: None,
        version: blockdrop::profile::cost::VERSION,
        config: "R32_C10".into(),
        device: "phone".into(),
        kernels: "npu".into(),
        threads: 4,
        batch: 1,
        policy: stage(100.0),
        stem: stage(5.0),
        head: stage(1.0),
        // Block k costs k + 1 µs: a prediction that ignored which blocks run would show.
        blocks: (0..15).map(|k| stage(k as f64 + 1.0)).collect(),
    };
    let mut options = Options {
        profile: None,
        cost: Some(table.clone()),
        latency_axis: true,
        ..Options::default()
    };
    options.tradeoff.thresholds = vec![0.3, 0.5, 0.7];
    let report = collect_fixture(&model, &data, &options);
    let by_hand: f64 = report
        .study
        .records
        .iter()
        .map(|r| {
            106.0
                + r.keep
                    .iter()
                    .enumerate()
                    .filter(|(_, &k)| k)
                    .map(|(b, _)| b as f64 + 1.0)
                    .sum::<f64>()
        })
        .sum::<f64>()
        / report.study.records.len() as f64;
    let predicted = report.study.predicted.as_ref().unwrap();
    assert!(
        (predicted.path_us - by_hand).abs() < 1e-9,
        "{predicted:?} vs {by_hand}"
    );
    assert_eq!(predicted.full_us, 6.0 + 120.0);
    for point in &report.study.tradeoff.as_ref().unwrap().points {
        let us = point.predicted_us(&table);
        match point.method {
            Method::Oracle => assert_eq!(us, None),
            // Static policies run no policy network.
            Method::Full => assert_eq!(us, Some(126.0)),
            Method::BlockDrop => assert!(us.unwrap() >= 106.0),
            _ => assert!(us.unwrap() >= 6.0 && us.unwrap() < 126.0 + 1e-9),
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let figures = write_report(&report, &options, &out).unwrap();
    let tradeoff = figures.iter().find(|f| f.file == "tradeoff.png").unwrap();
    assert!(
        tradeoff
            .caption
            .contains("predicted latency per image (phone, npu, 4 threads, batch 1)"),
        "{}",
        tradeoff.caption
    );
    assert!(png_variance(&out.join("tradeoff.png")).2 > 100.0);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["predicted_latency_us"]["full"], 126.0);
    let index = std::fs::read_to_string(out.join("index.md")).unwrap();
    assert!(index.contains("Predicted latency: "), "{index}");
    // A table where nothing costs anything (a table read from a file needs one block above
    // 0; the library takes it as given): every point at 0 µs. The figure is still drawn (an
    // empty axis range once made the plotting loop spin forever).
    let mut free = table.clone();
    for stage in [&mut free.policy, &mut free.stem, &mut free.head]
        .into_iter()
        .chain(free.blocks.iter_mut())
    {
        stage.us = 0.0;
    }
    options.cost = Some(free);
    let zero = dir.path().join("zero");
    write_report(&report, &options, &zero).unwrap();
    assert!(zero.join("tradeoff.png").is_file());
}
