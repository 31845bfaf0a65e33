//! An image folder of a few thousand images (ImageNet's layout, generated here): evaluation
//! with images decoded ahead on worker threads gives the same records whatever the number of
//! decoders and batches ahead, and a corrupt image is reported by name with nothing written.

mod common;

use std::path::Path;

use blockdrop::records::provenance::read_part;
use common::*;

const CLASSES: usize = 10;
const PER_CLASS: usize = 200;

/// `CLASSES` class folders of `PER_CLASS` 32×32 JPEGs under `root/val`.
fn write_folder(root: &Path) {
    let mut seed = 11u64;
    for class in 0..CLASSES {
        let dir = root.join("val").join(format!("n{class:08}"));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..PER_CLASS {
            let image = image::RgbImage::from_fn(32, 32, |x, y| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let noise = (seed >> 59) as u8;
                image::Rgb([
                    (x * 8) as u8 ^ noise,
                    (y * 8) as u8,
                    (class * 25) as u8 + noise,
                ])
            });
            image.save(dir.join(format!("{i:04}.JPEG"))).unwrap();
        }
    }
}

fn eval(data: &Path, records: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "--batch",
        "64",
        "--no-baselines",
        "--records",
        path_str(records),
    ];
    args.extend_from_slice(extra);
    eval_r32_c10(data, &args)
}

#[test]
fn a_few_thousand_images_decoded_ahead_give_the_same_records_on_any_prefetch() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("folder");
    write_folder(&data);
    let mut runs = Vec::new();
    for (name, extra) in [
        ("default", vec![]),
        ("one", vec!["--decode-threads", "1", "--prefetch", "1"]),
        ("many", vec!["--decode-threads", "5", "--prefetch", "9"]),
    ] {
        let records = dir.path().join(format!("{name}.parquet"));
        let out = eval(&data, &records, &extra);
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        let (records, provenance, complete) = read_part(&records).unwrap();
        assert!(complete);
        assert_eq!(provenance.images, CLASSES * PER_CLASS);
        runs.push((
            text(&out.stdout)
                .lines()
                .take(4)
                .collect::<Vec<_>>()
                .join("\n"),
            records,
        ));
    }
    let (lines, records) = &runs[0];
    assert_eq!(records.len(), CLASSES * PER_CLASS);
    // In order, every image once, labelled by its class folder.
    for (i, r) in records.iter().enumerate() {
        assert_eq!((r.index as usize, r.label as usize), (i, i / PER_CLASS));
    }
    for (other_lines, other) in &runs[1..] {
        assert_eq!(other_lines, lines);
        assert_eq!(other, records);
    }
}

#[test]
fn a_corrupt_image_deep_in_the_folder_is_named_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("folder");
    write_folder(&data);
    let bad = data.join("val").join("n00000007").join("0123.JPEG");
    let bytes = std::fs::read(&bad).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() / 3]).unwrap();
    let records = dir.path().join("records.parquet");
    let out = eval(&data, &records, &["--decode-threads", "3"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(err.contains("0123.JPEG") && err.contains("decode"), "{err}");
    assert!(!records.exists());
}
