//! burnpack checkpoints (burn's `.bpk`) through `load_state_dict`, the entry point the CLI and
//! the page use. The input is given burnpack's magic number when it lacks one, so every input
//! reaches the burnpack reader rather than the format sniffing.
#![no_main]

use libfuzzer_sys::fuzz_target;

include!("common_checks.rs");

/// burnpack's magic number as it starts a file (`u32` little-endian).
const MAGIC: &[u8; 4] = b"NRUB";

fuzz_target!(|data: &[u8]| {
    let owned;
    let bytes: &[u8] = if data.starts_with(MAGIC) {
        data
    } else {
        owned = [MAGIC.as_slice(), data].concat();
        &owned
    };
    if let Ok(sd) = icelens_core::checkpoint::load_state_dict("fuzz.bpk", bytes) {
        check_accepted(&sd);
    }
});
