//! A `VarBuilder` backend over a name → tensor map that, instead of failing on the first
//! missing or misshapen tensor, notes every problem and lets the model finish building, so a
//! bad file is reported in one error listing all of them.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};

/// What the model asked for that the file could not give, and what the file had unasked.
#[derive(Debug, Default)]
pub struct Audit {
    pub problems: Vec<String>,
    requested: HashSet<String>,
}

struct CheckedBackend {
    tensors: HashMap<String, Tensor>,
    audit: Arc<Mutex<Audit>>,
}

impl CheckedBackend {
    fn note(&self, name: &str, problem: Option<String>) {
        // A poisoned lock only means another thread panicked mid-note; the notes stay usable.
        let mut audit = self.audit.lock().unwrap_or_else(|e| e.into_inner());
        audit.requested.insert(name.to_string());
        if let Some(problem) = problem {
            audit.problems.push(problem);
        }
    }
}

impl SimpleBackend for CheckedBackend {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        match self.tensors.get(name) {
            Some(t) if t.shape() == &shape => {
                self.note(name, None);
                t.to_dtype(dtype)?.to_device(dev)
            }
            found => {
                let problem = match found {
                    Some(t) => format!(
                        "{name} has shape {:?}, the model expects {:?}",
                        t.dims(),
                        shape.dims()
                    ),
                    None => format!("missing tensor {name} (shape {:?})", shape.dims()),
                };
                self.note(name, Some(problem));
                Tensor::zeros(shape, dtype, dev)
            }
        }
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.note(name, None);
        match self.tensors.get(name) {
            Some(t) => t.to_dtype(dtype)?.to_device(dev),
            None => candle_core::bail!("missing tensor {name}"),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }
}

/// Tensors the reference writes that no model of ours reads.
fn ignorable(name: &str) -> bool {
    name.ends_with(".num_batches_tracked")
}

/// Builds a model with `build` over `tensors`, then returns it or every problem found: missing
/// tensors, wrong shapes, and tensors the model never asked for.
pub fn build_checked<T>(
    tensors: HashMap<String, Tensor>,
    device: &Device,
    build: impl FnOnce(VarBuilder) -> candle_core::Result<T>,
) -> Result<T, Vec<String>> {
    let names: Vec<String> = tensors.keys().cloned().collect();
    let audit = Arc::new(Mutex::new(Audit::default()));
    let backend = CheckedBackend {
        tensors,
        audit: Arc::clone(&audit),
    };
    let vb = VarBuilder::from_backend(Box::new(backend), DType::F32, device.clone());
    let built = build(vb);
    let audit = audit.lock().unwrap_or_else(|e| e.into_inner());
    let mut problems = audit.problems.clone();
    let mut unexpected: Vec<&String> = names
        .iter()
        .filter(|n| !audit.requested.contains(*n) && !ignorable(n))
        .collect();
    unexpected.sort();
    problems.extend(
        unexpected
            .into_iter()
            .map(|n| format!("unexpected tensor {n}")),
    );
    match built {
        Ok(model) if problems.is_empty() => Ok(model),
        Ok(_) => Err(problems),
        Err(e) => {
            problems.push(e.to_string());
            Err(problems)
        }
    }
}
