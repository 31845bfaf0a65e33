//! The output rule: blockdrop never deletes or overwrites a file it did not write. Report
//! folders through the library, then `export` and `--export` through the command line.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use blockdrop::output::{check_report_target, refuse_inside, Staging, Target, MARKER, PARTIAL};
use common::*;

/// The names a report folder's marker lists.
fn listed(dir: &Path) -> Vec<String> {
    read(dir.join(MARKER))
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect()
}

/// Builds a "report" of `files` (name, contents) into `out` and publishes it.
fn publish(out: &Path, files: &[(&str, &str)]) -> blockdrop::Result<()> {
    let staging = Staging::begin(out)?;
    for (name, text) in files {
        fs::write(staging.dir.join(name), text).unwrap();
    }
    staging.publish()
}

fn read(path: impl AsRef<Path>) -> String {
    fs::read_to_string(path).unwrap()
}

#[test]
fn a_report_goes_to_a_new_folder_with_a_marker_and_nothing_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    publish(&out, &[("index.md", "one"), ("a.png", "png")]).unwrap();
    assert_eq!(listed(&out), ["a.png", "index.md"]);
    assert_eq!(read(out.join("index.md")), "one");
    let siblings: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().collect();
    assert_eq!(siblings.len(), 1);
}

#[test]
fn a_folder_of_the_users_files_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mine");
    fs::create_dir(&out).unwrap();
    fs::write(out.join("thesis.tex"), "years of work").unwrap();
    let err = publish(&out, &[("index.md", "report")]).unwrap_err();
    assert!(
        err.is_user_error() && err.to_string().contains("mine"),
        "{err}"
    );
    assert_eq!(read(out.join("thesis.tex")), "years of work");
    assert_eq!(fs::read_dir(&out).unwrap().count(), 1);
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no staging left"
    );
}

#[test]
fn an_empty_folder_or_a_file_target() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    assert_eq!(check_report_target(&empty).unwrap(), Target::Empty);
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    fs::set_permissions(&empty, fs::Permissions::from_mode(0o700)).unwrap();
    let inode = fs::metadata(&empty).unwrap().ino();
    publish(&empty, &[("index.md", "x")]).unwrap();
    assert_eq!(read(empty.join("index.md")), "x");
    // The user's folder itself stays: same folder, same permissions.
    let after = fs::metadata(&empty).unwrap();
    assert_eq!((after.ino(), after.mode() & 0o777), (inode, 0o700));

    let file = dir.path().join("file.txt");
    fs::write(&file, "data").unwrap();
    assert!(publish(&file, &[("index.md", "x")]).is_err());
    assert_eq!(read(&file), "data");
}

#[test]
fn a_second_report_replaces_only_what_the_first_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    publish(&out, &[("index.md", "one"), ("cluster_5.png", "old")]).unwrap();
    fs::write(out.join("notes.md"), "the user's").unwrap();
    fs::create_dir(out.join("drafts")).unwrap();
    publish(&out, &[("index.md", "two"), ("cluster_0.png", "new")]).unwrap();
    assert_eq!(read(out.join("index.md")), "two");
    assert_eq!(read(out.join("cluster_0.png")), "new");
    assert!(
        !out.join("cluster_5.png").exists(),
        "a file of the old report only"
    );
    assert_eq!(read(out.join("notes.md")), "the user's");
    assert!(out.join("drafts").is_dir());
    assert_eq!(listed(&out), ["cluster_0.png", "index.md"]);
}

#[test]
fn a_users_file_named_like_a_report_file_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    publish(&out, &[("index.md", "one")]).unwrap();
    fs::write(out.join("hard.png"), "the user's picture").unwrap();
    let err = publish(&out, &[("index.md", "two"), ("hard.png", "ours")]).unwrap_err();
    assert!(err.to_string().contains("hard.png"), "{err}");
    assert_eq!(read(out.join("hard.png")), "the user's picture");
    assert_eq!(read(out.join("index.md")), "one", "nothing replaced");
}

#[test]
fn a_report_file_edited_by_hand_stops_the_export_and_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    publish(&out, &[("index.md", "one"), ("cluster_2.png", "old")]).unwrap();
    fs::write(out.join("cluster_2.png"), "the user's edit").unwrap();
    let err = publish(&out, &[("index.md", "two")]).unwrap_err();
    assert!(err.to_string().contains("cluster_2.png"), "{err}");
    assert_eq!(read(out.join("cluster_2.png")), "the user's edit");
    assert_eq!(read(out.join("index.md")), "one", "nothing replaced");
    // A link the user put under a report file's name is never replaced either.
    fs::remove_file(out.join("cluster_2.png")).unwrap();
    std::os::unix::fs::symlink("/nowhere", out.join("hard.png")).unwrap();
    assert!(publish(&out, &[("index.md", "two"), ("hard.png", "ours")]).is_err());
    assert!(fs::symlink_metadata(out.join("hard.png"))
        .unwrap()
        .is_symlink());
}

#[test]
fn a_marker_that_climbs_out_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    fs::create_dir(&out).unwrap();
    fs::write(out.join(MARKER), "../victim\t7\t0000000000000000\n").unwrap();
    fs::write(dir.path().join("victim"), "keep me").unwrap();
    assert!(publish(&out, &[("index.md", "x")]).is_err());
    assert_eq!(read(dir.path().join("victim")), "keep me");
}

#[test]
fn leftovers_of_a_killed_export_are_cleaned_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    // A pid far above Linux's maximum (4,194,304) is never running.
    let leftover = dir.path().join(".report.blockdrop-tmp-999999999");
    fs::create_dir(&leftover).unwrap();
    fs::write(leftover.join(PARTIAL), "").unwrap();
    fs::write(leftover.join("index.md"), "half").unwrap();
    let unmarked = dir.path().join(".report.blockdrop-tmp-999999998");
    fs::create_dir(&unmarked).unwrap();
    fs::write(unmarked.join("mine.txt"), "not blockdrop's").unwrap();
    publish(&out, &[("index.md", "whole")]).unwrap();
    assert!(!leftover.exists());
    assert_eq!(read(unmarked.join("mine.txt")), "not blockdrop's");
}

#[test]
fn an_unpublished_report_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    {
        let staging = Staging::begin(&out).unwrap();
        fs::write(staging.dir.join("index.md"), "half").unwrap();
    }
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn an_output_inside_an_input_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fs::create_dir(&data).unwrap();
    let inside = data.join("sub/report");
    assert!(refuse_inside(&inside, &[(&data, "dataset")]).is_err());
    assert!(refuse_inside(&data, &[(&data, "dataset")]).is_err());
    assert!(refuse_inside(&dir.path().join("report"), &[(&data, "dataset")]).is_ok());
}

fn blockdrop_in(cwd: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_blockdrop"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

#[test]
fn export_twice_beside_the_users_reports_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    fs::create_dir_all(reports.join("example")).unwrap();
    fs::write(reports.join("README.md"), "the repository's").unwrap();
    fs::write(reports.join("example/index.md"), "the example").unwrap();
    for round in 0..2 {
        let out = blockdrop_in(dir.path(), &["--export"]);
        assert!(
            out.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(read(reports.join("README.md")), "the repository's");
    assert_eq!(read(reports.join("example/index.md")), "the example");
    assert!(reports.join("default/index.md").is_file());
    assert!(reports.join("default").join(MARKER).is_file());
    // The bundled default's report compares the shipped models, from the binary alone (this
    // folder holds no assets).
    let index = read(reports.join("default/index.md"));
    assert!(
        index.contains("## Models: the shipped models side by side"),
        "{index}"
    );
    for model in [
        "| default.safetensors |",
        "| fmnist-finetuned-g5.safetensors |",
        "| fmnist-finetuned-g10.safetensors |",
    ] {
        assert!(index.contains(model), "{model} missing");
    }
    for figure in ["models_pareto.png", "models_keep_rates.png"] {
        assert!(
            index.contains(&format!("]({figure})"))
                && reports.join("default").join(figure).is_file()
        );
    }
}

#[test]
fn export_into_a_users_folder_or_the_dataset_is_exit_2_and_keeps_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let mine = dir.path().join("mine");
    fs::create_dir(&mine).unwrap();
    fs::write(mine.join("notes.txt"), "keep").unwrap();
    // A copy of the data, so that a regression writes into the temporary folder, never the
    // checkout's fixtures.
    let data = dir.path().join("fmnist-idx");
    fs::create_dir(&data).unwrap();
    for entry in fs::read_dir(fixture("fmnist-idx")).unwrap().flatten() {
        fs::copy(entry.path(), data.join(entry.file_name())).unwrap();
    }
    let data_files = fs::read_dir(&data).unwrap().count();
    let into_data = data.join("report");
    for (out_dir, why) in [
        (&mine, "blockdrop did not write"),
        (&into_data, "is inside"),
    ] {
        let out = blockdrop_in(
            dir.path(),
            &[
                "export",
                "--data",
                data.to_str().unwrap(),
                "--no-profile",
                "--out",
                out_dir.to_str().unwrap(),
            ],
        );
        assert_eq!(out.status.code(), Some(2), "{out_dir:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(why),
            "{out_dir:?}: {stderr} does not say {why:?}"
        );
    }
    assert_eq!(read(mine.join("notes.txt")), "keep");
    assert_eq!(fs::read_dir(&mine).unwrap().count(), 1);
    assert!(!into_data.exists());
    assert_eq!(fs::read_dir(&data).unwrap().count(), data_files);
}

/// Parquet files the `parquet` fuzz target found: one that passes the footer and page checks
/// but on which polars' decoder panics, one whose `index` column has nulls and one whose
/// `policy` column is shorter than the frame (the records reader indexed past their values). Each is that file's error: exit 2, one line.
#[test]
fn a_file_polars_panics_on_is_one_line_and_exit_2() {
    let err = blockdrop::output::frame::read_parquet(&fixture("parquet_polars_panics.parquet"))
        .unwrap_err();
    assert!(err.is_user_error(), "{err}");
    for name in [
        "parquet_nulls_in_index.parquet",
        "parquet_short_policy_column.parquet",
    ] {
        let path = fixture(name);
        let frame = blockdrop::output::frame::read_parquet(&path).unwrap();
        let err = blockdrop::records::schema::from_frame(&frame, &path).unwrap_err();
        assert!(err.to_string().contains("missing values"), "{name}: {err}");
    }
    let out = blockdrop(&["merge", path_str(&fixture("parquet_polars_panics.parquet"))]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
