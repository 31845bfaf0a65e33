//! The paper's own setting: checkpoints laid out as the BlockDrop authors released theirs
//! (a base network alone, with its training flags pickled as an `argparse.Namespace`; a
//! curriculum file holding only the agent), written by real PyTorch
//! (tests/fixtures/make_released_fixtures.py), and class folders labelled by class name.

mod common;

use std::path::{Path, PathBuf};

use blockdrop::checkpoint::{self, torch};
use blockdrop::config::{ClassSet, Config};
use blockdrop::data::{Dataset, Split};
use blockdrop::eval::{evaluate, EvalOptions};
use candle_core::Device;
use common::*;

fn released_base() -> PathBuf {
    fixture("r32_c10_released_base.t7")
}

/// Exit code 2 and one line on stderr that mentions `needle`.
fn assert_exit_2(output: &std::process::Output, needle: &str) {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(needle),
        "{stderr} does not mention {needle}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn the_authors_layout_is_a_base_network_with_pytorchs_logits() {
    let expected = json("r32_c10_expected.json");
    let loaded = checkpoint::load_model(&released_base(), None, None, &Device::Cpu).expect("loads");
    assert!(!loaded.model.has_policy());
    assert_eq!(loaded.model.config.name, "R32_C10");
    // What the file recorded about its training stays with the model.
    assert_eq!(loaded.metadata["arch"], "resnet32");
    assert_eq!(loaded.metadata["epoch"], "132");
    assert_eq!(loaded.metadata["best_err1"], "6.28");
    let args = &loaded.metadata["args"];
    assert!(
        args.contains("depth=32") && args.contains("dataset='cifar10'"),
        "{args}"
    );
    let options = EvalOptions {
        limit: Some(4),
        keep_logits: true,
        ..EvalOptions::default()
    };
    let records = evaluate(
        &loaded.model,
        &cifar_bin(),
        &options,
        &Device::Cpu,
        |_, _| {},
    )
    .unwrap();
    let full = expected["full_logits"].as_array().unwrap();
    assert_eq!(records.len(), full.len());
    for (record, reference) in records.iter().zip(full) {
        assert!(
            record.keep.iter().all(|&k| k),
            "a base network keeps every block"
        );
        let logits = record.logits.as_ref().unwrap();
        assert_close(logits, &floats(reference), "full network logits");
    }
}

#[test]
fn eval_runs_a_base_network_alone_and_says_so() {
    let out = blockdrop(&[
        "eval",
        "--model",
        path_str(&released_base()),
        "--data",
        path_str(&fixture("cifar-10-batches-py")),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("base network alone"), "{stdout}");
    // The four lines come first, as the reference prints them; the note after them.
    let lines: Vec<&str> = stdout.lines().take(4).collect();
    assert!(lines[0].starts_with("Accuracy: "), "{stdout}");
    assert_eq!(lines[1], "Block Usage: 15.000 ± 0.000");
    assert_eq!(lines[3], "Unique Policies: 1");
    // No adaptivity line: there is no policy to compare with static subsets.
    assert!(!stdout.contains("adaptivity"), "{stdout}");
}

#[test]
fn a_curriculum_zip_beside_the_released_base_gives_pytorchs_numbers() {
    let expected = json("r32_c10_expected.json");
    let out = blockdrop(&[
        "eval",
        "--model",
        path_str(&fixture("r32_c10_curriculum.pth")),
        "--base",
        path_str(&released_base()),
        "--data",
        path_str(&fixture("cifar-10-batches-py")),
        "--no-baselines",
    ]);
    assert_prints_summary(&out, &expected);
}

#[test]
fn import_prints_and_keeps_the_recorded_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let out_model = tmp.path().join("base.safetensors");
    let out = blockdrop(&[
        "import",
        "--torch",
        path_str(&released_base()),
        "--out",
        path_str(&out_model),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("no policy network"), "{stdout}");
    assert!(stdout.contains("epochs=164"), "{stdout}");
    let (_, meta) = checkpoint::native::read(
        &out_model,
        &std::fs::read(&out_model).unwrap(),
        &Device::Cpu,
    )
    .unwrap();
    assert!(meta["args"].contains("lr=0.1"), "{meta:?}");
    assert_eq!(meta["config"], "R32_C10");
    // The converted file is a base network too.
    let loaded = checkpoint::load_model(&out_model, None, None, &Device::Cpu).unwrap();
    assert!(!loaded.model.has_policy());
}

#[test]
fn a_namespace_is_read_as_plain_fields_in_zip_files_too() {
    let path = fixture("namespace_zip.pth");
    let root = torch::read(&path, &std::fs::read(&path).unwrap()).unwrap();
    let Some(torch::Value::Namespace(fields)) = root.get("args") else {
        panic!("args is not a Namespace: {root:?}");
    };
    let shown: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
    assert_eq!(
        shown,
        [
            "depth=32",
            "lr=0.1",
            "name='pk'",
            "evaluate=True",
            "resume=None",
            "schedule=[81, 122]",
            "size=(32, 32)",
            "extra={'a': 1}",
        ]
    );
}

#[test]
fn a_namespace_that_is_not_plain_data_is_refused() {
    for (file, needle) in [
        ("namespace_hostile_call.pth", "not plain data"),
        ("namespace_hostile_args.pth", "made with arguments"),
    ] {
        let path = fixture(file);
        let err = torch::read(&path, &std::fs::read(&path).unwrap()).unwrap_err();
        assert!(err.to_string().contains(needle), "{file}: {err}");
        let out = blockdrop(&[
            "eval",
            "--model",
            path_str(&path),
            "--data",
            path_str(&fixture("cifar-10-batches-py")),
        ]);
        assert_exit_2(&out, needle);
    }
}

#[test]
fn a_base_network_alone_is_refused_where_a_policy_is_needed() {
    let tmp = tempfile::tempdir().unwrap();
    let out = blockdrop(&[
        "train",
        "finetune",
        "--from",
        path_str(&released_base()),
        "--data",
        path_str(&fixture("cifar-10-batches-py")),
        "--out",
        path_str(&tmp.path().join("ft")),
    ]);
    assert_exit_2(&out, "no policy network");
    assert!(!tmp.path().join("ft").exists(), "no run folder is left");
    // And --base beside a base network has nothing to go with.
    let out = blockdrop(&[
        "eval",
        "--model",
        path_str(&released_base()),
        "--base",
        path_str(&released_base()),
        "--data",
        path_str(&fixture("cifar-10-batches-py")),
    ]);
    assert_exit_2(&out, "no policy network");
}

// ------------------------------------------------------------------ class folders

/// Writes the 48 CIFAR fixture images as PNGs into `root/test/<name>/`, the folder named by
/// `name_of(label)`; images whose label `keep` refuses are left out.
fn class_folders(root: &Path, keep: impl Fn(u32) -> bool, name_of: impl Fn(u32) -> String) {
    let data = cifar_bin();
    for i in 0..data.len() {
        let label = data.labels()[i];
        if !keep(label) {
            continue;
        }
        let image = data.image(i).unwrap();
        let (h, w) = (image.height, image.width);
        let mut rgb = image::RgbImage::new(w as u32, h as u32);
        for y in 0..h {
            for x in 0..w {
                let at = |c: usize| image.pixels[(c * h + y) * w + x];
                rgb.put_pixel(x as u32, y as u32, image::Rgb([at(0), at(1), at(2)]));
            }
        }
        let dir = root.join("test").join(name_of(label));
        std::fs::create_dir_all(&dir).unwrap();
        rgb.save(dir.join(format!("{i:04}.png"))).unwrap();
    }
}

fn cifar_name(label: u32) -> String {
    ClassSet::Cifar10.names()[label as usize].to_string()
}

#[test]
fn folders_of_some_classes_keep_the_configurations_labels() {
    let expected = json("r32_c10_expected.json");
    let tmp = tempfile::tempdir().unwrap();
    // Airplane and automobile have no folder: every other label must stay where it was.
    let present = |label: u32| label >= 2;
    class_folders(tmp.path(), present, cifar_name);
    let config = Config::by_name("R32_C10").unwrap();
    let data = Dataset::open_for(tmp.path(), Split::Test, &config).unwrap();
    let want: Vec<u32> = cifar_bin()
        .labels()
        .iter()
        .copied()
        .filter(|&l| present(l))
        .collect();
    let mut got = data.labels().to_vec();
    let mut sorted_want = want.clone();
    got.sort_unstable();
    sorted_want.sort_unstable();
    assert_eq!(got, sorted_want);
    // End to end: the accuracy PyTorch gives on the same images.
    let records = expected["records"].as_array().unwrap();
    let kept: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| present(r["label"].as_u64().unwrap() as u32))
        .collect();
    let correct = kept.iter().filter(|r| r["pred"] == r["label"]).count();
    let out = eval_r32_c10(tmp.path(), &["--no-baselines"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let accuracy = format!("Accuracy: {:.3}", correct as f64 / kept.len() as f64);
    assert!(
        stdout.lines().any(|l| l == accuracy),
        "{accuracy}\n{stdout}"
    );
    assert!(stdout.contains("8 of its 10 classes"), "{stdout}");
}

#[test]
fn folders_named_otherwise_need_one_per_class() {
    let tmp = tempfile::tempdir().unwrap();
    let unnamed = |label: u32| format!("class{label:02}");
    class_folders(tmp.path(), |l| l >= 2, unnamed);
    let out = eval_r32_c10(tmp.path(), &[]);
    assert_exit_2(&out, "8 class folders");
    // Ten folders of unknown names: labelled in sorted order, as torchvision does.
    let ten = tempfile::tempdir().unwrap();
    class_folders(ten.path(), |_| true, unnamed);
    let config = Config::by_name("R32_C10").unwrap();
    let data = Dataset::open_for(ten.path(), Split::Test, &config).unwrap();
    assert_eq!(data.class_folders().unwrap().names.len(), 10);
}

#[test]
fn an_extra_folder_beside_the_class_names_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    class_folders(tmp.path(), |_| true, cifar_name);
    let stray = tmp.path().join("test").join("unsorted");
    std::fs::create_dir_all(&stray).unwrap();
    let any = std::fs::read_dir(tmp.path().join("test/cat"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::copy(any, stray.join("x.png")).unwrap();
    let out = eval_r32_c10(tmp.path(), &[]);
    assert_exit_2(&out, "'unsorted'");
}
