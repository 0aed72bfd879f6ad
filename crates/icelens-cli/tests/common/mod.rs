//! Helpers shared by the command-line tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// The shared fixtures and references (`../shared` beside the repository).
pub fn shared() -> PathBuf {
    std::env::var("ICELENS_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

/// Runs the `icelens` binary: (success, stdout, stderr). `ICELENS_BIN` names another build of
/// it (a copy kept apart where several checkouts share one target folder).
pub fn icelens(args: &[&str]) -> (bool, String, String) {
    let bin = std::env::var_os("ICELENS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_icelens")));
    let out = Command::new(bin).args(args).output().expect("icelens runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A path in a temporary folder of this test process; `group` keeps test files apart.
pub fn tmp(group: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("icelens-{group}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Largest absolute difference between two equally long slices; NaN when either holds a NaN
/// (or the same infinity) anywhere, so that `max_abs_diff(..) <= tol` fails on it.
/// (`fold(0.0, f32::max)` would skip NaNs: `f32::max` returns the other operand.)
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "slices of different lengths");
    let mut max = 0f32;
    for (x, y) in a.iter().zip(b) {
        let d = (x - y).abs();
        if d.is_nan() {
            return f32::NAN;
        }
        max = max.max(d);
    }
    max
}
