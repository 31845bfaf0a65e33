//! Opening what a command runs on: the device, the model (the bundled default or a file) and
//! the dataset, and the progress bar long work draws.

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use super::args::{KernelsArg, ModelArgs};
use blockdrop::checkpoint::{self, LoadedModel};
use blockdrop::device::DeviceKind;
use blockdrop::kernels::Kernels;
use blockdrop::{bundled, data, Error};

/// What a command runs on.
pub struct Opened {
    pub device: candle_core::Device,
    pub loaded: LoadedModel,
    pub dataset: data::Dataset,
    /// The model as the user named it (or the bundled default's path).
    pub name: String,
    /// The bundled default and sample, not files.
    pub bundled: bool,
    /// What the user should know about the model or data, printed after the four summary
    /// lines (which stay first, as the reference prints them).
    pub notes: Vec<String>,
}

impl Opened {
    /// Prints the notes, one `note:` line each.
    pub fn print_notes(&self) {
        for note in &self.notes {
            out!("note: {note}");
        }
    }

    /// The split the best static subsets are chosen on (the one not reported), or why there
    /// is none.
    pub fn other_split(&self) -> Result<data::Dataset, String> {
        blockdrop::study::selection_split(&self.dataset, self.bundled)
    }
}

pub fn progress_bar(total: usize) -> ProgressBar {
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} {bar:40} {pos}/{len}  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// The device, the model (BatchNorm folded unless --no-fold) and the dataset the flags name.
pub fn open(args: &ModelArgs) -> anyhow::Result<Opened> {
    open_with(args, args.model.as_deref())
}

/// [`open`] with `model` in place of `--model`.
pub fn open_with(args: &ModelArgs, model: Option<&std::path::Path>) -> anyhow::Result<Opened> {
    let device = DeviceKind::from(args.device).open()?;
    let mut loaded = match model {
        Some(path) => {
            checkpoint::load_model(path, args.base.as_deref(), args.config.as_deref(), &device)?
        }
        None if args.base.is_some() => {
            return Err(Error::BadUsage("--base needs --model".into()).into())
        }
        None => bundled::default_model(&device).context("loading the bundled default model")?,
    };
    match args.kernels {
        None => {}
        Some(KernelsArg::Stock) => loaded.model.set_kernels(Kernels::Stock)?,
        Some(KernelsArg::Fast) if Kernels::Fast.runs_at(device.location()) => {
            loaded.model.set_kernels(Kernels::Fast)?
        }
        Some(KernelsArg::Fast) => {
            return Err(Error::BadUsage(
                "--kernels fast runs on the CPU only; use --kernels stock on CUDA and Metal".into(),
            )
            .into())
        }
    }
    if !args.no_fold {
        loaded = loaded.folded()?;
    }
    let mut dataset = data::Dataset::open(&args.data, args.split.into())?;
    let labelling = dataset.label_for(&loaded.model.config)?;
    let mut notes: Vec<String> = labelling_note(labelling, &loaded.model.config.name)
        .into_iter()
        .collect();
    let name = model.map_or_else(
        || bundled::DEFAULT_MODEL_PATH.to_string(),
        |p| p.display().to_string(),
    );
    if loaded.is_untrained() {
        out!("note: {name} is an untrained model (random weights)");
    }
    if !loaded.model.has_policy() {
        notes.insert(
            0,
            format!("{name} is a base network alone (no policy network): every block runs"),
        );
    }
    Ok(Opened {
        device,
        loaded,
        dataset,
        name,
        bundled: false,
        notes,
    })
}

/// How class folders were labelled, when not every class has its folder.
pub fn labelling_note(labelling: Option<data::classes::Labelling>, config: &str) -> Option<String> {
    use data::classes::Labelling;
    match labelling {
        Some(Labelling::ByName { present, classes }) if present < classes => {
            Some(format!("labels follow config {config}'s class names ({present} of its {classes} classes have a folder)"))
        }
        Some(Labelling::ByNumber) => Some("labels follow the class folders' numbers".into()),
        Some(Labelling::ByOrder) => Some(format!(
            "the class folders are not named as config {config}'s classes: labels follow their sorted order"
        )),
        _ => None,
    }
}

/// The bundled default model (BatchNorm folded) and sample, on the CPU.
pub fn open_bundled() -> anyhow::Result<Opened> {
    let device = candle_core::Device::Cpu;
    let loaded = bundled::default_model(&device)
        .and_then(checkpoint::LoadedModel::folded)
        .context("loading the bundled default model")?;
    let dataset = bundled::sample_dataset().context("loading the bundled Fashion-MNIST sample")?;
    Ok(Opened {
        device,
        loaded,
        dataset,
        name: bundled::DEFAULT_MODEL_PATH.to_string(),
        bundled: true,
        notes: Vec::new(),
    })
}
