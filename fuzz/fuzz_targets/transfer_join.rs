//! The message a scene arrives in from the Web Worker that decoded it: a JSON header and typed
//! arrays. The page checks the header's announced arrays (`expected_arrays`) and then joins
//! them (`join`); neither may panic, whatever the header says. The input is the header text;
//! arrays of exactly the announced kinds and lengths are made for it (as the page's copy
//! does), and also one array too few and one with a wrong length.
#![no_main]

use icelens_core::transfer::{expected_arrays, join, Array, Parts};
use libfuzzer_sys::fuzz_target;

/// Largest total of array elements the target allocates for one header (the page's memory
/// budget refuses larger scenes before this point).
const MAX_ELEMENTS: usize = 1 << 22;

fuzz_target!(|data: &[u8]| {
    let header = String::from_utf8_lossy(data).into_owned();
    let Ok(want) = expected_arrays(&header) else {
        // A header the check refuses must be refused by join too.
        assert!(join(Parts {
            header,
            arrays: vec![]
        })
        .is_err());
        return;
    };
    let total = want
        .iter()
        .try_fold(0usize, |a, (_, n)| a.checked_add(*n))
        .filter(|t| *t <= MAX_ELEMENTS && want.len() <= 4096);
    if total.is_none() {
        return;
    }
    let arrays: Vec<Array> = want
        .iter()
        .map(|(f32s, n)| {
            if *f32s {
                Array::F32(vec![0.0; *n])
            } else {
                Array::U8(vec![0; *n])
            }
        })
        .collect();
    if !arrays.is_empty() {
        let mut short = arrays.clone();
        short.pop();
        assert!(join(Parts {
            header: header.clone(),
            arrays: short
        })
        .is_err());
        let mut wrong = arrays.clone();
        match &mut wrong[0] {
            Array::F32(v) => v.push(1.0),
            Array::U8(v) => v.push(1),
        }
        assert!(join(Parts {
            header: header.clone(),
            arrays: wrong
        })
        .is_err());
    }
    if let Ok(scene) = join(Parts { header, arrays }) {
        assert_eq!(scene.sar.len(), 4);
        assert_eq!(
            scene.tie_points.lat.len(),
            scene.tie_points.n_lines * scene.tie_points.n_samples
        );
    }
});
