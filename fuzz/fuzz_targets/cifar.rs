//! Any bytes as a CIFAR batch file of each variant: the binary records (CIFAR-10 and -100)
//! and the python version's pickled dict of numpy arrays.
#![no_main]

use std::path::Path;

use blockdrop::data::cifar::{parse_file, Variant};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for variant in [
        Variant::Cifar10Bin,
        Variant::Cifar100Bin,
        Variant::Cifar10Py,
        Variant::Cifar100Py,
    ] {
        let (mut pixels, mut labels) = (Vec::new(), Vec::new());
        let _ = parse_file(Path::new("batch"), variant, data, &mut pixels, &mut labels);
    }
});
