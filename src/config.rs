//! Named configurations: the reference implementation's five and this project's Fashion-MNIST
//! ones. A configuration fixes both networks' architecture, the input shape and the test-time
//! transform (docs/method.md, "Configurations").

use crate::error::{Error, Result};

/// Which family of flat ResNet: stem, shortcut and pooling differ between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// conv3x3 stem, option-A shortcut (avg-pool + zero channels), global average pool.
    Cifar,
    /// conv7x7/2 stem + max-pool 3x3/2, conv1x1+BN shortcut ("option B"), global average pool.
    ImageNet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// conv3x3 → BN → ReLU → conv3x3 → BN (expansion 1).
    Basic,
    /// conv1x1 → BN → ReLU → conv3x3 → BN → ReLU → conv1x1 → BN (expansion 4).
    Bottleneck,
}

impl BlockKind {
    pub fn expansion(self) -> usize {
        match self {
            BlockKind::Basic => 1,
            BlockKind::Bottleneck => 4,
        }
    }
}

/// The shape of one flat ResNet.
#[derive(Debug, Clone, PartialEq)]
pub struct ResNetSpec {
    pub family: Family,
    pub block: BlockKind,
    /// Blocks per segment, e.g. `[5, 5, 5]` for ResNet-32.
    pub layers: Vec<usize>,
    /// Planes per segment (before expansion), e.g. `[16, 32, 64]`.
    pub widths: Vec<usize>,
    pub in_channels: usize,
    /// `Some(classes)` for a base network with its `fc`; `None` for a policy's feature trunk.
    pub classes: Option<usize>,
}

impl ResNetSpec {
    pub fn num_blocks(&self) -> usize {
        self.layers.iter().sum()
    }

    /// The first segment keeps the resolution, every later one halves it.
    pub fn stride(&self, segment: usize) -> usize {
        if segment == 0 {
            1
        } else {
            2
        }
    }

    pub fn stem_width(&self) -> usize {
        self.widths[0]
    }

    /// Channels the network's features have before the head.
    pub fn feature_dim(&self) -> usize {
        self.widths[self.widths.len() - 1] * self.block.expansion()
    }

    /// `(segment, index within segment)` of flat block `k`, if there is such a block.
    pub fn locate(&self, k: usize) -> Option<(usize, usize)> {
        let mut first = 0;
        for (segment, &n) in self.layers.iter().enumerate() {
            if k < first + n {
                return Some((segment, k - first));
            }
            first += n;
        }
        None
    }
}

/// The test-time input transform: `ToTensor` (0..1), optionally resize + centre crop first and
/// per-channel normalisation after.
#[derive(Debug, Clone, PartialEq)]
pub struct Transform {
    /// `(short side, crop)`: resize the short side bilinearly, then centre-crop a square.
    pub resize_crop: Option<(u32, u32)>,
    /// Per-channel `(mean, std)` on the 0..1 scale; `None` is `ToTensor` only.
    pub normalize: Option<(Vec<f32>, Vec<f32>)>,
}

/// The classes a configuration's data set has, for naming labels in figures and views.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassSet {
    FashionMnist,
    Cifar10,
    Cifar100,
    ImageNet,
}

const FASHION_MNIST_NAMES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];
const CIFAR10_NAMES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// CIFAR-100's fine labels in label order (alphabetical, as the data set numbers them).
const CIFAR100_NAMES: [&str; 100] = [
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
];

/// ILSVRC-2012's 1,000 WordNet ids (the class folders of ImageNet's `train/` and `val/`), in
/// label order: sorted, as torchvision's `ImageFolder` numbers them.
const IMAGENET_SYNSETS: &str = include_str!("data/imagenet_synsets.txt");

fn imagenet_names() -> &'static [&'static str] {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| IMAGENET_SYNSETS.lines().collect())
}

impl ClassSet {
    /// The class names in label order (ImageNet's are its synsets' WordNet ids, as its
    /// folders are named).
    pub fn names(self) -> &'static [&'static str] {
        match self {
            ClassSet::FashionMnist => &FASHION_MNIST_NAMES,
            ClassSet::Cifar10 => &CIFAR10_NAMES,
            ClassSet::Cifar100 => &CIFAR100_NAMES,
            ClassSet::ImageNet => imagenet_names(),
        }
    }

    /// A label's name, or its number when the set has no names.
    pub fn name(self, label: u32) -> String {
        self.names()
            .get(label as usize)
            .map_or_else(|| label.to_string(), |n| n.to_string())
    }
}

/// A named BlockDrop configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub name: String,
    pub base: ResNetSpec,
    pub policy: ResNetSpec,
    /// The policy network sees the input average-pooled by this factor (2 on ImageNet).
    pub policy_input_pool: usize,
    /// `(channels, height, width)` the base network expects.
    pub input: (usize, usize, usize),
    pub transform: Transform,
    pub class_set: ClassSet,
}

/// Fashion-MNIST's training-set pixel mean and (population) std on the 0..1 scale, computed
/// over all 60,000 images of the Debian package (a test recomputes them).
pub const FMNIST_MEAN: f32 = 0.286_040_6;
pub const FMNIST_STD: f32 = 0.353_024_24;

/// Names accepted by [`Config::by_name`], in the order `--help` lists them.
pub const NAMES: [&str; 7] = [
    "R32_C10",
    "R110_C10",
    "R32_C100",
    "R110_C100",
    "R101_ImgNet",
    "R32_FMNIST",
    "R110_FMNIST",
];

fn cifar_spec(layers: [usize; 3], in_channels: usize, classes: Option<usize>) -> ResNetSpec {
    ResNetSpec {
        family: Family::Cifar,
        block: BlockKind::Basic,
        layers: layers.to_vec(),
        widths: vec![16, 32, 64],
        in_channels,
        classes,
    }
}

fn imagenet_spec(block: BlockKind, layers: [usize; 4], classes: Option<usize>) -> ResNetSpec {
    ResNetSpec {
        family: Family::ImageNet,
        block,
        layers: layers.to_vec(),
        widths: vec![64, 128, 256, 512],
        in_channels: 3,
        classes,
    }
}

fn to_tensor_only() -> Transform {
    Transform {
        resize_crop: None,
        normalize: None,
    }
}

/// A CIFAR-family configuration with the ResNet-8 policy ([1,1,1]) on the full image.
fn cifar_config(
    name: &str,
    depth: usize,
    input: (usize, usize, usize),
    classes: usize,
    transform: Transform,
    class_set: ClassSet,
) -> Config {
    let n = (depth - 2) / 6;
    Config {
        name: name.to_string(),
        base: cifar_spec([n, n, n], input.0, Some(classes)),
        policy: cifar_spec([1, 1, 1], input.0, None),
        policy_input_pool: 1,
        input,
        transform,
        class_set,
    }
}

/// The model-file metadata key (and run `config.json` field) of a policy input pool other
/// than the configuration's own ([`Config::with_policy_input_pool`]).
pub const POLICY_INPUT_POOL_KEY: &str = "policy_input_pool";
/// The largest policy input pool accepted: beyond it a CIFAR image is a few pixels.
pub const MAX_POLICY_INPUT_POOL: usize = 4;

impl Config {
    /// This configuration with the policy network seeing the input average-pooled by `pool`
    /// (ours, not the reference's for CIFAR and Fashion-MNIST: a cheaper policy; the
    /// reference's ImageNet policy sees a half-size image). The base network is unchanged.
    pub fn with_policy_input_pool(mut self, pool: usize) -> Result<Config> {
        let (_, h, w) = self.input;
        if !(1..=MAX_POLICY_INPUT_POOL).contains(&pool) {
            return Err(Error::BadUsage(format!(
                "a policy input pool of {pool} does not fit {} ({h}x{w} images): give 1 to {MAX_POLICY_INPUT_POOL}",
                self.name
            )));
        }
        self.policy_input_pool = pool;
        Ok(self)
    }

    /// How the policy network's input is made from an image side of `side` pixels:
    /// `(pad_before, pad_after, pooled_side)`. The side is zero-padded to a multiple of
    /// 4 × the pool (the policy's two stride-2 stages then halve an even size twice), split
    /// evenly with the odd pixel after, then average-pooled. Sides already a multiple (CIFAR's
    /// 32 at pools 1, 2 and 4, ImageNet's 224 at 2, Fashion-MNIST's 28 at 1) are not padded.
    pub fn policy_input_side(&self, side: usize) -> (usize, usize, usize) {
        let unit = 4 * self.policy_input_pool.max(1);
        let padded = side.div_ceil(unit) * unit;
        let pad = padded - side;
        (
            pad / 2,
            pad - pad / 2,
            padded / self.policy_input_pool.max(1),
        )
    }

    /// The policy input pool when it differs from the named configuration's own.
    pub fn policy_input_pool_override(&self) -> Option<usize> {
        let own = Config::by_name(&self.name).map_or(1, |c| c.policy_input_pool);
        (self.policy_input_pool != own).then_some(self.policy_input_pool)
    }

    /// Looks a configuration up by name (case-insensitive).
    pub fn by_name(name: &str) -> Result<Config> {
        let c10 = (3, 32, 32);
        let fmnist = (1, 28, 28);
        // R32_C10 is the one reference configuration that normalises (a quirk of its
        // pretrained base); the other CIFAR ones feed ToTensor output directly.
        let cifar10_norm = Transform {
            resize_crop: None,
            normalize: Some((
                vec![125.3 / 255.0, 123.0 / 255.0, 113.9 / 255.0],
                vec![63.0 / 255.0, 62.1 / 255.0, 66.7 / 255.0],
            )),
        };
        let fmnist_norm = Transform {
            resize_crop: None,
            normalize: Some((vec![FMNIST_MEAN], vec![FMNIST_STD])),
        };
        let config = match name.to_ascii_uppercase().as_str() {
            "R32_C10" => cifar_config("R32_C10", 32, c10, 10, cifar10_norm, ClassSet::Cifar10),
            "R110_C10" => cifar_config(
                "R110_C10",
                110,
                c10,
                10,
                to_tensor_only(),
                ClassSet::Cifar10,
            ),
            "R32_C100" => cifar_config(
                "R32_C100",
                32,
                c10,
                100,
                to_tensor_only(),
                ClassSet::Cifar100,
            ),
            "R110_C100" => cifar_config(
                "R110_C100",
                110,
                c10,
                100,
                to_tensor_only(),
                ClassSet::Cifar100,
            ),
            "R32_FMNIST" => cifar_config(
                "R32_FMNIST",
                32,
                fmnist,
                10,
                fmnist_norm.clone(),
                ClassSet::FashionMnist,
            ),
            "R110_FMNIST" => cifar_config(
                "R110_FMNIST",
                110,
                fmnist,
                10,
                fmnist_norm,
                ClassSet::FashionMnist,
            ),
            "R101_IMGNET" => Config {
                name: "R101_ImgNet".to_string(),
                base: imagenet_spec(BlockKind::Bottleneck, [3, 4, 23, 3], Some(1000)),
                policy: imagenet_spec(BlockKind::Basic, [1, 1, 1, 1], None),
                policy_input_pool: 2,
                input: (3, 224, 224),
                transform: Transform {
                    resize_crop: Some((256, 224)),
                    normalize: Some((vec![0.485, 0.456, 0.406], vec![0.229, 0.224, 0.225])),
                },
                class_set: ClassSet::ImageNet,
            },
            _ => {
                return Err(Error::BadUsage(format!(
                    "unknown config '{name}'; known configs: {}",
                    NAMES.join(", ")
                )))
            }
        };
        Ok(config)
    }

    /// Number of decisions the policy makes: one per base block.
    pub fn num_blocks(&self) -> usize {
        self.base.num_blocks()
    }

    pub fn classes(&self) -> usize {
        self.base.classes.unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_depths_give_reference_block_counts() {
        let blocks = |n: &str| Config::by_name(n).map(|c| c.num_blocks()).ok();
        assert_eq!(blocks("R32_C10"), Some(15));
        assert_eq!(blocks("R110_C10"), Some(54));
        assert_eq!(blocks("R110_C100"), Some(54));
        assert_eq!(blocks("R101_ImgNet"), Some(33));
        assert_eq!(blocks("r110_fmnist"), Some(54));
    }

    /// Sides already a multiple of 4 × the pool are pooled as they are (every reference
    /// setting); others are padded evenly first (Fashion-MNIST's 28 at pool 2: 2 + 28 + 2 → 16).
    #[test]
    fn the_policy_input_is_padded_only_where_the_pool_needs_it() {
        let side = |name: &str, pool: usize, side: usize| {
            Config::by_name(name)
                .unwrap()
                .with_policy_input_pool(pool)
                .unwrap()
                .policy_input_side(side)
        };
        assert_eq!(side("R32_C10", 1, 32), (0, 0, 32));
        assert_eq!(side("R32_C10", 2, 32), (0, 0, 16));
        assert_eq!(side("R32_C10", 4, 32), (0, 0, 8));
        assert_eq!(side("R32_C10", 3, 32), (2, 2, 12));
        assert_eq!(side("R101_ImgNet", 2, 224), (0, 0, 112));
        assert_eq!(side("R32_FMNIST", 1, 28), (0, 0, 28));
        assert_eq!(side("R32_FMNIST", 2, 28), (2, 2, 16));
        assert_eq!(side("R32_FMNIST", 4, 28), (2, 2, 8));
        assert_eq!(side("R32_FMNIST", 3, 29), (3, 4, 12));
        for pool in [0, MAX_POLICY_INPUT_POOL + 1] {
            let err = Config::by_name("R32_FMNIST")
                .unwrap()
                .with_policy_input_pool(pool);
            assert!(err.is_err(), "pool {pool}");
        }
    }

    #[test]
    fn unknown_config_names_the_known_ones() {
        let err = Config::by_name("R50_C10").unwrap_err().to_string();
        assert!(
            err.contains("R50_C10") && err.contains("R110_C100"),
            "{err}"
        );
    }

    #[test]
    fn only_r32_c10_normalises_among_cifar_configs() {
        for name in ["R110_C10", "R32_C100", "R110_C100"] {
            assert_eq!(Config::by_name(name).unwrap().transform.normalize, None);
        }
        assert!(Config::by_name("R32_C10")
            .unwrap()
            .transform
            .normalize
            .is_some());
    }

    #[test]
    fn class_names_are_one_per_class_in_label_order() {
        for name in NAMES {
            let c = Config::by_name(name).unwrap();
            assert_eq!(c.class_set.names().len(), c.classes(), "{name}");
        }
        let synsets = ClassSet::ImageNet.names();
        assert!(synsets.windows(2).all(|w| w[0] < w[1]));
        assert_eq!((synsets[0], synsets[999]), ("n01440764", "n15075141"));
        assert!(CIFAR100_NAMES.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn locate_walks_segments() {
        let c = Config::by_name("R32_C10").unwrap();
        assert_eq!(c.base.locate(0), Some((0, 0)));
        assert_eq!(c.base.locate(5), Some((1, 0)));
        assert_eq!(c.base.locate(14), Some((2, 4)));
        assert_eq!(c.base.locate(15), None);
    }
}
