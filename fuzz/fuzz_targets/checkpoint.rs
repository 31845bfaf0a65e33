//! Any bytes given as a model file, through the whole load: format detection, the pickle and
//! zip readers, name mapping, configuration inference, the finiteness check and the model
//! build. It must return a model or an error, never panic, hang or allocate beyond what the
//! bytes justify.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| blockdrop_fuzz::checkpoint(data));
