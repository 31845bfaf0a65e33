//! Where the state dicts sit in a PyTorch checkpoint and how their names map to ours:
//! the reference's `{agent | net, resnet, epoch, reward, acc}`, `{'state_dict': …}` wrappers,
//! bare state dicts, DataParallel's `module.` prefix, and torchvision's ResNet names.

use std::collections::BTreeMap;

use candle_core::Tensor;

use crate::checkpoint::torch::Value;

/// The state dicts a checkpoint holds, named as our model expects (without the `agent.` /
/// `resnet.` prefix), what it says about itself, and how its names were mapped.
#[derive(Debug, Default)]
pub struct StateDicts {
    pub agent: Option<Vec<(String, Tensor)>>,
    pub resnet: Option<Vec<(String, Tensor)>>,
    pub metadata: BTreeMap<String, String>,
    /// Entries no model of ours reads (`num_batches_tracked`, an old agent's `features.fc`).
    pub ignored: Vec<String>,
    /// Entries renamed from torchvision's `layerN` names.
    pub renamed: usize,
    /// Entries that carried DataParallel's `module.` prefix.
    pub unprefixed: usize,
}

/// torchvision → flat ResNet: `layer{N}.{b}.` → `blocks.{N-1}.{b}.`,
/// `layer{N}.0.downsample.{0,1}.` → `ds.{N-1}.{0,1}.`.
pub fn flat_resnet_name(name: &str) -> String {
    let Some(rest) = name.strip_prefix("layer") else {
        return name.to_string();
    };
    let mut parts = rest.splitn(3, '.');
    let (Some(layer), Some(block), Some(tail)) = (parts.next(), parts.next(), parts.next()) else {
        return name.to_string();
    };
    let Some(segment) = layer.parse::<usize>().ok().and_then(|n| n.checked_sub(1)) else {
        return name.to_string();
    };
    match tail.strip_prefix("downsample.") {
        Some(ds) if block == "0" => format!("ds.{segment}.{ds}"),
        _ => format!("blocks.{segment}.{block}.{tail}"),
    }
}

/// What becomes of one state-dict entry.
#[derive(Debug, PartialEq)]
enum Mapped {
    Keep {
        name: String,
        renamed: bool,
        unprefixed: bool,
    },
    Ignore,
}

fn normalise(name: &str, agent: bool) -> Mapped {
    let stripped = name.strip_prefix("module.");
    let name = stripped.unwrap_or(name);
    if name.ends_with("num_batches_tracked") || (agent && name.starts_with("features.fc.")) {
        return Mapped::Ignore;
    }
    let flat = if agent {
        name.to_string()
    } else {
        flat_resnet_name(name)
    };
    Mapped::Keep {
        renamed: flat != name,
        unprefixed: stripped.is_some(),
        name: flat,
    }
}

impl StateDicts {
    /// The tensors of a state dict, mapped to our names, noting what was renamed or ignored.
    fn tensors(&mut self, value: &Value, agent: bool) -> Option<Vec<(String, Tensor)>> {
        let Value::Dict(items) = value else {
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for (name, v) in items {
            let Value::Tensor(t) = v else { continue };
            match normalise(name, agent) {
                Mapped::Keep {
                    name,
                    renamed,
                    unprefixed,
                } => {
                    self.renamed += renamed as usize;
                    self.unprefixed += unprefixed as usize;
                    out.push((name, t.clone()));
                }
                Mapped::Ignore => self.ignored.push(name.clone()),
            }
        }
        Some(out)
    }
}

fn scalar(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Int(v) => Some(v.to_string()),
        Value::Float(v) => Some(v.to_string()),
        Value::Str(s) => Some(s.clone()),
        _ => None,
    }
}

/// A bare state dict is a policy when its names are the agent's.
fn is_agent(items: &[(String, Value)]) -> bool {
    items.iter().any(|(n, _)| {
        let n = n.strip_prefix("module.").unwrap_or(n);
        n.starts_with("features.") || n.starts_with("logit.")
    })
}

/// What a checkpoint records about its training beside the weights: the reference's
/// `epoch`, `reward` and `acc`, an image-classification script's `arch`, `best_epoch` and
/// `best_err1`, and the flags it pickled as `args` (an `argparse.Namespace`), as model-file
/// metadata (ours name, theirs).
const RECORDED: [(&str, &str); 6] = [
    ("epoch", "epoch"),
    ("reward", "reward"),
    ("accuracy", "acc"),
    ("arch", "arch"),
    ("best_epoch", "best_epoch"),
    ("best_err1", "best_err1"),
];

/// The metadata key of the training script's flags (`field=value, …`).
pub const ARGS_KEY: &str = "args";

/// Recorded values are kept to this many characters (control characters escaped), the
/// flags to this many in all: metadata a file brings in stays small and prints on one line.
const MAX_RECORDED: usize = 200;
const MAX_ARGS: usize = 16 << 10;

fn recorded(root: &Value, metadata: &mut BTreeMap<String, String>) {
    for (ours, theirs) in RECORDED {
        if let Some(v) = scalar(root.get(theirs)) {
            metadata.insert(ours.to_string(), crate::error::shown(&v, MAX_RECORDED));
        }
    }
    if let Some(Value::Namespace(fields)) = root.get("args") {
        let flags: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
        metadata.insert(
            ARGS_KEY.to_string(),
            crate::error::shown(&flags.join(", "), MAX_ARGS),
        );
    }
}

pub fn find_state_dicts(root: &Value) -> StateDicts {
    if let Some(inner) = root.get("state_dict") {
        let mut found = find_state_dicts(inner);
        recorded(root, &mut found.metadata);
        return found;
    }
    let mut found = StateDicts::default();
    let agent = root.get("agent").or_else(|| root.get("net"));
    let resnet = root.get("resnet");
    if agent.is_some() || resnet.is_some() {
        found.agent = agent.and_then(|a| found.tensors(a, true));
        found.resnet = resnet.and_then(|r| found.tensors(r, false));
    } else if let Value::Dict(items) = root {
        if is_agent(items) {
            found.agent = found.tensors(root, true);
        } else {
            found.resnet = found.tensors(root, false);
        }
    }
    recorded(root, &mut found.metadata);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torchvision_names_map_to_flat_names() {
        assert_eq!(
            flat_resnet_name("layer1.0.conv1.weight"),
            "blocks.0.0.conv1.weight"
        );
        assert_eq!(
            flat_resnet_name("layer3.22.bn3.running_var"),
            "blocks.2.22.bn3.running_var"
        );
        assert_eq!(
            flat_resnet_name("layer2.0.downsample.0.weight"),
            "ds.1.0.weight"
        );
        assert_eq!(
            flat_resnet_name("layer4.0.downsample.1.bias"),
            "ds.3.1.bias"
        );
        assert_eq!(flat_resnet_name("conv1.weight"), "conv1.weight");
        assert_eq!(
            flat_resnet_name("blocks.0.0.conv1.weight"),
            "blocks.0.0.conv1.weight"
        );
    }

    #[test]
    fn prefixes_and_unread_entries_are_dropped() {
        let keep = |name: &str, renamed, unprefixed| Mapped::Keep {
            name: name.into(),
            renamed,
            unprefixed,
        };
        assert_eq!(
            normalise("module.layer1.0.bn1.weight", false),
            keep("blocks.0.0.bn1.weight", true, true)
        );
        assert_eq!(
            normalise("features.blocks.0.0.bn1.weight", true),
            keep("features.blocks.0.0.bn1.weight", false, false)
        );
        assert_eq!(normalise("features.fc.weight", true), Mapped::Ignore);
        assert_eq!(normalise("bn1.num_batches_tracked", false), Mapped::Ignore);
    }
}
