//! Reading `torch.save` files: both formats to identical tensors, the layouts old files use,
//! and hostile or broken files costing an error, never a panic or unbounded memory.

mod common;

use std::collections::HashMap;
use std::path::Path;

use blockdrop::checkpoint::{self, torch::LEGACY_MAGIC};
use blockdrop::Error;
use candle_core::Tensor;
use common::*;

fn read(path: &Path) -> Result<HashMap<String, Tensor>, Error> {
    checkpoint::read_tensors(path, &std::fs::read(path).unwrap()).map(|(t, _)| t)
}

fn read_bytes(bytes: &[u8]) -> Result<HashMap<String, Tensor>, Error> {
    checkpoint::read_tensors(Path::new("hostile.pth"), bytes).map(|(t, _)| t)
}

fn raw_bytes(t: &Tensor) -> Vec<u8> {
    let t = t.flatten_all().unwrap();
    match t.dtype() {
        candle_core::DType::F32 => t
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        candle_core::DType::I64 => t
            .to_vec1::<i64>()
            .unwrap()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        other => panic!("unexpected dtype {other:?}"),
    }
}

fn assert_identical(a: &HashMap<String, Tensor>, b: &HashMap<String, Tensor>) {
    let mut names: Vec<&String> = a.keys().collect();
    names.sort();
    let mut other: Vec<&String> = b.keys().collect();
    other.sort();
    assert_eq!(names, other);
    for name in names {
        assert_eq!(a[name].dims(), b[name].dims(), "{name}");
        assert_eq!(raw_bytes(&a[name]), raw_bytes(&b[name]), "{name}");
    }
}

#[test]
fn zip_and_legacy_files_load_to_bit_identical_tensors() {
    let zip = read(&fixture("r32_c10.pth")).unwrap();
    let legacy = read(&fixture("r32_c10_legacy.pth")).unwrap();
    assert_eq!(zip.len(), legacy.len());
    assert_identical(&zip, &legacy);
}

#[test]
fn reference_metadata_is_kept() {
    let path = fixture("r32_c10_legacy.pth");
    let (_, metadata) = checkpoint::read_tensors(&path, &std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(metadata.get("epoch").map(String::as_str), Some("7"));
    assert_eq!(metadata.get("accuracy").map(String::as_str), Some("0.5"));
    assert_eq!(metadata.get("reward").map(String::as_str), Some("0.25"));
}

#[test]
fn old_layout_with_net_torchvision_names_and_module_prefix_maps_to_the_same_tensors() {
    let modern = read(&fixture("tiny_imagenet.pth")).unwrap();
    let old = read(&fixture("tiny_imagenet_old_layout_legacy.pth")).unwrap();
    assert_identical(&modern, &old);
}

#[test]
fn legacy_checkpoint_evaluates_to_the_reference_four_lines() {
    let expected = json("r32_c10_expected.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_blockdrop"))
        .args(["eval", "--model"])
        .arg(fixture("r32_c10_legacy.pth"))
        .arg("--data")
        .arg(fixture("cifar-10-batches-bin"))
        .output()
        .unwrap();
    assert_prints_summary(&out, &expected);
}

/// A legacy file around `object` (the checkpoint pickle, protocol 2), with no storage or
/// one, key "0", written as its declared element count and its bytes.
fn legacy_file(object: &[u8], storage: Option<(u64, &[u8])>) -> Vec<u8> {
    let mut f = LEGACY_MAGIC.to_vec();
    f.push(b'.');
    f.extend_from_slice(b"\x80\x02M\xe9\x03."); // protocol version 1001
    f.extend_from_slice(b"\x80\x02}."); // system info
    f.extend_from_slice(object);
    match storage {
        Some((numel, data)) => {
            f.extend_from_slice(b"\x80\x02]X\x01\x00\x00\x000a."); // storage keys ["0"]
            f.extend_from_slice(&numel.to_le_bytes());
            f.extend_from_slice(data);
        }
        None => f.extend_from_slice(b"\x80\x02]."),
    }
    f
}

fn unicode(s: &str) -> Vec<u8> {
    let mut b = vec![b'X'];
    b.extend_from_slice(&(s.len() as u32).to_le_bytes());
    b.extend_from_slice(s.as_bytes());
    b
}

/// `{"agent": {"w": tensor}, "resnet": {"w": tensor}}` where the tensor's storage declares
/// `numel` float elements and the tensor has `size` elements.
fn state_dict_pickle(numel: u64, size: u64) -> Vec<u8> {
    let mut tensor = b"ctorch._utils\n_rebuild_tensor_v2\n(".to_vec();
    tensor.push(b'(');
    tensor.extend(unicode("storage"));
    tensor.extend_from_slice(b"ctorch\nFloatStorage\n");
    tensor.extend(unicode("0"));
    tensor.extend(unicode("cpu"));
    tensor.push(0x8a);
    tensor.push(8);
    tensor.extend_from_slice(&numel.to_le_bytes());
    tensor.extend_from_slice(b"tQK\x00");
    tensor.push(0x8a);
    tensor.push(8);
    tensor.extend_from_slice(&size.to_le_bytes());
    tensor.extend_from_slice(b"\x85K\x01\x85\x89NtRq\x00");
    let mut p = b"\x80\x02}".to_vec();
    for net in ["agent", "resnet"] {
        p.extend(unicode(net));
        p.push(b'}');
        p.extend(unicode("logit.weight"));
        if net == "agent" {
            p.extend_from_slice(&tensor);
        } else {
            p.extend_from_slice(b"h\x00");
        }
        p.push(b's');
        p.push(b's');
    }
    p.push(b'.');
    p
}

fn expect_input_error(result: Result<HashMap<String, Tensor>, Error>, needle: &str) {
    match result {
        Err(e) => {
            assert!(e.is_user_error(), "{e}");
            assert!(
                e.to_string().contains(needle),
                "{e} does not mention {needle:?}"
            );
        }
        Ok(_) => panic!("expected an error mentioning {needle:?}"),
    }
}

#[test]
fn a_well_formed_hand_made_legacy_file_reads() {
    let data: Vec<u8> = [1.0f32, 2.0, 3.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let tensors = read_bytes(&legacy_file(&state_dict_pickle(3, 3), Some((3, &data)))).unwrap();
    assert_eq!(
        tensors["agent.logit.weight"].to_vec1::<f32>().unwrap(),
        [1.0, 2.0, 3.0]
    );
    assert_eq!(tensors["resnet.logit.weight"].dims(), &[3]);
}

#[test]
fn a_pickle_calling_os_system_is_refused_by_name() {
    let object = b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R.";
    expect_input_error(read_bytes(&legacy_file(object, None)), "os.system");
    let object = b"\x80\x02cbuiltins\neval\nX\x01\x00\x00\x001\x85R.";
    expect_input_error(read_bytes(&legacy_file(object, None)), "builtins.eval");
}

#[test]
fn a_storage_larger_than_the_file_is_refused_before_allocating() {
    let file = legacy_file(&state_dict_pickle(1 << 30, 3), Some((1 << 30, &[0; 12])));
    expect_input_error(
        read_bytes(&file),
        "truncated: storage 0 needs 4294967296 bytes",
    );
}

#[test]
fn a_size_near_u64_max_is_refused() {
    let huge = u64::MAX - 1; // a negative int64 in the pickle
    let file = legacy_file(&state_dict_pickle(huge, 3), Some((huge, &[0; 12])));
    expect_input_error(read_bytes(&file), "a storage size is not a count");
    let huge = i64::MAX as u64; // counts, but no byte length fits
    let file = legacy_file(&state_dict_pickle(huge, 3), Some((huge, &[0; 12])));
    expect_input_error(read_bytes(&file), "impossibly large");
    let file = legacy_file(&state_dict_pickle(3, u64::MAX / 2), Some((3, &[0; 12])));
    expect_input_error(read_bytes(&file), "elements over a storage of 3");
}

#[test]
fn a_tensor_bigger_than_its_storage_is_refused() {
    let file = legacy_file(&state_dict_pickle(3, 4), Some((3, &[0; 12])));
    expect_input_error(
        read_bytes(&file),
        "a tensor of 4 elements over a storage of 3",
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let depth = 100_000;
    let mut object = b"\x80\x02".to_vec();
    for _ in 0..depth {
        object.push(b'}');
        object.extend(unicode("a"));
    }
    object.push(b'}');
    object.extend(std::iter::repeat_n(b's', depth));
    object.push(b'.');
    expect_input_error(read_bytes(&legacy_file(&object, None)), "nested deeper");
}

#[test]
fn truncated_files_and_non_pickles_are_errors_at_cuts_every_7919_bytes_and_the_last() {
    for name in ["tiny_imagenet.pth", "tiny_imagenet_old_layout_legacy.pth"] {
        let bytes = std::fs::read(fixture(name)).unwrap();
        for cut in (1..bytes.len()).step_by(7919).chain([bytes.len() - 1]) {
            let result = read_bytes(&bytes[..cut]);
            assert!(
                matches!(&result, Err(e) if e.is_user_error()),
                "{name} cut at {cut}: {:?}",
                result.err()
            );
        }
    }
    expect_input_error(
        read_bytes(b"\x80\x02 definitely not a checkpoint"),
        "hostile.pth",
    );
}

fn blockdrop(args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_blockdrop"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn import_of_a_python2_curriculum_agent_and_a_torchvision_base_reproduces_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("imported.safetensors");
    let (agent, base) = (
        fixture("r32_c10_curriculum_py2.pth"),
        fixture("r32_c10_base_torchvision.pth"),
    );
    let out = blockdrop(&[
        "import".as_ref(),
        "--torch".as_ref(),
        agent.as_os_str(),
        "--base".as_ref(),
        base.as_os_str(),
        "--out".as_ref(),
        out_path.as_os_str(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    for needle in [
        "39 agent and 0 base tensors",
        "150 renamed from torchvision names",
        "157 without DataParallel's 'module.' prefix",
        "ignored: 31 num_batches_tracked",
        "resnet.blocks            150",
        "config R32_C10",
        "epoch=7",
    ] {
        assert!(
            report.contains(needle),
            "{needle:?} missing from:\n{report}"
        );
    }
    // The imported file holds exactly the tensors of the original checkpoint.
    assert_identical(
        &read(&out_path).unwrap(),
        &read(&fixture("r32_c10.pth")).unwrap(),
    );
    // And the agent-only file evaluates with --base directly.
    let data = fixture("cifar-10-batches-bin");
    let out = blockdrop(&[
        "eval".as_ref(),
        "--model".as_ref(),
        agent.as_os_str(),
        "--base".as_ref(),
        base.as_os_str(),
        "--data".as_ref(),
        data.as_os_str(),
    ]);
    assert_prints_summary(&out, &json("r32_c10_expected.json"));
}

#[test]
fn an_agent_only_file_without_base_says_to_pass_one() {
    let agent = fixture("r32_c10_curriculum_py2.pth");
    let data = fixture("cifar-10-batches-bin");
    let out = blockdrop(&[
        "eval".as_ref(),
        "--model".as_ref(),
        agent.as_os_str(),
        "--data".as_ref(),
        data.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pass its base network with --base FILE"));
}

#[test]
fn import_into_a_missing_folder_fails_cleanly() {
    let agent = fixture("r32_c10.pth");
    let out_path = Path::new("/no/such/dir/model.safetensors");
    let out = blockdrop(&[
        "import".as_ref(),
        "--torch".as_ref(),
        agent.as_os_str(),
        "--out".as_ref(),
        out_path.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/no/such/dir: output folder does not exist")
    );
}

/// Full-size R101_ImgNet: a torchvision-layout ResNet-101 base and an agent-only legacy file,
/// written on the fly by real PyTorch (about 200 MB, so never committed). Needs the fixture
/// venv (`tests/fixtures/setup_venv.sh`); `.ci/run` runs it where that exists.
#[test]
#[ignore = "needs PyTorch: tests/fixtures/setup_venv.sh, then cargo test --release -- --ignored"]
fn full_size_r101_from_torchvision_layout_matches_pytorch() {
    use blockdrop::exec::forward_skip;
    use candle_core::Device;

    let python = std::env::var_os("BLOCKDROP_TORCH_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| fixture(".venv/bin/python"));
    let dir = tempfile::tempdir().unwrap();
    let made = std::process::Command::new(&python)
        .arg(fixture("make_r101_torchvision.py"))
        .arg(dir.path())
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run tests/fixtures/setup_venv.sh)",
                python.display()
            )
        });
    assert!(made.success());
    let base = dir.path().join("base.pth");
    let loaded = blockdrop::checkpoint::load_model(
        &dir.path().join("agent.pth"),
        Some(&base),
        Some("R101_ImgNet"),
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(loaded.model.num_blocks(), 33);
    let io: HashMap<String, Tensor> = candle_core::pickle::read_all(dir.path().join("io.pth"))
        .unwrap()
        .into_iter()
        .collect();
    let probs = loaded.model.keep_probs(&io["input"], false).unwrap();
    let probs = probs.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_close(
        &probs,
        &io["probs"].flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        "R101 keep probabilities",
    );
    let keep: Vec<bool> = probs.iter().map(|&p| p >= 0.5).collect();
    let logits = forward_skip(&loaded.model.resnet, &io["input"], &keep).unwrap();
    assert_close(
        &logits.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        &io["logits"]
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap(),
        "R101 logits",
    );
}

#[test]
fn storage_types_and_strided_views_read_the_same_from_both_formats() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/checkpoint");
    let parts = |name: &str| {
        let path = seeds.join(name);
        checkpoint::read_parts(&path, &std::fs::read(&path).unwrap()).unwrap()
    };
    for name in ["zip.pth", "legacy.pth"] {
        let p = parts(name);
        let resnet: HashMap<String, Tensor> = p.resnet.unwrap().into_iter().collect();
        assert_eq!(
            resnet["blocks.0.0.conv1.weight"].dtype(),
            candle_core::DType::F16,
            "{name}"
        );
        // A [4, 2] float64 tensor sliced to its first column: size [4, 1], stride (2, 1).
        assert_eq!(resnet["fc.weight"].dims(), &[4, 1], "{name}");
        assert_eq!(
            resnet["fc.bias"].to_vec1::<i64>().unwrap(),
            [0, 1, 2, 3],
            "{name}"
        );
        assert_eq!(p.ignored, ["features.bn1.num_batches_tracked"], "{name}");
        assert_eq!(p.metadata.get("accuracy").map(String::as_str), Some("0.25"));
    }
    let (zip, legacy) = (
        parts("zip.pth").resnet.unwrap(),
        parts("legacy.pth").resnet.unwrap(),
    );
    assert_eq!(zip.len(), legacy.len(), "the same tensors in both formats");
    for ((name, a), (legacy_name, b)) in zip.iter().zip(&legacy) {
        assert_eq!(
            name, legacy_name,
            "tensors in the same order under the same names"
        );
        let (a, b) = (
            a.to_dtype(candle_core::DType::F64).unwrap(),
            b.to_dtype(candle_core::DType::F64).unwrap(),
        );
        assert_eq!(
            a.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
            b.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
            "{name}"
        );
    }
    let py2 = parts("legacy_py2_agent.pth");
    assert_eq!(py2.agent.map(|a| a.len()), Some(2));
    let wrapped = parts("wrapped_base.pth");
    assert_eq!((wrapped.unprefixed, wrapped.renamed), (3, 1));
}
