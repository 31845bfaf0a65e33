//! Labels of class folders by class *name*: a folder of class folders is labelled by the
//! model configuration's class names where it uses them, whatever subset of the classes is
//! present; otherwise by sorted folder order (torchvision's `ImageFolder`), which is only
//! safe when every class has its folder. Never a silent relabelling (docs/inputs.md,
//! "Class folders").

use crate::config::Config;

/// The class folders of one split, and the label each folder's images carry.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassFolders {
    /// Folder names, sorted as read.
    pub names: Vec<String>,
    /// The label of each folder, index for index with `names`.
    pub labels: Vec<u32>,
}

/// How a split's folders were labelled, for a line the user sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Labelling {
    /// By the configuration's class names; `present` of its `classes` have a folder.
    ByName { present: usize, classes: usize },
    /// By the number each folder is named (`0`, `1`, … `99`): a numbered subset keeps its
    /// labels too.
    ByNumber,
    /// By sorted folder order: no folder is named as one of the configuration's classes, and
    /// there is one folder per class.
    ByOrder,
}

/// A name as compared: lower case, letters and digits only (`T-shirt/top` ↔ `tshirt_top`).
fn normalised(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// True when `labels` holds no label twice.
fn distinct(labels: &[u32]) -> bool {
    let mut seen = labels.to_vec();
    seen.sort_unstable();
    seen.dedup();
    seen.len() == labels.len()
}

/// The label of each of `folders` under `config`, or why none can be given.
pub fn assign(folders: &[String], config: &Config) -> Result<(Vec<u32>, Labelling), String> {
    let known = config.class_set.names();
    let classes = config.classes();
    let known_norm: Vec<String> = known.iter().map(|n| normalised(n)).collect();
    let named: Vec<Option<u32>> = folders
        .iter()
        .map(|f| {
            let n = normalised(f);
            known_norm.iter().position(|k| *k == n).map(|i| i as u32)
        })
        .collect();
    let matched = named.iter().flatten().count();
    if matched == folders.len() && matched > 0 {
        let labels: Vec<u32> = named.into_iter().flatten().collect();
        if distinct(&labels) {
            let present = labels.len();
            return Ok((labels, Labelling::ByName { present, classes }));
        }
        return Err(format!(
            "two class folders name the same class of config {} (names compare without case \
             and punctuation)",
            config.name
        ));
    }
    if matched > 0 {
        // Some folders are named as classes and others not (`plane` beside `bird`): sorted
        // order would give the named ones other labels than their names say.
        let strays: Vec<String> = folders
            .iter()
            .zip(&named)
            .filter(|(_, n)| n.is_none())
            .take(3)
            .map(|(f, _)| format!("'{}'", crate::error::shown(f, 40)))
            .collect();
        return Err(format!(
            "names {matched} of its {} class folders as config {}'s classes but not {}: \
             rename them to the class names ({}{}) so that every label follows its name",
            folders.len(),
            config.name,
            strays.join(", "),
            known[..known.len().min(4)].join(", "),
            if known.len() > 4 { ", …" } else { "" }
        ));
    }
    let numbered: Option<Vec<u32>> = folders
        .iter()
        .map(|f| f.parse::<u32>().ok().filter(|&n| (n as usize) < classes))
        .collect();
    if let Some(labels) = numbered.filter(|l| !l.is_empty() && distinct(l)) {
        return Ok((labels, Labelling::ByNumber));
    }
    if folders.len() == classes {
        return Ok(((0..classes as u32).collect(), Labelling::ByOrder));
    }
    let stranger = folders
        .iter()
        .find(|f| !known_norm.contains(&normalised(f)))
        .map_or_else(String::new, |f| format!("'{}'", crate::error::shown(f, 40)));
    let names = if known.is_empty() {
        format!("config {} has no known class names", config.name)
    } else {
        format!(
            "{stranger} is not one of config {}'s class names ({}{})",
            config.name,
            known[..known.len().min(4)].join(", "),
            if known.len() > 4 { ", …" } else { "" }
        )
    };
    Err(format!(
        "holds {} class folders, but config {} has {classes} classes and {names}: labels \
         would follow the folders present, not the classes. Give one folder per class, or \
         name the folders as the configuration's classes",
        folders.len(),
        config.name,
    ))
}

impl ClassFolders {
    /// Folders read in sorted order, labelled by that order until [`ClassFolders::relabel`].
    pub fn sorted(names: Vec<String>) -> ClassFolders {
        let labels = (0..names.len() as u32).collect();
        ClassFolders { names, labels }
    }

    /// Labels the folders for `config`; returns how, and the old label → new label map.
    pub fn relabel(&mut self, config: &Config) -> Result<(Labelling, Vec<u32>), String> {
        let (labels, how) = assign(&self.names, config)?;
        let old_to_new = labels.clone();
        self.labels = labels;
        Ok((how, old_to_new))
    }

    /// True when the folders carry the labels `config` gives them.
    pub fn labelled_for(&self, config: &Config) -> bool {
        assign(&self.names, config).is_ok_and(|(labels, _)| labels == self.labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folders(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_subset_of_cifar_classes_keeps_cifar_labels() {
        let c = Config::by_name("R32_C10").unwrap();
        let (labels, how) = assign(&folders(&["bird", "cat", "truck"]), &c).unwrap();
        assert_eq!(labels, vec![2, 3, 9]);
        assert_eq!(
            how,
            Labelling::ByName {
                present: 3,
                classes: 10
            }
        );
    }

    #[test]
    fn fashion_names_compare_without_punctuation() {
        let c = Config::by_name("R32_FMNIST").unwrap();
        let (labels, _) = assign(&folders(&["Ankle_boot", "t-shirt_top"]), &c).unwrap();
        assert_eq!(labels, vec![9, 0]);
    }

    #[test]
    fn unknown_names_need_one_folder_per_class() {
        let c = Config::by_name("R32_C10").unwrap();
        let ten: Vec<String> = (0..10).map(|i| format!("c{i}")).collect();
        let (labels, how) = assign(&ten, &c).unwrap();
        assert_eq!(labels, (0..10).collect::<Vec<u32>>());
        assert_eq!(how, Labelling::ByOrder);
        let err = assign(&ten[..8], &c).unwrap_err();
        assert!(
            err.contains("8 class folders") && err.contains("'c0'"),
            "{err}"
        );
        // An extra folder beside the ten CIFAR names matches neither rule.
        let mut eleven = folders(crate::config::ClassSet::Cifar10.names());
        eleven.push("unsorted".into());
        let err = assign(&eleven, &c).unwrap_err();
        assert!(err.contains("'unsorted'"), "{err}");
    }

    #[test]
    fn some_folders_named_as_classes_and_some_not_are_refused() {
        let c = Config::by_name("R32_C10").unwrap();
        // The PyTorch tutorial's short names: sorted order would shift 7 of 10 labels.
        let tutorial = folders(&[
            "bird", "car", "cat", "deer", "dog", "frog", "horse", "plane", "ship", "truck",
        ]);
        let err = assign(&tutorial, &c).unwrap_err();
        assert!(err.contains("'car'") && err.contains("'plane'"), "{err}");
    }

    #[test]
    fn numbered_folders_are_labelled_by_number() {
        let c = Config::by_name("R32_C100").unwrap();
        let (labels, how) = assign(&folders(&["10", "2", "99"]), &c).unwrap();
        assert_eq!((labels, how), (vec![10, 2, 99], Labelling::ByNumber));
        assert!(
            assign(&folders(&["100"]), &c).is_err(),
            "beyond the classes"
        );
    }

    #[test]
    fn two_folders_for_one_class_are_refused() {
        let c = Config::by_name("R32_C10").unwrap();
        assert!(assign(&folders(&["cat", "Cat"]), &c).is_err());
    }
}
