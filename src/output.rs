//! The output rule (docs/output.md): blockdrop never deletes or overwrites a file it did not
//! write.
//!
//! A report folder carries a marker, [`MARKER`], listing the files blockdrop wrote there. A
//! report goes to a folder that does not exist yet, an empty folder, or a folder with a marker;
//! any other folder is refused. A report is built whole in a hidden sibling folder (marked
//! [`PARTIAL`] from its first moment) and then moved in: into a new or empty folder by one
//! rename; into a marked folder file by file, each move atomic, replacing only the files the
//! marker lists and keeping everything else. Leftovers of a killed run are recognised by
//! their name and [`PARTIAL`] marker and cleaned up by the next run.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use crate::atomic::{sync_dir, write_bytes_atomic};
use crate::error::{Error, Result};

/// Where `--export` and the terminal app's `e` write the bundled default's report: a folder of
/// its own, so `reports/` itself may hold the user's (or this repository's) files.
pub const DEFAULT_REPORT_DIR: &str = "reports/default";

/// In a report folder: the names of the files blockdrop wrote there, one per line.
pub const MARKER: &str = ".blockdrop-report";
/// In a report being built: says the folder and everything in it is blockdrop's.
pub const PARTIAL: &str = ".blockdrop-partial";
/// Middle of a report-in-progress's folder name: `.{name}.blockdrop-tmp-{pid}`.
const TEMP_TAG: &str = ".blockdrop-tmp-";

/// Where a report goes, as found before any work starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Nothing there yet, or an empty folder: the built report is renamed into place.
    Fresh,
    /// A report folder of ours; the marker lists these files.
    Report(BTreeSet<String>),
}

fn refuse(path: &Path, problem: impl Into<String>) -> Error {
    Error::bad_input(path, problem)
}

/// A name a marker may list: a plain file name, nothing that climbs out or hides as ours.
fn listable(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && !name.starts_with(".blockdrop")
}

/// Reads a folder's marker.
fn read_marker(dir: &Path) -> Result<BTreeSet<String>> {
    let path = dir.join(MARKER);
    let text = fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let names: BTreeSet<String> = text.lines().map(str::to_string).collect();
    if let Some(bad) = names.iter().find(|n| !listable(n)) {
        return Err(refuse(
            &path,
            format!("lists {bad:?}, which blockdrop never writes; refusing to touch this folder"),
        ));
    }
    Ok(names)
}

/// Decides whether `out` may receive a report, before any work is done.
pub fn check_report_target(out: &Path) -> Result<Target> {
    let meta = match fs::symlink_metadata(out) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Target::Fresh),
        Err(e) => return Err(Error::io(out, e)),
    };
    if !meta.is_dir() {
        return Err(refuse(
            out,
            "exists and is not a folder; choose another report folder",
        ));
    }
    if out.join(MARKER).is_file() {
        return read_marker(out).map(Target::Report);
    }
    let mut entries = fs::read_dir(out).map_err(|e| Error::io(out, e))?;
    if entries.next().is_none() {
        return Ok(Target::Fresh);
    }
    Err(refuse(
        out,
        format!(
            "is a folder blockdrop did not write (it holds files and no {MARKER}); \
             choose a new or empty folder, nothing here is replaced"
        ),
    ))
}

/// Refuses to replace an existing `path` unless `is_ours` recognises it as the kind of file
/// blockdrop writes there (a records table with the same columns, a profile, a model): a
/// user's file under the same name is never overwritten.
pub fn check_replaceable(path: &Path, is_ours: impl FnOnce(&Path) -> bool) -> Result<()> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
        Ok(meta) if meta.is_file() && is_ours(path) => Ok(()),
        Ok(_) => Err(refuse(
            path,
            "exists and is not a file blockdrop writes here; choose another name (nothing was replaced)",
        )),
    }
}

/// The nearest existing ancestor of `path`, canonicalised, with the rest appended.
fn resolve(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing = absolute.as_path();
    let mut rest: Vec<&std::ffi::OsStr> = Vec::new();
    loop {
        if let Ok(canonical) = existing.canonicalize() {
            return rest.iter().rev().fold(canonical, |p, part| p.join(part));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name);
                existing = parent;
            }
            _ => return absolute,
        }
    }
}

/// Refuses an output folder equal to or inside one of `inputs` (`(folder, what it is)`): a
/// report never lands among the files it reads.
pub fn refuse_inside(out: &Path, inputs: &[(&Path, &str)]) -> Result<()> {
    let out_resolved = resolve(out);
    for (input, what) in inputs {
        let input_resolved = resolve(input);
        if out_resolved.starts_with(&input_resolved) {
            return Err(refuse(
                out,
                format!(
                    "is inside the {what} folder {}; choose a report folder outside it",
                    input.display()
                ),
            ));
        }
    }
    Ok(())
}

/// The parent folder of `out` and its file name.
fn parent_and_name(out: &Path) -> Result<(PathBuf, OsString)> {
    let name = out
        .file_name()
        .ok_or_else(|| refuse(out, "is not a folder name a report can be written to"))?
        .to_os_string();
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    Ok((parent, name))
}

fn temp_prefix(name: &OsString) -> OsString {
    let mut prefix = OsString::from(".");
    prefix.push(name);
    prefix.push(TEMP_TAG);
    prefix
}

/// Removes a folder blockdrop built: its regular files, then the folder. Only called on
/// folders carrying [`PARTIAL`] or emptied by a publish.
fn remove_built(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
    let _ = fs::remove_dir(dir);
}

/// Removes reports-in-progress for `out` left by killed runs.
fn clean_leftovers(parent: &Path, name: &OsString) {
    let prefix = temp_prefix(name);
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name
            .to_str()
            .zip(prefix.to_str())
            .and_then(|(f, p)| f.strip_prefix(p))
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir && !crate::lock::alive(pid) && path.join(PARTIAL).is_file() {
            remove_built(&path);
        }
    }
}

/// A report folder being built; dropped unpublished, it removes itself.
pub struct Staging {
    out: PathBuf,
    parent: PathBuf,
    pub dir: PathBuf,
    target: Target,
    published: bool,
}

impl Staging {
    /// Checks `out` (see [`check_report_target`]), cleans leftovers of killed runs and
    /// creates the hidden folder the report is built in.
    pub fn begin(out: &Path) -> Result<Staging> {
        let target = check_report_target(out)?;
        let (parent, name) = parent_and_name(out)?;
        if !parent.is_dir() {
            // Only the default's `reports/` is made; a mistyped parent of --out is an error.
            if out != Path::new(DEFAULT_REPORT_DIR) {
                return Err(refuse(&parent, "output folder's parent does not exist"));
            }
            fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
        }
        clean_leftovers(&parent, &name);
        let mut temp_name = temp_prefix(&name);
        temp_name.push(std::process::id().to_string());
        let dir = parent.join(temp_name);
        // create_dir fails on anything already there: a planted folder or link is never used.
        fs::create_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        let staging = Staging {
            out: out.to_path_buf(),
            parent,
            dir,
            target,
            published: false,
        };
        write_bytes_atomic(&staging.dir.join(PARTIAL), b"")?;
        Ok(staging)
    }

    /// The files written so far (everything but the markers).
    fn written(&self) -> Result<BTreeSet<String>> {
        let mut names = BTreeSet::new();
        for entry in fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))? {
            let entry = entry.map_err(|e| Error::io(&self.dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if listable(&name) && entry.file_type().is_ok_and(|t| t.is_file()) {
                names.insert(name);
            }
        }
        Ok(names)
    }

    /// Moves the finished report to its folder, replacing only what blockdrop wrote there.
    pub fn publish(mut self) -> Result<()> {
        let names = self.written()?;
        let marker_text =
            |names: &BTreeSet<String>| names.iter().map(|n| format!("{n}\n")).collect::<String>();
        // The target may have changed since `begin`: look again.
        let target = check_report_target(&self.out)?;
        if target != self.target {
            return Err(refuse(
                &self.out,
                "changed while the report was being built; nothing was replaced",
            ));
        }
        match &target {
            Target::Fresh => {
                write_bytes_atomic(&self.dir.join(MARKER), marker_text(&names).as_bytes())?;
                fs::remove_file(self.dir.join(PARTIAL)).map_err(|e| Error::io(&self.dir, e))?;
                fs::rename(&self.dir, &self.out).map_err(|e| Error::io(&self.out, e))?;
                sync_dir(&self.parent);
            }
            Target::Report(previous) => {
                if let Some(clash) = names
                    .iter()
                    .find(|n| !previous.contains(*n) && self.out.join(n).exists())
                {
                    return Err(refuse(
                        &self.out.join(clash),
                        "was not written by blockdrop and would be replaced by the report; move it away",
                    ));
                }
                // First list both old and new files, so a kill mid-way leaves every file of
                // ours listed; then move, then drop what the new report no longer has.
                let union: BTreeSet<String> = previous.union(&names).cloned().collect();
                write_bytes_atomic(&self.out.join(MARKER), marker_text(&union).as_bytes())?;
                for name in &names {
                    let to = self.out.join(name);
                    fs::rename(self.dir.join(name), &to).map_err(|e| Error::io(&to, e))?;
                }
                for stale in previous.difference(&names) {
                    let path = self.out.join(stale);
                    if fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
                        let _ = fs::remove_file(&path);
                    }
                }
                write_bytes_atomic(&self.out.join(MARKER), marker_text(&names).as_bytes())?;
                sync_dir(&self.out);
                remove_built(&self.dir);
            }
        }
        self.published = true;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.published {
            remove_built(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_names_cannot_climb_out_or_hide() {
        assert!(listable("index.md"));
        assert!(!listable("../x"));
        assert!(!listable("a/b"));
        assert!(!listable(".."));
        assert!(!listable(".blockdrop-report"));
        assert!(!listable(""));
    }
}
