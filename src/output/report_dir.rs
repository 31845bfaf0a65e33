//! Report folders under the output rule (docs/output.md).
//!
//! A report folder carries a marker, [`MARKER`], listing each file blockdrop wrote there with
//! its size and a hash of its contents. A report goes to a folder that does not exist yet, an
//! empty folder, or a marked folder; any other folder is refused. It is built whole in a
//! hidden sibling folder (marked [`PARTIAL`] from its first moment) and then moved in:
//! into a folder that did not exist by one rename that never replaces anything; into an
//! existing folder file by file, each move atomic, replacing or removing only files the marker
//! lists *and that are still as blockdrop wrote them* (same size and hash): a file the user
//! edited, or put under a report file's name, stops the export before anything is replaced.
//! Leftovers of a killed run are recognised by their name and [`PARTIAL`] marker and cleaned
//! up by the next run. "From its first moment" holds because the hidden folder is made under
//! another name ([`INIT_TAG`]), given its marker there, and only then renamed: a kill in between
//! leaves a folder whose name alone says it is blockdrop's and holds at most the empty marker.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{refuse, DEFAULT_REPORT_DIR};
use crate::atomic::{rename_no_replace, sync_dir, write_bytes_atomic};
use crate::error::{Error, Result};

/// In a report folder: `name<TAB>size<TAB>hash` for each file blockdrop wrote there.
pub const MARKER: &str = ".blockdrop-report";
/// In a report being built: says the folder and everything in it is blockdrop's.
pub const PARTIAL: &str = ".blockdrop-partial";
/// Middle of a report-in-progress's folder name: `.{name}.blockdrop-tmp-{pid}`.
const TEMP_TAG: &str = ".blockdrop-tmp-";
/// Middle of the name a report-in-progress's folder is made under, before it holds
/// [`PARTIAL`]: `.{name}.blockdrop-init-{pid}`.
const INIT_TAG: &str = ".blockdrop-init-";
/// A marker lists a report's files, a short line each: far below this.
const MAX_MARKER_BYTES: u64 = 16 << 20;

/// What a marker records of a file: its size and the FNV-1a hash of its contents.
type Fingerprint = (u64, u64);

/// Where a report goes, as found before any work starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Nothing there yet: the built report is renamed into place.
    Absent,
    /// An existing empty folder (kept, with its permissions): the files are moved into it.
    Empty,
    /// A report folder of ours: the marker's files and their fingerprints.
    Report(BTreeMap<String, Fingerprint>),
}

/// A name a marker may list: a plain file name, nothing that climbs out or hides as ours.
fn listable(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0', '\t', '\n'])
        && !name.starts_with(".blockdrop")
}

/// The fingerprint of a regular file (`None` for anything else: a link, a folder, nothing).
fn fingerprint(path: &Path) -> Option<Fingerprint> {
    let meta = fs::symlink_metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    let (mut file, _) = crate::input::open_regular(path).ok()?;
    let mut hash = crate::fingerprint::Fnv::default();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Some((meta.len(), hash.finish()))
}

fn marker_text(files: &BTreeMap<String, Fingerprint>) -> String {
    files
        .iter()
        .map(|(name, (size, hash))| format!("{name}\t{size}\t{hash:016x}\n"))
        .collect()
}

/// Reads a folder's marker.
fn read_marker(dir: &Path) -> Result<BTreeMap<String, Fingerprint>> {
    let path = dir.join(MARKER);
    let text = crate::input::read_text_capped(&path, MAX_MARKER_BYTES, "a report's marker holds")?
        .ok_or_else(|| Error::bad_input(dir, "lost its marker"))?;
    let mut files = BTreeMap::new();
    for line in text.lines() {
        let entry = match line.split('\t').collect::<Vec<_>>().as_slice() {
            [name, size, hash] if listable(name) => size
                .parse::<u64>()
                .ok()
                .zip(u64::from_str_radix(hash, 16).ok())
                .map(|fp| (name.to_string(), fp)),
            _ => None,
        };
        let (name, fp) = entry.ok_or_else(|| {
            refuse(
                &path,
                format!(
                    "holds {line:?}, not a line blockdrop writes; refusing to touch this folder"
                ),
            )
        })?;
        files.insert(name, fp);
    }
    Ok(files)
}

/// Decides whether `out` may receive a report, before any work is done.
pub fn check_report_target(out: &Path) -> Result<Target> {
    let meta = match fs::symlink_metadata(out) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Target::Absent),
        Err(e) => return Err(Error::io(out, e)),
    };
    if !meta.is_dir() {
        return Err(refuse(
            out,
            "exists and is not a folder; choose another report folder",
        ));
    }
    if fs::symlink_metadata(out.join(MARKER)).is_ok_and(|m| m.is_file()) {
        return read_marker(out).map(Target::Report);
    }
    let mut entries = fs::read_dir(out).map_err(|e| Error::io(out, e))?;
    if entries.next().is_none() {
        return Ok(Target::Empty);
    }
    Err(refuse(
        out,
        format!(
            "is a folder blockdrop did not write (it holds files and no {MARKER}); \
             choose a new or empty folder, nothing here is replaced"
        ),
    ))
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

fn temp_prefix(name: &OsStr) -> OsString {
    tagged_prefix(name, TEMP_TAG)
}

fn tagged_prefix(name: &OsStr, tag: &str) -> OsString {
    let mut prefix = OsString::from(".");
    prefix.push(name);
    prefix.push(tag);
    prefix
}

/// The process id in `file_name` after `prefix`, if it is a name of that form.
fn pid_after(file_name: &OsStr, prefix: &OsStr) -> Option<u32> {
    file_name
        .as_encoded_bytes()
        .strip_prefix(prefix.as_encoded_bytes())
        .and_then(|pid| std::str::from_utf8(pid).ok())
        .and_then(|pid| pid.parse::<u32>().ok())
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

/// The staging folders this process is building now. A leftover named with this process's
/// id is a killed run's all the same when it is not among them: in a container every run may
/// get the same id (the first process is 1).
static BUILDING: std::sync::Mutex<BTreeSet<PathBuf>> = std::sync::Mutex::new(BTreeSet::new());

fn building() -> std::sync::MutexGuard<'static, BTreeSet<PathBuf>> {
    BUILDING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Whether the run that named a folder with `pid` is gone.
fn gone(pid: u32, folder: &Path) -> bool {
    if pid == std::process::id() {
        return !building().contains(folder);
    }
    !crate::lock::alive(pid)
}

/// Removes reports-in-progress for `out` left by killed runs: built folders carrying
/// [`PARTIAL`], and folders killed while being made (their empty marker, then themselves;
/// one that holds anything else is left alone).
fn clean_leftovers(parent: &Path, name: &OsStr) {
    let (temp, init) = (temp_prefix(name), tagged_prefix(name, INIT_TAG));
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let path = entry.path();
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if let Some(pid) = pid_after(&file_name, &temp) {
            if gone(pid, &path) && path.join(PARTIAL).is_file() {
                remove_built(&path);
            }
        } else if let Some(pid) = pid_after(&file_name, &init) {
            let marker = path.join(PARTIAL);
            let empty_marker =
                fs::symlink_metadata(&marker).is_ok_and(|m| m.is_file() && m.len() == 0);
            if gone(pid, &path) {
                if empty_marker {
                    let _ = fs::remove_file(&marker);
                }
                // Fails, and keeps the folder, when anything else is inside.
                let _ = fs::remove_dir(&path);
            }
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
        let pid = std::process::id().to_string();
        let mut init_name = tagged_prefix(&name, INIT_TAG);
        init_name.push(&pid);
        let mut temp_name = temp_prefix(&name);
        temp_name.push(&pid);
        let (init, dir) = (parent.join(init_name), parent.join(temp_name));
        // Registered before it exists, so that no export in this process takes it for a
        // leftover; unregistered when the staging is dropped.
        building().insert(init.clone());
        building().insert(dir.clone());
        let registered = [init.clone(), dir.clone()];
        let unregister = move || {
            for folder in &registered {
                building().remove(folder);
            }
        };
        // create_dir fails on anything already there: a planted folder or link is never used.
        // A failure (a read-only disk) names the folder the user asked for.
        fs::create_dir(&init).map_err(|e| {
            unregister();
            Error::io(out, e)
        })?;
        let marked = fs::write(init.join(PARTIAL), b"")
            .map_err(|e| Error::io(init.join(PARTIAL), e))
            .and_then(|()| rename_no_replace(&init, &dir));
        building().remove(&init);
        if let Err(e) = marked {
            let _ = fs::remove_file(init.join(PARTIAL));
            let _ = fs::remove_dir(&init);
            unregister();
            return Err(e);
        }
        Ok(Staging {
            out: out.to_path_buf(),
            parent,
            dir,
            target,
            published: false,
        })
    }

    /// Builds a report in a staging folder with `write(folder)` and publishes it to `out`. An
    /// error names the file under `out` the user asked for, not the hidden folder.
    pub fn build<T>(out: &Path, write: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
        let staging = Staging::begin(out)?;
        let written = write(&staging.dir).map_err(|e| staging.for_user(e))?;
        staging.publish()?;
        Ok(written)
    }

    /// `error` with a path inside the staging folder replaced by the same path under `out`.
    fn for_user(&self, error: Error) -> Error {
        let shown = |path: PathBuf| match path.strip_prefix(&self.dir) {
            Ok(rest) => self.out.join(rest),
            Err(_) => path,
        };
        match error {
            Error::Io { path, error } => Error::Io {
                path: shown(path),
                error,
            },
            Error::BadInput { path, problem } => Error::BadInput {
                path: shown(path),
                problem,
            },
            Error::Report(text) => {
                let staged = self.dir.to_string_lossy().into_owned();
                Error::Report(text.replace(&staged, &self.out.to_string_lossy()))
            }
            other => other,
        }
    }

    /// The files written so far (everything but the markers) and their fingerprints.
    fn written(&self) -> Result<BTreeMap<String, Fingerprint>> {
        let mut files = BTreeMap::new();
        for entry in fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))? {
            let entry = entry.map_err(|e| Error::io(&self.dir, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if let Some(fp) = listable(&name)
                .then(|| fingerprint(&entry.path()))
                .flatten()
            {
                files.insert(name, fp);
            }
        }
        Ok(files)
    }

    /// Moves the finished report to its folder, replacing only what blockdrop wrote there.
    pub fn publish(mut self) -> Result<()> {
        let files = self.written()?;
        // The target may have changed since `begin`: look again.
        let target = check_report_target(&self.out)?;
        if target != self.target {
            return Err(refuse(
                &self.out,
                "changed while the report was being built; nothing was replaced",
            ));
        }
        match &target {
            Target::Absent => {
                write_bytes_atomic(&self.dir.join(MARKER), marker_text(&files).as_bytes())?;
                rename_no_replace(&self.dir, &self.out)?;
                // After the rename: a kill before it leaves a folder the next run cleans up.
                let _ = fs::remove_file(self.out.join(PARTIAL));
                sync_dir(&self.parent);
            }
            Target::Empty => self.move_in(&files, &BTreeMap::new())?,
            Target::Report(previous) => self.move_in(&files, previous)?,
        }
        self.published = true;
        Ok(())
    }

    /// Moves `files` into the existing folder whose marker lists `previous`, after checking
    /// that every file it would replace or remove is still as blockdrop wrote it.
    fn move_in(
        &self,
        files: &BTreeMap<String, Fingerprint>,
        previous: &BTreeMap<String, Fingerprint>,
    ) -> Result<()> {
        let out = &self.out;
        for (name, recorded) in previous {
            let path = out.join(name);
            let present = fs::symlink_metadata(&path).is_ok();
            if present && fingerprint(&path).as_ref() != Some(recorded) {
                return Err(refuse(
                    &path,
                    "was changed since blockdrop wrote it (or is not a plain file); move it away to export here",
                ));
            }
        }
        for name in files.keys() {
            let path = out.join(name);
            if !previous.contains_key(name) && fs::symlink_metadata(&path).is_ok() {
                return Err(refuse(
                    &path,
                    "was not written by blockdrop and the report would replace it; move it away",
                ));
            }
        }
        // First list both old and new files, so a kill mid-way leaves every file of ours
        // listed; then move, then drop what the new report no longer has.
        let mut union = previous.clone();
        union.extend(files.iter().map(|(n, fp)| (n.clone(), *fp)));
        write_bytes_atomic(&out.join(MARKER), marker_text(&union).as_bytes())?;
        for name in files.keys() {
            let to = out.join(name);
            fs::rename(self.dir.join(name), &to).map_err(|e| Error::io(&to, e))?;
        }
        let stale: BTreeSet<&String> = previous
            .keys()
            .filter(|n| !files.contains_key(*n))
            .collect();
        for name in stale {
            let path = out.join(name);
            if fingerprint(&path).as_ref() == previous.get(name) {
                let _ = fs::remove_file(&path);
            }
        }
        write_bytes_atomic(&out.join(MARKER), marker_text(files).as_bytes())?;
        sync_dir(out);
        remove_built(&self.dir);
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.published {
            remove_built(&self.dir);
        }
        building().remove(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a run killed at each step of `begin` and of the build leaves, cleaned by the next
    /// run; a folder under one of the names that holds a user's file is left alone.
    #[test]
    fn a_run_killed_at_any_step_leaves_what_the_next_one_cleans() {
        let parent = tempfile::tempdir().unwrap();
        let out = parent.path().join("report");
        let dead = u32::MAX; // no process has it
        let named = |tag: &str| parent.path().join(format!(".report{tag}{dead}"));
        // Killed after create_dir: an empty folder under the init name.
        fs::create_dir(named(INIT_TAG)).unwrap();
        let staging = Staging::begin(&out).unwrap();
        assert!(!named(INIT_TAG).exists());
        drop(staging);
        // Killed after the marker was written, before the rename.
        fs::create_dir(named(INIT_TAG)).unwrap();
        fs::write(named(INIT_TAG).join(PARTIAL), b"").unwrap();
        // Killed mid-build: a marked folder with some files.
        fs::create_dir(named(TEMP_TAG)).unwrap();
        fs::write(named(TEMP_TAG).join(PARTIAL), b"").unwrap();
        fs::write(named(TEMP_TAG).join("half.png"), b"\x89PNG").unwrap();
        let staging = Staging::begin(&out).unwrap();
        assert!(!named(INIT_TAG).exists() && !named(TEMP_TAG).exists());
        assert!(
            staging.dir.join(PARTIAL).is_file(),
            "marked from its first moment"
        );
        drop(staging);
        // A leftover under this process's own id (a container's runs may all get the same one)
        // is a killed run's too, unless this process is building it.
        let own = parent
            .path()
            .join(format!(".report{TEMP_TAG}{}", std::process::id()));
        fs::create_dir(&own).unwrap();
        fs::write(own.join(PARTIAL), b"").unwrap();
        let staging = Staging::begin(&out).unwrap();
        assert_eq!(
            staging.dir, own,
            "the leftover was cleaned and its name taken again"
        );
        // A second export to the same place in this process fails; the first one's folder stays.
        assert!(Staging::begin(&out).is_err());
        assert!(
            staging.dir.join(PARTIAL).is_file(),
            "a folder being built stays"
        );
        drop(staging);
        // A user's file in a folder under the init name: kept, with the folder.
        fs::create_dir(named(INIT_TAG)).unwrap();
        fs::write(named(INIT_TAG).join("notes.txt"), b"mine").unwrap();
        drop(Staging::begin(&out).unwrap());
        assert_eq!(
            fs::read(named(INIT_TAG).join("notes.txt")).unwrap(),
            b"mine"
        );
        let left: Vec<_> = fs::read_dir(parent.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left.len(), 1, "{left:?}");
    }

    #[test]
    fn marker_names_cannot_climb_out_or_hide() {
        assert!(listable("index.md"));
        assert!(!listable("../x"));
        assert!(!listable("a/b"));
        assert!(!listable(".."));
        assert!(!listable(".blockdrop-report"));
        assert!(!listable(""));
        assert!(!listable("a\tb"));
    }
}
