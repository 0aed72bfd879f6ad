//! Helpers shared by the model tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The shared fixtures and references (`../shared` beside the repository).
pub fn shared() -> PathBuf {
    std::env::var("ICELENS_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

pub fn reference(name: &str) -> Vec<u8> {
    std::fs::read(shared().join("reference").join(name)).expect("reference file")
}

/// Largest absolute difference between two equally long slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
}
