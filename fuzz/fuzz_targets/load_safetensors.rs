//! safetensors checkpoints through the entry point the CLI and the page use
//! (`load_state_dict` recognises the format by content): any bytes load or are refused with a
//! message. Seeded with safetensors files of every dtype, so most inputs take that path.
#![no_main]

use libfuzzer_sys::fuzz_target;

include!("common_checks.rs");

fuzz_target!(|data: &[u8]| {
    if let Ok(sd) = icelens_core::checkpoint::load_state_dict("fuzz.safetensors", data) {
        check_accepted(&sd);
    }
});
