//! Sharded evaluation: parts evaluated apart (`eval --shard K/N --records PART.parquet`),
//! merged in any order, give exactly one unsharded run; an interrupted part resumes without
//! losing or repeating an image; parts that do not belong together are refused.

mod common;

use std::path::{Path, PathBuf};

use blockdrop::records::provenance::{read_part, write_part};
use blockdrop::records::Record;
use common::*;

fn ok(args: &[&str]) -> String {
    let out = blockdrop(args);
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

fn refused(args: &[&str], needle: &str) {
    let out = blockdrop(args);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{args:?}: {}",
        text(&out.stdout)
    );
    let err = text(&out.stderr);
    assert!(err.contains(needle), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// The four summary lines of `stdout`.
fn four(stdout: &str) -> String {
    stdout.lines().take(4).collect::<Vec<_>>().join("\n")
}

/// What must agree per image between a merged and an unsharded run.
fn per_image(records: &[Record]) -> Vec<(u32, u32, Vec<bool>, u64)> {
    records
        .iter()
        .map(|r| (r.index, r.pred, r.keep.clone(), r.flops.to_bits()))
        .collect()
}

/// Evaluates `parts` parts of `model` on `data` apart, merges them in reverse order, and
/// checks the merge against one unsharded run: the four lines byte for byte, and every
/// image's prediction, policy and FLOPs.
fn parts_merge_to_one_run(dir: &Path, model: &Path, data: &Path, parts: usize) {
    let (m, d) = (path_str(model), path_str(data));
    let whole = dir.join("whole.parquet");
    let unsharded = ok(&[
        "eval",
        "--model",
        m,
        "--data",
        d,
        "--no-baselines",
        "--records",
        path_str(&whole),
    ]);
    let mut files: Vec<PathBuf> = Vec::new();
    for k in 1..=parts {
        let file = dir.join(format!("part-{k}.parquet"));
        let shard = format!("{k}/{parts}");
        ok(&[
            "eval",
            "--model",
            m,
            "--data",
            d,
            "--shard",
            &shard,
            "--records",
            path_str(&file),
        ]);
        files.push(file);
    }
    let merged = dir.join("merged.parquet");
    let mut args = vec!["merge", "--records", path_str(&merged)];
    args.extend(files.iter().rev().map(|f| path_str(f)));
    let out = ok(&args);
    assert_eq!(four(&out), four(&unsharded));
    let (whole, _, _) = read_part(&whole).unwrap();
    let (merged, provenance, complete) = read_part(&merged).unwrap();
    assert!(complete && provenance.shard.is_none());
    assert_eq!(per_image(&merged), per_image(&whole));
}

#[test]
fn parts_merged_in_any_order_are_one_unsharded_run() {
    let dir = tempfile::tempdir().unwrap();
    // IDX data with the bundled default, and CIFAR binary data with a reference checkpoint.
    let idx = dir.path().join("idx");
    std::fs::create_dir(&idx).unwrap();
    parts_merge_to_one_run(
        &idx,
        &asset("default.safetensors"),
        &asset("fashion-mnist-sample"),
        3,
    );
    let cifar = dir.path().join("cifar");
    std::fs::create_dir(&cifar).unwrap();
    parts_merge_to_one_run(
        &cifar,
        &fixture("r32_c10.pth"),
        &fixture("cifar-10-batches-bin"),
        3,
    );
    // A folder of class folders (ImageNet's layout) of noise images, CIFAR-sized.
    let folder = dir.path().join("folder");
    let mut seed = 7u64;
    for class in ["bird", "cat", "ship"] {
        std::fs::create_dir_all(folder.join("val").join(class)).unwrap();
        for i in 0..20 {
            let image = image::RgbImage::from_fn(32, 32, |_, _| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let b = (seed >> 33) as u8;
                image::Rgb([b, b.wrapping_mul(3), b.wrapping_add(90)])
            });
            image
                .save(folder.join("val").join(class).join(format!("{i}.png")))
                .unwrap();
        }
    }
    let out = dir.path().join("folder-parts");
    std::fs::create_dir(&out).unwrap();
    parts_merge_to_one_run(&out, &fixture("r32_c10.pth"), &folder, 3);
}

#[test]
fn an_interrupted_part_resumes_without_losing_or_repeating_an_image() {
    let dir = tempfile::tempdir().unwrap();
    let data = asset("fashion-mnist-sample");
    let part = dir.path().join("part.parquet");
    let eval = |extra: &[&str]| {
        let mut args = vec![
            "eval",
            "--data",
            path_str(&data),
            "--limit",
            "600",
            "--shard",
            "2/3",
            "--records",
            path_str(&part),
        ];
        args.extend(extra);
        blockdrop(&args)
    };
    assert!(eval(&[]).status.success());
    let (finished, provenance, complete) = read_part(&part).unwrap();
    assert!(complete);
    assert_eq!(provenance.range(), 200..400);
    assert_eq!(finished.first().map(|r| r.index), Some(200));
    // What a kill leaves: the file as last saved, marked unfinished, with the first images.
    write_part(&finished[..77], &part, &provenance, false).unwrap();
    let out = eval(&["--resume"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("77 of 200 images done"));
    let (resumed, _, complete) = read_part(&part).unwrap();
    assert!(complete);
    assert_eq!(per_image(&resumed), per_image(&finished));
    // A complete part resumes to itself.
    let again = eval(&["--resume"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(text(&again.stdout).contains("200 of 200 images done (complete)"));
    // A part is never merged unfinished.
    write_part(&finished[..77], &part, &provenance, false).unwrap();
    refused(
        &["merge", path_str(&part)],
        "unfinished part (77 of 200 images)",
    );
    // Nor resumed with other flags.
    let threshold = blockdrop(&[
        "eval",
        "--data",
        path_str(&data),
        "--limit",
        "600",
        "--shard",
        "2/3",
        "--records",
        path_str(&part),
        "--resume",
        "--threshold",
        "0.6",
    ]);
    assert_eq!(threshold.status.code(), Some(2));
    assert!(text(&threshold.stderr).contains("threshold: 0.6 vs 0.5"));
    let shard = blockdrop(&[
        "eval",
        "--data",
        path_str(&data),
        "--limit",
        "600",
        "--shard",
        "3/3",
        "--records",
        path_str(&part),
        "--resume",
    ]);
    assert_eq!(shard.status.code(), Some(2));
    assert!(text(&shard.stderr).contains("part 3/3 vs part 2/3"));
}

#[test]
fn parts_that_do_not_make_one_evaluation_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = asset("fashion-mnist-sample");
    let part = |k: usize, n: usize, extra: &[&str]| -> PathBuf {
        let file = dir
            .path()
            .join(format!("p{k}of{n}{}.parquet", extra.join("")));
        let shard = format!("{k}/{n}");
        let mut args = vec![
            "eval",
            "--data",
            path_str(&data),
            "--limit",
            "90",
            "--shard",
            &shard,
            "--records",
            path_str(&file),
        ];
        args.extend(extra);
        ok(&args);
        file
    };
    let (p1, p2, p3) = (part(1, 3, &[]), part(2, 3, &[]), part(3, 3, &[]));
    let s = path_str;
    refused(&["merge", s(&p1), s(&p3)], "no part holds image 30");
    refused(&["merge", s(&p1), s(&p2)], "hold images 0..60 of 90");
    refused(&["merge", s(&p1), s(&p2), s(&p1), s(&p3)], "is given twice");
    let half = part(1, 2, &[]);
    refused(
        &["merge", s(&p1), s(&p2), s(&p3), s(&half)],
        "the parts overlap",
    );
    let other = part(2, 3, &["--threshold", "0.7"]);
    refused(
        &["merge", s(&p1), s(&other), s(&p3)],
        "threshold: 0.5 vs 0.7",
    );
    let logits = part(2, 3, &["--logits"]);
    refused(
        &["merge", s(&p1), s(&logits), s(&p3)],
        "--logits: false vs true",
    );
    refused(
        &[
            "merge",
            "--records",
            s(&dir.path().join("m.csv")),
            s(&p1),
            s(&p2),
            s(&p3),
        ],
        "must end in .parquet",
    );
    refused(
        &["merge", "--records", s(&p1), s(&p1), s(&p2), s(&p3)],
        "is one of the parts",
    );
    // A part is Parquet (CSV cannot carry what merge checks): refused before any work.
    let csv = dir.path().join("p.csv");
    refused(
        &[
            "eval",
            "--data",
            s(&data),
            "--limit",
            "30",
            "--shard",
            "1/3",
            "--records",
            s(&csv),
        ],
        "must end in .parquet",
    );
    assert!(!csv.exists());
    refused(
        &["eval", "--data", s(&data), "--shard", "1/3"],
        "need --records PART.parquet",
    );
    refused(&["eval", "--data", s(&data), "--shard", "4/3"], "1 ≤ K ≤ N");

    // Rows that disagree with the configuration their provenance names, written back with
    // that provenance: refused naming the file and the row, by merge and export --records.
    // (A policy wider than the configuration's is forged on every row: one row wider than
    // the others is refused by the reader already.)
    let (records, provenance, complete) = read_part(&p2).unwrap();
    let wider: fn(&mut Record) = |r| {
        r.keep.push(true);
        r.blocks += 1;
        r.probs.push(0.5);
    };
    type Forge = (fn(&mut Record), std::ops::Range<usize>, &'static str);
    let forged: [Forge; 4] = [
        (
            |r| r.label = 10,
            7..8,
            "row 7 (image 37) has label 10, beyond the 10 classes",
        ),
        (
            |r| r.flops = f64::INFINITY,
            7..8,
            "row 7 (image 37) has FLOPs inf",
        ),
        (
            |r| r.correct = !r.correct,
            7..8,
            "row 7 (image 37) says `correct` where",
        ),
        (
            wider,
            0..30,
            "row 0 (image 30) has a policy of 16 decisions where the configuration has 15",
        ),
    ];
    for (n, (forge, rows, needle)) in forged.into_iter().enumerate() {
        let mut bad = records.clone();
        bad[rows].iter_mut().for_each(forge);
        let file = dir.path().join(format!("forged{n}.parquet"));
        write_part(&bad, &file, &provenance, complete).unwrap();
        refused(&["merge", s(&p1), s(&file), s(&p3)], needle);
        let report = dir.path().join("report");
        refused(
            &[
                "export",
                "--data",
                s(&data),
                "--records",
                s(&p1),
                s(&file),
                s(&p3),
                "--out",
                s(&report),
            ],
            needle,
        );
    }
}

/// `export --records PARTS…`: the report of a sharded evaluation without evaluating again; its
/// four lines and records are the unsharded run's. Records of another model are refused.
#[test]
fn a_report_is_built_from_the_parts_without_evaluating_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = asset("fashion-mnist-sample");
    let s = path_str;
    let whole = dir.path().join("whole.parquet");
    let unsharded = ok(&[
        "eval",
        "--data",
        s(&data),
        "--no-baselines",
        "--records",
        s(&whole),
    ]);
    let parts: Vec<PathBuf> = (1..=2)
        .map(|k| {
            let file = dir.path().join(format!("part-{k}.parquet"));
            let shard = format!("{k}/2");
            ok(&[
                "eval",
                "--data",
                s(&data),
                "--shard",
                &shard,
                "--records",
                s(&file),
            ]);
            file
        })
        .collect();
    let out = dir.path().join("report");
    let report = ok(&[
        "export",
        "--data",
        s(&data),
        "--no-profile",
        "--tradeoff-images",
        "60",
        "--selection-images",
        "8",
        "--out",
        s(&out),
        "--records",
        s(&parts[1]),
        s(&parts[0]),
    ]);
    assert_eq!(four(&report), four(&unsharded));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let lines: Vec<&str> = summary["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(lines.join("\n"), four(&unsharded));
    let reported = blockdrop::records::load(&[out.join("records.parquet")]).unwrap();
    let (whole, _, _) = read_part(&whole).unwrap();
    assert_eq!(per_image(&reported), per_image(&whole));

    // Without the sweep, the report needs no more of the model than its records.
    let bare = dir.path().join("bare");
    ok(&[
        "export",
        "--data",
        s(&data),
        "--no-profile",
        "--no-tradeoff",
        "--out",
        s(&bare),
        "--records",
        s(&parts[0]),
        s(&parts[1]),
    ]);
    assert!(!bare.join("tradeoff.csv").exists() && !bare.join("tradeoff.png").exists());
    let index = std::fs::read_to_string(bare.join("index.md")).unwrap();
    assert!(index.contains("## Per class") && !index.contains("## Adaptivity"));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bare.join("summary.json")).unwrap()).unwrap();
    assert!(summary["adaptivity"].is_null());

    refused(
        &[
            "export",
            "--data",
            s(&data),
            "--limit",
            "10",
            "--out",
            s(&dir.path().join("l")),
            "--records",
            s(&parts[0]),
            s(&parts[1]),
        ],
        "--limit does not apply to --records",
    );
    let other = dir.path().join("other");
    refused(
        &[
            "export",
            "--model",
            s(&asset("fmnist-finetuned-g5.safetensors")),
            "--data",
            s(&data),
            "--no-profile",
            "--out",
            s(&other),
            "--records",
            s(&parts[0]),
            s(&parts[1]),
        ],
        "holds records of the model",
    );
    assert!(!other.exists());
}
