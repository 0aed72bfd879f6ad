//! Paths of the shared fixtures and references (`../shared` beside the repository).
#![allow(dead_code)]

use std::path::PathBuf;

pub fn shared() -> PathBuf {
    if let Ok(p) = std::env::var("ICELENS_SHARED") {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    assert!(
        p.join("fixtures").is_dir(),
        "the shared fixtures are expected at {} (or set ICELENS_SHARED)",
        p.display()
    );
    p
}

pub const FIXTURES: [&str; 3] = [
    "20190412T103015_dmi_prep.nc",
    "20200117T211533_cis_prep.nc",
    "20211130T083012_dmi_prep.nc",
];

pub fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(shared().join("fixtures").join(name)).expect("fixture readable")
}

pub fn reference_bytes(name: &str) -> Vec<u8> {
    std::fs::read(shared().join("reference").join(name)).expect("reference readable")
}
