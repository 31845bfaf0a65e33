//! Any bytes given as a cost table (`eval|compare|export --cost`, `train … --cost`): a checked
//! table or an error naming the file, never a panic; and a checked table only ever predicts
//! finite latencies and reward shares.
#![no_main]

use std::path::Path;

use blockdrop::profile::cost::{CostTable, PredictedLatency};
use blockdrop::train::cost::BlockCost;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(table) = CostTable::parse(Path::new("cost.json"), data) else {
        return;
    };
    let k = table.blocks.len();
    for keep in [vec![1.0; k], vec![0.0; k], (0..k).map(|i| (i % 2) as f64).collect()] {
        let predicted = PredictedLatency::of(&table, &keep);
        assert!(predicted.path_us.is_finite() && predicted.full_us.is_finite());
    }
    let cost = BlockCost::Measured {
        table: "cost.json".into(),
        blocks: table.blocks.iter().map(|b| b.us).collect(),
    };
    if cost.check(k).is_ok() {
        let keep: Vec<bool> = (0..k).map(|i| i % 3 != 0).collect();
        let share = cost.share(&keep);
        assert!(share.is_finite() && (0.0..=1.0).contains(&share), "{share}");
    }
});
