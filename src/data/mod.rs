//! Datasets, detected from a path: IDX files (MNIST / Fashion-MNIST), CIFAR-10/100 in the
//! binary and python versions, or ImageNet-style class folders.

pub mod cifar;
pub mod classes;
pub mod decode_budget;
pub mod folder;
pub mod idx;
pub mod prefetch;
pub mod transform;

use std::fmt;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use crate::config::Config;
use crate::error::{Error, Result};
pub use transform::Image;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Split::Train => "train",
            Split::Test => "test",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Idx,
    Cifar(cifar::Variant),
    ImageFolder,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Format::Idx => f.write_str("IDX"),
            Format::Cifar(cifar::Variant::Cifar10Bin) => f.write_str("CIFAR-10 binary"),
            Format::Cifar(cifar::Variant::Cifar10Py) => f.write_str("CIFAR-10 python"),
            Format::Cifar(cifar::Variant::Cifar100Bin) => f.write_str("CIFAR-100 binary"),
            Format::Cifar(cifar::Variant::Cifar100Py) => f.write_str("CIFAR-100 python"),
            Format::ImageFolder => f.write_str("image folders"),
        }
    }
}

/// Where a dataset's images are: decoded in memory (IDX, CIFAR) or files read on demand.
#[derive(Debug, Clone)]
pub enum Store {
    InMemory {
        /// Planar 8-bit pixels, image after image.
        pixels: Vec<u8>,
        shape: (usize, usize, usize),
        labels: Vec<u32>,
    },
    Files {
        files: Vec<PathBuf>,
        labels: Vec<u32>,
        /// Each file's class folder (an index into the dataset's [`classes::ClassFolders`]).
        folder: Vec<u32>,
    },
}

#[derive(Debug, Clone)]
pub struct Dataset {
    pub path: PathBuf,
    pub format: Format,
    pub split: Split,
    store: Store,
    /// Class folders, for a folder of class folders: labels follow a configuration's class
    /// names once [`Dataset::label_for`] has run.
    folders: Option<classes::ClassFolders>,
    /// The configuration the class folders were labelled for.
    labelled_for: Option<String>,
}

/// Well-known sub-folder names a user may point at the parent of.
const KNOWN_SUBFOLDERS: [&str; 5] = [
    "cifar-10-batches-bin",
    "cifar-10-batches-py",
    "cifar-100-binary",
    "cifar-100-python",
    "fashion-mnist",
];

/// Images may have at most this many pixels (ImageNet's largest have about 12 million),
/// checked from the header before decoding; each copy on the way to the transform (decoded,
/// RGB, planar) is then at most 120 MB. Decoders may allocate at most `MAX_IMAGE_BYTES`, and
/// all decoder threads together hold at most `decode_budget::TOTAL_BYTES`.
const MAX_IMAGE_PIXELS: u64 = 40_000_000;
const MAX_IMAGE_BYTES: u64 = 256 << 20;

/// Decodes one image file within the limits above, with its share of the decoders' budget.
fn decode_image_held(path: &Path) -> Result<(Image, decode_budget::Reservation)> {
    let bytes = crate::input::read_file(path)?;
    decode_image_bytes_held(path, &bytes)
}

/// Decodes an image file's bytes within the limits above; `path` names it in errors.
pub fn decode_image_bytes(path: &Path, bytes: &[u8]) -> Result<Image> {
    decode_image_bytes_held(path, bytes).map(|(image, _)| image)
}

/// [`decode_image_bytes`], returning the decode's reservation of the budget all decoders share
/// (`decode_budget`): held until the image has been transformed, it bounds what every decoder
/// thread together holds, not each one.
fn decode_image_bytes_held(
    path: &Path,
    bytes: &[u8],
) -> Result<(Image, decode_budget::Reservation)> {
    let bad = |e: &dyn fmt::Display| Error::bad_input(path, format!("cannot decode image: {e}"));
    let reader = || {
        image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| Error::io(path, e))
    };
    let (w, h) = reader()?.into_dimensions().map_err(|e| bad(&e))?;
    if w == 0 || h == 0 {
        return Err(bad(&format!("the image is {w}x{h} pixels: empty")));
    }
    if u64::from(w) * u64::from(h) > MAX_IMAGE_PIXELS {
        return Err(bad(&format!(
            "the image is {w}x{h} pixels, more than the {MAX_IMAGE_PIXELS} blockdrop reads"
        )));
    }
    let reservation = decode_budget::reserve(w, h);
    let mut reader = reader()?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_IMAGE_BYTES);
    reader.limits(limits);
    // Decoders of malformed files have panicked in the past; a panic is this file's error.
    let decoded = crate::foreign_panic::catch(std::panic::AssertUnwindSafe(|| reader.decode()))
        .map_err(|_| bad(&"the decoder panicked on this file"))?
        .map_err(|e| match e {
            image::ImageError::Limits(_) => bad(&format!(
                "decoding the image needs more than {} MiB",
                MAX_IMAGE_BYTES >> 20
            )),
            e => bad(&e),
        })?;
    Ok((Image::from_rgb(&decoded.into_rgb8()), reservation))
}

const EXPECTED: &str = "expected IDX files (t10k-images-idx3-ubyte[.gz], …), a CIFAR folder \
(cifar-10-batches-bin, cifar-10-batches-py, cifar-100-binary, cifar-100-python) or a folder of class folders";

fn detect(dir: &Path, split: Split) -> Option<Format> {
    if idx::find(dir, Split::Test, "images-idx3-ubyte").is_some()
        || idx::find(dir, Split::Train, "images-idx3-ubyte").is_some()
    {
        Some(Format::Idx)
    } else if let Some(v) = cifar::Variant::detect(dir) {
        Some(Format::Cifar(v))
    } else if folder::detect(dir, split) {
        Some(Format::ImageFolder)
    } else {
        None
    }
}

impl Dataset {
    /// Opens the `split` of the dataset at `path`, detecting its format.
    pub fn open(path: &Path, split: Split) -> Result<Dataset> {
        if !path.exists() {
            return Err(Error::bad_input(
                path,
                format!("no such file or folder; {EXPECTED}"),
            ));
        }
        if !path.is_dir() {
            return Err(Error::bad_input(
                path,
                format!("is a file, not a dataset folder; {EXPECTED}"),
            ));
        }
        let (dir, format) = match detect(path, split) {
            Some(format) => (path.to_path_buf(), format),
            None => KNOWN_SUBFOLDERS
                .iter()
                .map(|name| path.join(name))
                .find_map(|sub| detect(&sub, split).map(|f| (sub, f)))
                .ok_or_else(|| {
                    Error::bad_input(path, format!("no dataset recognised; {EXPECTED}"))
                })?,
        };
        let (store, folders) = match format {
            Format::Idx => (idx::load(&dir, split)?, None),
            Format::Cifar(variant) => (cifar::load(&dir, variant, split)?, None),
            Format::ImageFolder => {
                let (store, folders) = folder::load(&dir, split)?;
                (store, Some(folders))
            }
        };
        Ok(Dataset {
            path: dir,
            format,
            split,
            store,
            folders,
            labelled_for: None,
        })
    }

    /// Opens the `split` at `path` labelled for `config` (see [`Dataset::label_for`]).
    pub fn open_for(path: &Path, split: Split, config: &Config) -> Result<Dataset> {
        let mut dataset = Dataset::open(path, split)?;
        dataset.label_for(config)?;
        Ok(dataset)
    }

    /// Labels a folder of class folders by `config`'s class names, whatever subset of them
    /// is present, or by folder order when the names are not the configuration's and there is
    /// one folder per class; anything else is refused. Other formats carry their own labels.
    /// Returns how the folders were labelled.
    pub fn label_for(&mut self, config: &Config) -> Result<Option<classes::Labelling>> {
        let Some(folders) = &mut self.folders else {
            return Ok(None);
        };
        let root = folder::split_root(&self.path, self.split);
        let (how, map) = folders
            .relabel(config)
            .map_err(|problem| Error::bad_input(&root, problem))?;
        if let Store::Files { labels, folder, .. } = &mut self.store {
            for (label, &f) in labels.iter_mut().zip(folder.iter()) {
                *label = map[f as usize];
            }
        }
        self.labelled_for = Some(config.name.clone());
        Ok(Some(how))
    }

    /// The other split of the same data, labelled as this one (train for test, test for train).
    pub fn open_other(&self) -> Result<Dataset> {
        let other = match self.split {
            Split::Test => Split::Train,
            Split::Train => Split::Test,
        };
        let mut dataset = Dataset::open(&self.path, other)?;
        if let Some(name) = &self.labelled_for {
            dataset.label_for(&Config::by_name(name)?)?;
        }
        Ok(dataset)
    }

    /// The class folders, for a folder of class folders.
    pub fn class_folders(&self) -> Option<&classes::ClassFolders> {
        self.folders.as_ref()
    }

    /// The images `indices` as a dataset of their own (a held-out validation split).
    pub fn subset(&self, indices: &[usize]) -> Result<Dataset> {
        let out_of_range = |i: usize| {
            Error::bad_input(
                &self.path,
                format!("no image {i}: the dataset holds {}", self.len()),
            )
        };
        let store = match &self.store {
            Store::InMemory {
                pixels,
                shape,
                labels,
            } => {
                let size = shape.0 * shape.1 * shape.2;
                let mut picked = Vec::with_capacity(indices.len() * size);
                let mut picked_labels = Vec::with_capacity(indices.len());
                for &i in indices {
                    let label = *labels.get(i).ok_or_else(|| out_of_range(i))?;
                    let image = pixels
                        .get(i * size..(i + 1) * size)
                        .ok_or_else(|| out_of_range(i))?;
                    picked.extend_from_slice(image);
                    picked_labels.push(label);
                }
                Store::InMemory {
                    pixels: picked,
                    shape: *shape,
                    labels: picked_labels,
                }
            }
            Store::Files {
                files,
                labels,
                folder,
            } => {
                let mut picked = (Vec::new(), Vec::new(), Vec::new());
                for &i in indices {
                    let file = files.get(i).ok_or_else(|| out_of_range(i))?;
                    picked.0.push(file.clone());
                    picked.1.push(labels[i]);
                    picked.2.push(folder[i]);
                }
                Store::Files {
                    files: picked.0,
                    labels: picked.1,
                    folder: picked.2,
                }
            }
        };
        Ok(Dataset {
            path: self.path.clone(),
            format: self.format,
            split: self.split,
            store,
            folders: self.folders.clone(),
            labelled_for: self.labelled_for.clone(),
        })
    }

    /// A dataset already decoded (e.g. the bundled sample); `path` names it in messages.
    pub fn from_store(path: PathBuf, format: Format, split: Split, store: Store) -> Dataset {
        Dataset {
            path,
            format,
            split,
            store,
            folders: None,
            labelled_for: None,
        }
    }

    pub fn len(&self) -> usize {
        self.labels().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn labels(&self) -> &[u32] {
        match &self.store {
            Store::InMemory { labels, .. } | Store::Files { labels, .. } => labels,
        }
    }

    /// Image `i` as decoded 8-bit pixels.
    pub fn image(&self, i: usize) -> Result<Image> {
        self.image_held(i).map(|(image, _)| image)
    }

    /// [`Dataset::image`], with the decode's share of the decoders' budget for a file (none
    /// for an image already in memory): hold it while the image is in use.
    fn image_held(&self, i: usize) -> Result<(Image, Option<decode_budget::Reservation>)> {
        match &self.store {
            Store::InMemory { pixels, shape, .. } => {
                let (c, h, w) = *shape;
                let size = c * h * w;
                if (i + 1)
                    .checked_mul(size)
                    .is_none_or(|end| end > pixels.len())
                {
                    return Err(Error::bad_input(
                        &self.path,
                        format!("no image {i}: the dataset holds {}", self.len()),
                    ));
                }
                let image = Image {
                    channels: c,
                    height: h,
                    width: w,
                    pixels: pixels[i * size..(i + 1) * size].to_vec(),
                };
                Ok((image, None))
            }
            Store::Files { files, .. } => match files.get(i) {
                Some(file) => decode_image_held(file).map(|(image, held)| (image, Some(held))),
                None => Err(Error::bad_input(
                    &self.path,
                    format!("no image {i}: the dataset holds {}", files.len()),
                )),
            },
        }
    }

    /// The file image `i` comes from (the dataset's folder for in-memory formats).
    pub fn image_path(&self, i: usize) -> &Path {
        match &self.store {
            Store::Files { files, .. } => files.get(i).map_or(self.path.as_path(), |f| f),
            Store::InMemory { .. } => &self.path,
        }
    }

    /// Refuses labels of the first `count` images at or beyond `config`'s classes, before any
    /// work on the images.
    pub fn check_labels(&self, config: &Config, count: usize) -> Result<()> {
        if let Some(folders) = &self.folders {
            if !folders.labelled_for(config) {
                return Err(Error::bad_input(
                    folder::split_root(&self.path, self.split),
                    format!(
                        "the class folders are not labelled for config {} (open the data for \
                         the model it evaluates)",
                        config.name
                    ),
                ));
            }
        }
        let classes = config.classes();
        let labels = &self.labels()[..count.min(self.len())];
        match labels.iter().position(|&l| l as usize >= classes) {
            Some(i) => Err(Error::bad_input(
                self.image_path(i),
                format!(
                    "label {} is out of range for config {} ({classes} classes) (image {i})",
                    self.labels()[i],
                    config.name
                ),
            )),
            None => Ok(()),
        }
    }

    /// Images `indices` transformed for `config`, as one `[N, C, H, W]` tensor.
    pub fn batch(&self, indices: &[usize], config: &Config, device: &Device) -> Result<Tensor> {
        self.batch_with(indices, config, device, |image| image)
    }

    /// [`Dataset::batch`] with `edit` applied to each decoded image before the transform
    /// (training-time augmentation).
    pub fn batch_with(
        &self,
        indices: &[usize],
        config: &Config,
        device: &Device,
        edit: impl FnMut(Image) -> Image,
    ) -> Result<Tensor> {
        let data = self.batch_values(indices, config, edit)?;
        let (c, h, w) = config.input;
        Ok(Tensor::from_vec(data, (indices.len(), c, h, w), device)?)
    }

    /// The values of [`Dataset::batch_with`]'s tensor, `[N, C, H, W]` in row-major order,
    /// on the calling thread (the prefetcher's workers call it).
    pub fn batch_values(
        &self,
        indices: &[usize],
        config: &Config,
        mut edit: impl FnMut(Image) -> Image,
    ) -> Result<Vec<f32>> {
        let mut data =
            Vec::with_capacity(indices.len() * config.input.0 * config.input.1 * config.input.2);
        let mismatch = |i: usize, (c, h, w): (usize, usize, usize)| {
            let (ec, eh, ew) = config.input;
            Error::bad_input(
                self.image_path(i),
                format!("image {i} is {c}x{h}x{w} after the transform; config {} expects {ec}x{eh}x{ew}", config.name),
            )
        };
        for &i in indices {
            // The decode's reservation is held until the image is transformed and dropped.
            let (image, _held) = self.image_held(i)?;
            let image = edit(image);
            // Without a resize the shape is known now: refuse before any conversion.
            let shape = (image.channels, image.height, image.width);
            if config.transform.resize_crop.is_none() && shape != config.input {
                return Err(mismatch(i, shape));
            }
            let (values, shape) = transform::apply(&image, &config.transform)
                .map_err(|problem| Error::bad_input(self.image_path(i), problem))?;
            if shape != config.input {
                return Err(mismatch(i, shape));
            }
            data.extend(values);
        }
        Ok(data)
    }
}
