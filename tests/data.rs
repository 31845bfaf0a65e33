//! Dataset readers on real formats: CIFAR binary and python versions (Python 2 and Python 3
//! pickles), IDX raw and gzip, class folders; and their errors on bad files.

mod common;

use std::path::Path;

use blockdrop::config::Config;
use blockdrop::data::{Dataset, Format, Split};
use blockdrop::Error;
use candle_core::Device;
use common::*;

fn pixels_and_labels(d: &Dataset) -> (Vec<Vec<u8>>, Vec<u32>) {
    (
        (0..d.len()).map(|i| d.image(i).unwrap().pixels).collect(),
        d.labels().to_vec(),
    )
}

#[test]
fn cifar_binary_and_python_versions_hold_the_same_images() {
    let expected: Vec<u32> = json("r32_c10_expected.json")["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["label"].as_u64().unwrap() as u32)
        .collect();
    let bin =
        pixels_and_labels(&Dataset::open(&fixture("cifar-10-batches-bin"), Split::Test).unwrap());
    assert_eq!(bin.1, expected);
    for other in [
        "cifar-10-batches-py",
        "cifar-100-binary",
        "cifar-100-python",
    ] {
        let d = Dataset::open(&fixture(other), Split::Test).unwrap();
        assert!(matches!(d.format, Format::Cifar(_)));
        // CIFAR-100 fixtures carry the same fine labels as the CIFAR-10 ones.
        assert_eq!(pixels_and_labels(&d), bin, "{other}");
    }
}

#[test]
fn a_parent_folder_of_a_known_dataset_folder_is_found() {
    let d = Dataset::open(&fixture(""), Split::Test).unwrap();
    assert_eq!(d.path, fixture("cifar-10-batches-bin"));
}

#[test]
fn idx_raw_and_gzip_agree_with_the_bundled_sample() {
    let raw = Dataset::open(&fixture("fmnist-idx"), Split::Test).unwrap();
    let sample = blockdrop::bundled::sample_dataset().unwrap();
    assert_eq!(raw.len(), 64);
    assert_eq!(sample.len(), 1000);
    for i in 0..raw.len() {
        assert_eq!(raw.image(i).unwrap(), sample.image(i).unwrap());
    }
    assert_eq!(raw.labels(), &sample.labels()[..64]);
    let x = raw
        .batch(
            &[0, 1, 2],
            &Config::by_name("R32_FMNIST").unwrap(),
            &Device::Cpu,
        )
        .unwrap();
    assert_eq!(x.dims(), &[3, 1, 28, 28]);
}

#[test]
fn a_folder_with_only_the_test_batch_has_no_train_split() {
    let err = Dataset::open(&fixture("cifar-10-batches-bin"), Split::Train).unwrap_err();
    assert!(err.is_user_error());
    assert!(err.to_string().contains("data_batch_1.bin"), "{err}");
}

#[test]
fn wrong_channel_count_for_the_config_is_an_input_error() {
    let d = Dataset::open(&fixture("fmnist-idx"), Split::Test).unwrap();
    let err = d
        .batch(&[0], &Config::by_name("R32_C10").unwrap(), &Device::Cpu)
        .unwrap_err();
    assert!(
        err.is_user_error() && err.to_string().contains("1x28x28"),
        "{err}"
    );
}

/// The ImageNet test transform on two asymmetric images (tests/fixtures/resize_*, written by
/// make_resize_fixture.py): the reader's 224x224 crops, back on the 0..255 scale, against
/// torchvision's `Resize(256)` + `CenterCrop(224)` of the same PNGs. A uniform image would pass
/// with any filter and any offset; these have ramps, a fine checkerboard (aliasing without
/// antialiasing shows there) and an off-centre bar (a crop one pixel off shows there).
#[test]
fn class_folders_are_resized_and_centre_cropped_like_torchvision() {
    let dir = tempfile::tempdir().unwrap();
    let names = ["down", "up"];
    for (class, name) in ["n01_down", "n02_up"].iter().zip(names) {
        std::fs::create_dir(dir.path().join(class)).unwrap();
        std::fs::copy(
            fixture(&format!("resize_{name}.png")),
            dir.path().join(class).join("a.png"),
        )
        .unwrap();
    }
    let d = Dataset::open(dir.path(), Split::Test).unwrap();
    assert_eq!(
        (d.format, d.labels()),
        (Format::ImageFolder, &[0u32, 1][..])
    );
    let config = Config::by_name("R101_ImgNet").unwrap();
    let (mean, std) = config.transform.normalize.clone().unwrap();
    let x = d.batch(&[0, 1], &config, &Device::Cpu).unwrap();
    assert_eq!(x.dims(), &[2, 3, 224, 224]);
    for (i, name) in names.iter().enumerate() {
        let expected = image::open(fixture(&format!("resize_{name}_torchvision.png")))
            .unwrap()
            .to_rgb8();
        assert_eq!(expected.dimensions(), (224, 224), "{name}");
        let ours = x.get(i).unwrap().to_vec3::<f32>().unwrap();
        let (mut worst, mut total) = (0f32, 0f64);
        for (x_, y_, p) in expected.enumerate_pixels() {
            for c in 0..3 {
                let value = (ours[c][y_ as usize][x_ as usize] * std[c] + mean[c]) * 255.0;
                let diff = (value - f32::from(p[c])).abs();
                worst = worst.max(diff);
                total += f64::from(diff);
            }
        }
        let mean_diff = total / (3.0 * 224.0 * 224.0);
        println!("{name}: largest difference {worst:.2}, mean {mean_diff:.3} (0..255)");
        assert!(
            worst <= RESIZE_LARGEST && mean_diff <= RESIZE_MEAN,
            "{name}: the crop differs from torchvision's by up to {worst:.2} (mean {mean_diff:.3})"
        );
    }
}

/// How far the reader's resize may stray from PIL's (torchvision's) on 0..255: both are
/// antialiased bilinear, but PIL rounds its fixed-point passes differently (measured: at most
/// 1 level, 0.08 on average; a crop one pixel off gives 109 and 5.3).
const RESIZE_LARGEST: f32 = 1.01;
const RESIZE_MEAN: f64 = 0.15;

fn expect_input_error(path: &Path, split: Split, needle: &str) {
    match Dataset::open(path, split) {
        Err(e @ Error::BadInput { .. }) => assert!(e.to_string().contains(needle), "{e}"),
        other => panic!("expected an input error mentioning {needle:?}, got {other:?}"),
    }
}

#[test]
fn truncated_files_are_input_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // IDX, raw: the payload is shorter than its header says.
    let idx = dir.path().join("idx");
    std::fs::create_dir(&idx).unwrap();
    copy_truncated(
        &fixture("fmnist-idx/t10k-images-idx3-ubyte"),
        &idx.join("t10k-images-idx3-ubyte"),
        5000,
    );
    std::fs::copy(
        fixture("fmnist-idx/t10k-labels-idx1-ubyte"),
        idx.join("t10k-labels-idx1-ubyte"),
    )
    .unwrap();
    expect_input_error(&idx, Split::Test, "t10k-images-idx3-ubyte: truncated");
    // IDX, gzip cut in the middle of the stream.
    let gz = dir.path().join("gz");
    std::fs::create_dir(&gz).unwrap();
    copy_truncated(
        &asset("fashion-mnist-sample/t10k-images-idx3-ubyte.gz"),
        &gz.join("t10k-images-idx3-ubyte.gz"),
        10_000,
    );
    std::fs::copy(
        asset("fashion-mnist-sample/t10k-labels-idx1-ubyte.gz"),
        gz.join("t10k-labels-idx1-ubyte.gz"),
    )
    .unwrap();
    expect_input_error(&gz, Split::Test, "gzip");
    // CIFAR binary: not a whole number of records.
    let bin = dir.path().join("cifar-10-batches-bin");
    std::fs::create_dir(&bin).unwrap();
    copy_truncated(
        &fixture("cifar-10-batches-bin/test_batch.bin"),
        &bin.join("test_batch.bin"),
        3073 * 3 + 100,
    );
    expect_input_error(&bin, Split::Test, "test_batch.bin: truncated");
    // CIFAR python: the pickle stops half-way through the pixel data.
    let py = dir.path().join("cifar-10-batches-py");
    std::fs::create_dir(&py).unwrap();
    copy_truncated(
        &fixture("cifar-10-batches-py/test_batch"),
        &py.join("test_batch"),
        70_000,
    );
    expect_input_error(&py, Split::Test, "test_batch: not a CIFAR python batch");
}

#[test]
fn a_pickle_naming_a_dangerous_global_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let py = dir.path().join("cifar-10-batches-py");
    std::fs::create_dir(&py).unwrap();
    std::fs::write(
        py.join("test_batch"),
        b"\x80\x02cposix\nsystem\nq\x00U\x02lsq\x01\x85q\x02Rq\x03.",
    )
    .unwrap();
    expect_input_error(&py, Split::Test, "posix.system");
}

#[test]
fn a_missing_path_says_what_was_expected() {
    expect_input_error(
        Path::new("/nonexistent/cifar"),
        Split::Test,
        "no such file or folder",
    );
}

/// Recomputes Fashion-MNIST's training-set mean and std from the Debian package's files and
/// compares them with the constants R32_FMNIST/R110_FMNIST normalise with. `.ci/run`
/// installs the package and sets BLOCKDROP_REQUIRE_FMNIST=1, so there the test cannot skip.
#[test]
fn fmnist_normalisation_constants_are_the_training_set_statistics() {
    let dir = Path::new("/usr/share/datasets/fashion-mnist");
    if !dir.is_dir() {
        assert!(
            std::env::var_os("BLOCKDROP_REQUIRE_FMNIST").is_none(),
            "{} missing: apt-get install dataset-fashion-mnist",
            dir.display()
        );
        eprintln!(
            "skipped: {} not installed (apt-get install dataset-fashion-mnist)",
            dir.display()
        );
        return;
    }
    let train = Dataset::open(dir, Split::Train).unwrap();
    assert_eq!(train.len(), 60_000);
    assert_eq!(Dataset::open(dir, Split::Test).unwrap().len(), 10_000);
    let (mut sum, mut sum_sq, mut n) = (0f64, 0f64, 0f64);
    for i in 0..train.len() {
        for &p in &train.image(i).unwrap().pixels {
            let v = p as f64 / 255.0;
            sum += v;
            sum_sq += v * v;
            n += 1.0;
        }
    }
    let mean = sum / n;
    let std = (sum_sq / n - mean * mean).sqrt();
    assert!(
        (mean - blockdrop::config::FMNIST_MEAN as f64).abs() < 1e-6,
        "mean {mean}"
    );
    assert!(
        (std - blockdrop::config::FMNIST_STD as f64).abs() < 1e-6,
        "std {std}"
    );
}
