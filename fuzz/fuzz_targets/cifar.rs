//! Any bytes as a CIFAR batch file of each variant: the binary records (CIFAR-10 and -100)
//! and the python version's pickled dict of numpy arrays.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| blockdrop_fuzz::cifar(data));
