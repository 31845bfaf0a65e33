//! The adaptivity question on the shipped default: a policy that is one fixed subset gains
//! nothing over the static frontier, and the best subsets are chosen on the other split only.

use blockdrop::bundled;
use blockdrop::data::{Dataset, Split};
use blockdrop::eval::baselines::{best_subsets, Selection};
use blockdrop::eval::tradeoff::{choose_subsets, tradeoff, Method, TradeoffOptions};
use blockdrop::model::blockdrop::policy_string;
use blockdrop::model::BlockDrop;
use blockdrop::study::selection_split;
use candle_core::{Device, Tensor};

/// The default's second most common policy (25% of test images, 7 blocks).
const FIXED: &str = "000110010011110";

/// The bundled default with its policy network's last layer replaced so that every image
/// gets `policy`: zero weights, and a bias of ±8 (sigmoid 0.9997 or 0.0003).
fn fixed_policy_model(policy: &str) -> BlockDrop {
    let mut model = bundled::default_model(&Device::Cpu).unwrap().model;
    model.fold_batchnorm().unwrap();
    let bias: Vec<f32> = policy
        .chars()
        .map(|c| if c == '1' { 8.0 } else { -8.0 })
        .collect();
    let blocks = bias.len();
    let agent = model.agent.as_mut().expect("a policy network");
    let features = agent.logit.weight().dim(1).unwrap();
    let weight = Tensor::zeros((blocks, features), candle_core::DType::F32, &Device::Cpu).unwrap();
    let bias = Tensor::new(bias, &Device::Cpu).unwrap();
    agent.logit = candle_nn::Linear::new(weight, Some(bias));
    model
}

fn options(limit: usize, selection_images: usize) -> TradeoffOptions {
    TradeoffOptions {
        thresholds: vec![0.5],
        random_seeds: 0,
        limit: Some(limit),
        selection_images,
        ..TradeoffOptions::default()
    }
}

#[test]
fn a_model_whose_policy_is_one_fixed_subset_gains_nothing() {
    let model = fixed_policy_model(FIXED);
    let test = bundled::sample_dataset().unwrap();
    let train = bundled::sample_train_dataset().unwrap();
    let options = options(300, 64);

    // Without best subsets the frontier is its own policy and the full network: the gain at
    // equal blocks is exactly 0, and at equal FLOPs only the policy network's cost moves it.
    let unavailable = Selection::Unavailable("not chosen in this test".into());
    let none = choose_subsets(&model, &unavailable, &options, &Device::Cpu, |_, _| {}).unwrap();
    let t = tradeoff(&model, &test, &none, &options, &Device::Cpu, |_, _| {}).unwrap();
    let a = &t.adaptivity;
    assert_eq!(a.statics.len(), 2, "its one policy and the full network");
    assert_eq!(policy_string(&a.statics[0].policy), FIXED);
    assert_eq!(a.learned.mean_blocks, 7.0);
    assert_eq!(a.learned.accuracy, a.statics[0].point.accuracy);
    assert_eq!(a.gain.blocks, Some(0.0));
    let flops_gain = a.gain.flops.unwrap();
    assert!(flops_gain.abs() < 0.01, "{flops_gain}");
    assert!(a.per_class.iter().all(|c| c.off_mode_share == 0.0));
    assert!(a.oracle.accuracy >= a.learned.accuracy);

    // With best subsets the frontier can only rise: the gain is at most 0.
    let selection = Selection::new(&test, &train).unwrap();
    let chosen = choose_subsets(&model, &selection, &options, &Device::Cpu, |_, _| {}).unwrap();
    assert_eq!(chosen.subsets.len(), 14);
    let t = tradeoff(&model, &test, &chosen, &options, &Device::Cpu, |_, _| {}).unwrap();
    let gain = t.adaptivity.gain.blocks.unwrap();
    assert!(gain <= 1e-12, "{gain}");
    // Each best subset keeps as many blocks as its budget, and they are nested.
    for (k, s) in chosen.subsets.iter().enumerate() {
        assert_eq!(s.iter().filter(|&&b| b).count(), k + 1);
        if let Some(next) = chosen.subsets.get(k + 1) {
            assert!(s.iter().zip(next).all(|(&a, &b)| !a || b));
        }
    }
    assert_eq!(
        t.points
            .iter()
            .filter(|p| p.method == Method::BestSubset)
            .count(),
        14
    );
}

/// A folder with the sample's test split and the first `train` images of its training split,
/// as IDX files.
fn sample_folder(dir: &std::path::Path, train: usize) {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(bundled::SAMPLE_PATH);
    for name in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
        std::fs::copy(src.join(name), dir.join(name)).unwrap();
    }
    let gunzip = |name: &str| {
        let mut out = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(std::fs::File::open(src.join(name)).unwrap()),
            &mut out,
        )
        .unwrap();
        out
    };
    let images = gunzip("train-images-idx3-ubyte.gz");
    let labels = gunzip("train-labels-idx1-ubyte.gz");
    let mut head = images[..16].to_vec();
    head[4..8].copy_from_slice(&(train as u32).to_be_bytes());
    head.extend_from_slice(&images[16..16 + train * 784]);
    std::fs::write(dir.join("train-images-idx3-ubyte"), head).unwrap();
    let mut head = labels[..8].to_vec();
    head[4..8].copy_from_slice(&(train as u32).to_be_bytes());
    head.extend_from_slice(&labels[8..8 + train]);
    std::fs::write(dir.join("train-labels-idx1-ubyte"), head).unwrap();
}

#[test]
fn the_best_subsets_are_chosen_on_the_other_split_only() {
    let mut model = bundled::default_model(&Device::Cpu).unwrap().model;
    model.fold_batchnorm().unwrap();
    let dir = tempfile::tempdir().unwrap();
    sample_folder(dir.path(), 40);
    let test = Dataset::open(dir.path(), Split::Test).unwrap();

    // The reported split itself is refused as the selection split.
    let same = Dataset::open(dir.path(), Split::Test).unwrap();
    let err = Selection::new(&test, &same).err().unwrap();
    assert!(err.to_string().contains("another split"), "{err}");

    // The path the commands take: the other split of the reported data.
    let other = selection_split(&test, false);
    let selection = Selection::of(&test, &other).unwrap();
    let options = options(40, 40);
    let chosen = choose_subsets(&model, &selection, &options, &Device::Cpu, |_, _| {}).unwrap();
    assert!(
        chosen.from.contains("40 images of the train split"),
        "{}",
        chosen.from
    );
    // They are the subsets the training split gives, and not those of the reported split.
    let train = other.as_ref().unwrap();
    assert_eq!(train.split, Split::Train);
    let on_train = best_subsets(&model, train, 40, 64, &Device::Cpu, |_, _| {}).unwrap();
    let on_test = best_subsets(&model, &test, 40, 64, &Device::Cpu, |_, _| {}).unwrap();
    assert_eq!(chosen.subsets, on_train);
    assert_ne!(
        on_train, on_test,
        "the two splits must lead to different subsets, or this test cannot tell them apart"
    );

    // A dataset with no other split leaves the best subsets out and says why.
    let only_test = tempfile::tempdir().unwrap();
    for name in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
        std::fs::copy(dir.path().join(name), only_test.path().join(name)).unwrap();
    }
    let test_only = Dataset::open(only_test.path(), Split::Test).unwrap();
    let other = selection_split(&test_only, false);
    let chosen = choose_subsets(
        &model,
        &Selection::of(&test_only, &other).unwrap(),
        &options,
        &Device::Cpu,
        |_, _| {},
    )
    .unwrap();
    assert!(chosen.subsets.is_empty());
    assert!(
        chosen.from.starts_with("no best subsets:"),
        "{}",
        chosen.from
    );
}

#[test]
fn a_search_over_budget_is_skipped_unless_asked_for() {
    let mut model = bundled::default_model(&Device::Cpu).unwrap().model;
    model.fold_batchnorm().unwrap();
    let test = bundled::sample_dataset().unwrap();
    let train = bundled::sample_train_dataset().unwrap();
    let selection = Selection::new(&test, &train).unwrap();
    // R32 on the default 128 images is well within the budget; 5,000 images are not.
    let budget = blockdrop::eval::baselines::SEARCH_FLOP_BUDGET;
    assert!(blockdrop::eval::baselines::search_flops(&model, 128) < budget);
    assert!(blockdrop::eval::baselines::search_flops(&model, 5000) > budget);
    let options = TradeoffOptions {
        selection_images: 5000,
        ..TradeoffOptions::default()
    };
    let chosen = choose_subsets(&model, &selection, &options, &Device::Cpu, |_, _| {}).unwrap();
    assert!(chosen.subsets.is_empty());
    assert!(
        chosen.from.contains("TFLOP") && chosen.from.contains("--selection-images"),
        "{}",
        chosen.from
    );
}
