//! `.npy` and `.npz` arrays (`icelens forward --input`, reference maps): any bytes decode or
//! are refused with a message. An `.npz` is asked for the member names icelens uses.
#![no_main]

use icelens_core::npy;
use libfuzzer_sys::fuzz_target;

fn check(a: &npy::NpyArray) {
    let n = a.shape.iter().try_fold(1usize, |x, d| x.checked_mul(*d));
    assert_eq!(n, Some(a.len()), "an accepted array fills its shape");
    let _ = a.to_f32();
    let _ = a.to_u8();
}

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = npy::read(data) {
        check(&a);
    }
    for name in ["a", "pred_SIC"] {
        if let Ok(a) = npy::read_npz_member(data, name) {
            check(&a);
        }
    }
});
