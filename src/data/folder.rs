//! ImageNet-style folders: one sub-folder per class, images inside decoded on demand. Sorted
//! folder names give the first labels (torchvision's `ImageFolder`); a model's configuration
//! then relabels them by class name ([`crate::data::classes`]). A root holding `val`/`test`
//! and `train` folders is split by them.

use std::path::{Path, PathBuf};

use crate::data::classes::ClassFolders;
use crate::data::{Split, Store};
use crate::error::{Error, Result};

const EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "JPEG"];

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    Ok(entries)
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// The folder of class folders to read for `split`.
pub fn split_root(dir: &Path, split: Split) -> PathBuf {
    let names: &[&str] = match split {
        Split::Test => &["val", "test"],
        Split::Train => &["train"],
    };
    names
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_dir())
        .unwrap_or_else(|| dir.to_path_buf())
}

/// True when `dir` looks like class folders holding images.
pub fn detect(dir: &Path, split: Split) -> bool {
    let root = split_root(dir, split);
    sorted_entries(&root).is_ok_and(|entries| {
        entries
            .iter()
            .filter(|p| p.is_dir())
            .any(|class| sorted_entries(class).is_ok_and(|files| files.iter().any(|f| is_image(f))))
    })
}

/// The split's images, labelled by sorted folder order, and its class folders.
pub fn load(dir: &Path, split: Split) -> Result<(Store, ClassFolders)> {
    let root = split_root(dir, split);
    let mut files = Vec::new();
    let mut labels = Vec::new();
    let mut folder = Vec::new();
    let classes: Vec<PathBuf> = sorted_entries(&root)?
        .into_iter()
        .filter(|p| p.is_dir())
        .collect();
    for (label, class) in classes.iter().enumerate() {
        for file in sorted_entries(class)?.into_iter().filter(|f| is_image(f)) {
            files.push(file);
            labels.push(label as u32);
            folder.push(label as u32);
        }
    }
    if files.is_empty() {
        return Err(Error::bad_input(
            &root,
            "no class folders with .jpg/.jpeg/.png images",
        ));
    }
    let names = classes
        .iter()
        .map(|c| {
            c.file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        })
        .collect();
    Ok((
        Store::Files {
            files,
            labels,
            folder,
        },
        ClassFolders::sorted(names),
    ))
}
