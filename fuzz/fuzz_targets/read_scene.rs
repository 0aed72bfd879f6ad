//! Feeds arbitrary bytes to `read_scene` with the default limits. Any input may be rejected
//! with a `FileError`; none may panic, abort, hang or exhaust memory.
#![no_main]

use icelens_core::{read_scene, ReadLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = read_scene("fuzz_prep.nc", data.to_vec(), &ReadLimits::default());
});
