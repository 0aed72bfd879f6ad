//! Checkpoints are untrusted (a pickle is a program): any bytes must either load as a
//! state_dict or be refused with a message, never panic, hang or exhaust memory.
#![no_main]

use libfuzzer_sys::fuzz_target;

include!("common_checks.rs");

fuzz_target!(|data: &[u8]| {
    if let Ok(sd) = icelens_core::checkpoint::load_state_dict("fuzz.pt", data) {
        check_accepted(&sd);
    }
    // The unpickler on its own, for inputs that are not zip archives.
    let _ = icelens_core::checkpoint::pickle::unpickle(data);
});
