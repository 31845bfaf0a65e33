//! The binary as a user runs it: the four lines, records files, exit codes, and that bad
//! input leaves no output file behind.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use blockdrop::checkpoint::native;
use candle_core::{Device, Tensor};
use common::*;

/// `blockdrop eval --model MODEL --data DATA EXTRA…`
fn eval(model: &Path, data: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["eval", "--model", path_str(model), "--data", path_str(data)];
    args.extend_from_slice(extra);
    blockdrop(&args)
}

/// Runs `run`: exit code 2, one `error:` line naming `needle`, and the tree under `dir`
/// exactly as it was, file for file and byte for byte (nothing left behind, nothing changed).
fn refused(dir: &Path, needle: &str, run: impl FnOnce() -> Output) -> Output {
    let before = snapshot(dir);
    let output = run();
    assert_input_error(&output, needle);
    assert_eq!(snapshot(dir), before, "the folder changed");
    output
}

/// Exit code 2 and one `error:` line naming `needle`.
fn assert_input_error(output: &Output, needle: &str) {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "stderr: {stderr}");
    assert!(
        errors[0].contains(needle),
        "{:?} does not mention {needle:?}",
        errors[0]
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn eval_prints_the_reference_four_lines_for_a_zip_checkpoint() {
    let expected = json("r32_c10_expected.json");
    let out = eval(
        &fixture("r32_c10.pth"),
        &fixture("cifar-10-batches-py"),
        &[],
    );
    assert_prints_summary(&out, &expected);
}

#[test]
fn records_are_written_as_parquet_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let parquet = dir.path().join("records.parquet");
    let csv = dir.path().join("records.csv");
    let (model, data) = (fixture("r32_c10.pth"), fixture("cifar-10-batches-bin"));
    for (file, logits) in [(&parquet, true), (&csv, false)] {
        let mut args = vec![
            "eval",
            "--model",
            path_str(&model),
            "--data",
            path_str(&data),
        ];
        args.extend(["--records", path_str(file), "--limit", "10"]);
        if logits {
            args.push("--logits");
        }
        let out = blockdrop(&args);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let df = blockdrop::output::frame::read_parquet(&parquet).unwrap();
    assert_eq!(df.height(), 10);
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(
        names,
        ["index", "label", "pred", "correct", "policy", "blocks", "flops", "probs", "logits"]
    );
    let policy = df
        .column("policy")
        .unwrap()
        .str()
        .unwrap()
        .get(0)
        .unwrap()
        .to_string();
    assert_eq!(
        policy,
        json("r32_c10_expected.json")["records"][0]["policy"]
            .as_str()
            .unwrap()
    );
    let csv_text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = csv_text.lines();
    assert_eq!(
        lines.next(),
        Some("index,label,pred,correct,policy,blocks,flops,probs")
    );
    // The probs field holds 15 space-separated numbers.
    let first = lines.next().unwrap();
    assert_eq!(
        first.rsplit(',').next().unwrap().split(' ').count(),
        15,
        "{first}"
    );
}

#[test]
fn main_job_evaluates_the_bundled_default_and_says_when_it_is_untrained() {
    let out = blockdrop(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("R32_FMNIST on the first 1000 Fashion-MNIST test images"),
        "{stdout}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("Accuracy: "))
        .expect("summary printed");
    assert!(
        lines[at + 1].starts_with("Block Usage: ")
            && lines[at + 2].starts_with("FLOPs/img: ")
            && lines[at + 3].starts_with("Unique Policies: ")
    );
    // The shipped default is a trained model, as its file says (read here directly, not
    // through the code that decides what to print): no UNTRAINED warning.
    let path = asset("default.safetensors");
    let (_, meta) = native::read(&path, &std::fs::read(&path).unwrap(), &Device::Cpu).unwrap();
    assert_eq!(meta["stage"], "finetuned");
    assert!(!stdout.contains("UNTRAINED"), "{stdout}");
}

#[test]
fn tui_without_a_terminal_prints_the_evaluation_as_blockdrop_does() {
    let data = fixture("fmnist-idx");
    let out = blockdrop(&["tui", "--data", path_str(&data)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("Accuracy: ") && stdout.contains("not a terminal"),
        "{stdout}"
    );
}

#[test]
fn missing_dataset_is_exit_2_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("records.csv");
    refused(dir.path(), "/no/such/cifar: no such file or folder", || {
        eval(
            &fixture("r32_c10.pth"),
            Path::new("/no/such/cifar"),
            &["--records", path_str(&records)],
        )
    });
}

#[test]
fn truncated_idx_is_exit_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fmnist");
    std::fs::create_dir(&data).unwrap();
    copy_truncated(
        &fixture("fmnist-idx/t10k-images-idx3-ubyte"),
        &data.join("t10k-images-idx3-ubyte"),
        16 + 64 * 784 - 1,
    );
    std::fs::copy(
        fixture("fmnist-idx/t10k-labels-idx1-ubyte"),
        data.join("t10k-labels-idx1-ubyte"),
    )
    .unwrap();
    let records = dir.path().join("records.parquet");
    refused(dir.path(), "t10k-images-idx3-ubyte: truncated", || {
        eval(
            &asset("default.safetensors"),
            &data,
            &["--records", path_str(&records)],
        )
    });
}

#[test]
fn truncated_cifar_is_exit_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cifar-10-batches-bin");
    std::fs::create_dir(&data).unwrap();
    copy_truncated(
        &fixture("cifar-10-batches-bin/test_batch.bin"),
        &data.join("test_batch.bin"),
        3073 * 47 + 2073,
    );
    let records = dir.path().join("records.csv");
    refused(dir.path(), "test_batch.bin: truncated", || {
        eval(
            &fixture("r32_c10.pth"),
            &data,
            &["--records", path_str(&records)],
        )
    });
}

/// The bundled model with `edit` applied to its tensors, written into `dir`.
fn edited_model(
    dir: &Path,
    edit: impl FnOnce(&mut BTreeMap<String, Tensor>),
) -> std::path::PathBuf {
    let path = asset("default.safetensors");
    let (tensors, metadata) =
        native::read(&path, &std::fs::read(&path).unwrap(), &Device::Cpu).unwrap();
    let mut tensors: BTreeMap<String, Tensor> = tensors.into_iter().collect();
    edit(&mut tensors);
    let out = dir.join("edited.safetensors");
    native::write(&out, &tensors, &metadata).unwrap();
    out
}

#[test]
fn checkpoint_with_a_wrong_shape_and_a_missing_tensor_reports_both() {
    let dir = tempfile::tempdir().unwrap();
    let model = edited_model(dir.path(), |t| {
        t.insert(
            "resnet.fc.weight".into(),
            Tensor::zeros((10, 32), candle_core::DType::F32, &Device::Cpu).unwrap(),
        );
        t.remove("agent.logit.bias");
    });
    let records = dir.path().join("records.csv");
    let out = refused(
        dir.path(),
        "edited.safetensors: does not fit config R32_FMNIST (2 problem(s))",
        || {
            eval(
                &model,
                &fixture("fmnist-idx"),
                &["--records", path_str(&records)],
            )
        },
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("resnet.fc.weight has shape [10, 32], the model expects [10, 64]"),
        "{stderr}"
    );
    assert!(
        stderr.contains("missing tensor agent.logit.bias"),
        "{stderr}"
    );
}

#[test]
fn truncated_or_foreign_model_files_are_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let truncated = dir.path().join("truncated.safetensors");
    copy_truncated(&asset("default.safetensors"), &truncated, 1_000_000);
    refused(
        dir.path(),
        "truncated.safetensors: not a valid safetensors file",
        || eval(&truncated, &fixture("fmnist-idx"), &[]),
    );
    let foreign = dir.path().join("notes.txt");
    std::fs::write(&foreign, "hello").unwrap();
    refused(
        dir.path(),
        "notes.txt: neither a safetensors model nor a PyTorch checkpoint",
        || eval(&foreign, &fixture("fmnist-idx"), &[]),
    );
}

#[test]
fn unknown_config_is_exit_2_listing_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    refused(
        dir.path(),
        "unknown config 'R18_C10'; known configs: R32_C10",
        || {
            eval(
                &fixture("r32_c10.pth"),
                &fixture("cifar-10-batches-bin"),
                &["--config", "R18_C10"],
            )
        },
    );
}

#[test]
fn a_device_this_build_lacks_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    if candle_core::utils::cuda_is_available() {
        println!("SKIPPED: this build runs on CUDA, so --device cuda is not refused");
        eprintln!("SKIPPED: this build runs on CUDA, so --device cuda is not refused");
        return;
    }
    refused(dir.path(), "--features cuda", || {
        eval(
            &fixture("r32_c10.pth"),
            &fixture("cifar-10-batches-bin"),
            &["--device", "cuda"],
        )
    });
}

#[test]
fn labels_beyond_the_config_classes_are_exit_2() {
    // A CIFAR-100 file (fine label 57 on the first record) through a 10-class model.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cifar-100-binary");
    std::fs::create_dir(&data).unwrap();
    let mut bytes = std::fs::read(fixture("cifar-100-binary/test.bin")).unwrap();
    bytes[1] = 57;
    std::fs::write(data.join("test.bin"), bytes).unwrap();
    refused(
        dir.path(),
        "label 57 is out of range for config R32_C10 (10 classes)",
        || eval(&fixture("r32_c10.pth"), &data, &[]),
    );
}

#[test]
fn model_defaults_to_the_bundled_one() {
    let sample = asset("fashion-mnist-sample");
    let quick = ["--limit", "50", "--selection-images", "8"];
    let implicit = blockdrop(&[&["eval", "--data", path_str(&sample)][..], &quick].concat());
    let explicit = eval(&asset("default.safetensors"), &sample, &quick);
    assert!(implicit.status.success(), "{}", text(&implicit.stderr));
    assert_eq!(text(&implicit.stdout), text(&explicit.stdout));
    let orphan_base = blockdrop(&[
        "eval",
        "--data",
        path_str(&sample),
        "--base",
        path_str(&asset("default.safetensors")),
    ]);
    assert_eq!(orphan_base.status.code(), Some(2));
}

#[test]
fn eval_prints_the_adaptivity_gain_when_asked_after_the_four_lines_and_never_changes_them() {
    let sample = asset("fashion-mnist-sample");
    let model = asset("default.safetensors");
    let with = eval(
        &model,
        &sample,
        &["--limit", "120", "--selection-images", "24", "--adaptivity"],
    );
    let without = eval(&model, &sample, &["--limit", "120"]);
    // The flag of the days when the line was the default changes nothing.
    let explicit = eval(&model, &sample, &["--limit", "120", "--no-baselines"]);
    assert_eq!(text(&explicit.stdout), text(&without.stdout));
    assert!(with.status.success(), "{}", text(&with.stderr));
    let (with, without) = (text(&with.stdout), text(&without.stdout));
    let (with, without): (Vec<&str>, Vec<&str>) =
        (with.lines().collect(), without.lines().collect());
    assert_eq!(with[..4], without[..4]);
    assert!(with[4].starts_with("Adaptivity gain: "), "{with:?}");
    assert!(
        with[4].contains("(120 images; subsets chosen on 24 images of the train split of"),
        "{}",
        with[4]
    );
    assert!(
        !without.iter().any(|l| l.contains("Adaptivity")),
        "{without:?}"
    );
    assert_eq!(with.len(), without.len() + 1);
}

/// `blockdrop --version` with `BLOCKDROP_ISA` set to `value`.
fn version_with_isa(value: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_blockdrop"))
        .env(blockdrop::kernels::isa::ENV, value)
        .arg("--version")
        .output()
        .expect("binary runs")
}

#[test]
fn version_names_the_kernel_path_and_a_forced_path_must_exist() {
    use blockdrop::kernels::isa::Isa;
    let out = blockdrop(&["--version"]);
    assert!(out.status.success());
    let line = text(&out.stdout);
    assert!(
        line.contains(&format!("CPU kernels: {}", Isa::detected())),
        "{line}"
    );
    let forced = version_with_isa("scalar");
    assert!(
        text(&forced.stdout).contains("CPU kernels: scalar, set by BLOCKDROP_ISA"),
        "{}",
        text(&forced.stdout)
    );
    let lacking = Isa::ALL.into_iter().find(|isa| !isa.available());
    let refused = ["neon", "avx3"]
        .into_iter()
        .map(|bad| (bad, "BLOCKDROP_ISA"))
        .chain(lacking.map(|isa| (isa.name(), "this CPU lacks it")));
    for (value, says) in refused {
        let out = version_with_isa(value);
        assert_eq!(out.status.code(), Some(2), "{value}");
        assert!(text(&out.stderr).contains(says), "{}", text(&out.stderr));
    }
}

#[test]
fn profile_writes_a_cost_table_that_reads_back_and_never_replaces_a_users_file() {
    let dir = tempfile::tempdir().unwrap();
    let cost = dir.path().join("cost.json");
    let sample = asset("fashion-mnist-sample");
    let args = |out: &Path| {
        blockdrop(&[
            "profile",
            "--data",
            path_str(&sample),
            "--images",
            "1",
            "--repeat",
            "2",
            "--cost",
            path_str(out),
        ])
    };
    for _ in 0..2 {
        let out = args(&cost);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let table = blockdrop::profile::cost::CostTable::read(&cost).unwrap();
    assert_eq!(
        (table.config.as_str(), table.batch, table.blocks.len()),
        ("R32_FMNIST", 1, 15)
    );
    assert!(table.blocks.iter().all(|b| b.us > 0.0 && b.flops > 0.0));
    assert!(table.policy.us > 0.0 && table.kernels.starts_with("fast"));
    // A file blockdrop did not write stays as it is.
    let mine = dir.path().join("mine.json");
    std::fs::write(&mine, "{\"my\": \"notes\"}").unwrap();
    let out = args(&mine);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        std::fs::read_to_string(&mine).unwrap(),
        "{\"my\": \"notes\"}"
    );
    // A hand-written table with a bad figure is refused, naming the file and the figure.
    std::fs::write(
        &mine,
        std::fs::read_to_string(&cost)
            .unwrap()
            .replacen("\"us\": ", "\"us\": -", 1),
    )
    .unwrap();
    let err = blockdrop::profile::cost::CostTable::read(&mine)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("mine.json") && err.contains("policy's us"),
        "{err}"
    );
    // eval predicts from it; a table of another configuration is refused, naming it.
    let eval = |table: &Path| {
        blockdrop(&[
            "eval",
            "--data",
            path_str(&sample),
            "--limit",
            "50",
            "--no-baselines",
            "--cost",
            path_str(table),
        ])
    };
    let out = eval(&cost);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines = text(&out.stdout);
    assert!(
        lines
            .lines()
            .nth(4)
            .unwrap()
            .starts_with("Predicted latency: "),
        "{lines}"
    );
    let other = dir.path().join("other.json");
    let edited = std::fs::read_to_string(&cost)
        .unwrap()
        .replace("R32_FMNIST", "R32_C10");
    std::fs::write(&other, edited).unwrap();
    let out = eval(&other);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("other.json") && err.contains("R32_C10"),
        "{err}"
    );
    // A latency axis needs a profile or a table.
    let out = blockdrop(&[
        "export",
        "--data",
        path_str(&sample),
        "--no-profile",
        "--tradeoff-axis",
        "latency",
        "--out",
        path_str(&dir.path().join("report")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--tradeoff-axis latency"));
    assert!(!dir.path().join("report").exists());
}

/// `blockdrop eval … | head -1`: a closed stdout costs neither the records file nor the exit
/// code (printing used to panic before the file was written).
#[test]
fn a_closed_stdout_still_writes_the_records() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("r.parquet");
    let mut child = Command::new(env!("CARGO_BIN_EXE_blockdrop"))
        .args(["eval", "--data"])
        .arg(asset("fashion-mnist-sample"))
        .args(["--limit", "64", "--no-baselines", "--records"])
        .arg(&records)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("panicked"));
    assert_eq!(blockdrop::records::load(&[records]).unwrap().len(), 64);
}

#[test]
fn a_missing_required_flag_is_named_on_the_one_line() {
    let out = blockdrop(&["train", "finetune", "--data", "x"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("not provided: --out <DIR> --from <RUN_OR_MODEL> ("),
        "{err}"
    );
}
