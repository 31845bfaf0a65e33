//! Any bytes as a pickle stream, with every global allowed (the widest the reader gets), then
//! the accessors the checkpoint and CIFAR readers use, over every object it made.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(p) = blockdrop::pickle::read(data, |_, _| true) else {
        return;
    };
    for id in 0..p.objects.len() {
        let _ = p.as_bytes(id);
        let _ = p.as_int(id);
        let _ = p.as_seq(id);
        let _ = p.dict_get(id, "data");
        let _ = p.global_name(id);
    }
});
