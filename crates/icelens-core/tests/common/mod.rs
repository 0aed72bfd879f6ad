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

/// A fixture scene and the reference `pred_SIC/SOD/FLOE` maps of `pizza_marinara` for it
/// (`scene_<name>.npz`).
pub fn fixture_with_reference_pred(name: &str) -> (icelens_core::Scene, Vec<Vec<u8>>) {
    use icelens_core::{npy, read_scene, Chart, ReadLimits};
    let scene = read_scene(name, fixture_bytes(name), &ReadLimits::default()).unwrap();
    let npz = reference_bytes(&format!("scene_{}.npz", &name[..19]));
    let pred = Chart::ALL
        .iter()
        .map(|c| {
            npy::read_npz_member(&npz, &format!("pred_{}", c.name()))
                .unwrap()
                .to_u8()
                .unwrap()
        })
        .collect();
    (scene, pred)
}
