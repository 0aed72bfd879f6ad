//! `forward`, `predict` and `evaluate` on the shared reference checkpoint and fixtures.

use std::path::PathBuf;
use std::process::Command;

mod common;

use common::{icelens, shared};

fn path(rel: &str) -> String {
    shared().join(rel).to_string_lossy().into_owned()
}

fn tmp(name: &str) -> PathBuf {
    common::tmp("model-cli", name)
}

const MODEL: &str = "reference/pizza_marinara.pt";
const DMI: &str = "fixtures/20190412T103015_dmi_prep.nc";
const CIS: &str = "fixtures/20200117T211533_cis_prep.nc";
const TEST: &str = "fixtures/20211130T083012_dmi_prep.nc";

#[test]
fn evaluate_json_equals_the_reference_scores_and_skips_bad_scenes() {
    let bad = tmp("bad_prep.nc");
    std::fs::write(&bad, b"CDF\x02 and then nothing useful").unwrap();
    let (ok, stdout, stderr) = icelens(&[
        "evaluate",
        "--model",
        &path(MODEL),
        &path(DMI),
        bad.to_str().unwrap(),
        &path(CIS),
        &path(TEST),
        "--json",
    ]);
    assert!(!ok, "bad scenes make the exit code non-zero");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 2, "{stderr}");
    assert!(errors[0].contains("bad_prep.nc"));
    assert!(
        errors[1].contains("20211130T083012_dmi_prep.nc") && errors[1].contains("no ice charts")
    );
    let got: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let want: serde_json::Value = serde_json::from_slice(
        &std::fs::read(shared().join("reference/scene_reference.json")).unwrap(),
    )
    .unwrap();
    for key in ["SIC", "SOD", "FLOE", "combined"] {
        assert_eq!(
            got["pooled"][key], want["scores_all_labelled_scenes_pooled"][key],
            "{key}"
        );
    }
    let scenes = got["scenes"].as_array().unwrap();
    assert_eq!(scenes.len(), 2);
    for s in scenes {
        let name = format!("{}_prep.nc", s["scene"].as_str().unwrap());
        for key in ["SIC", "SOD", "FLOE", "combined"] {
            assert_eq!(
                s[key], want["scenes"][&name]["scores_this_scene"][key],
                "{name} {key}"
            );
        }
    }
}

#[test]
fn forward_writes_the_reference_logits() {
    let out = tmp("forward");
    let (ok, _, stderr) = icelens(&[
        "forward",
        "--model",
        &path(MODEL),
        "--input",
        &path("reference/odd_input.npy"),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    for chart in ["SIC", "SOD", "FLOE"] {
        let got =
            icelens_core::npy::read(&std::fs::read(out.join(format!("out_{chart}.npy"))).unwrap())
                .unwrap();
        let want = icelens_core::npy::read(
            &std::fs::read(shared().join(format!("reference/odd_out_{chart}.npy"))).unwrap(),
        )
        .unwrap();
        assert_eq!(got.shape, want.shape);
        let max = got
            .to_f32()
            .unwrap()
            .iter()
            .zip(want.to_f32().unwrap())
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(max <= 1e-3, "{chart}: {max}");
    }
}

#[test]
fn predict_writes_an_upload_package_xarray_reads_as_uint8() {
    let upload = tmp("upload_package.nc");
    let pngs = tmp("png");
    let (ok, _, stderr) = icelens(&[
        "predict",
        "--model",
        &path(MODEL),
        &path(DMI),
        &path(CIS),
        &path(TEST),
        "--upload",
        upload.to_str().unwrap(),
        "--png",
        pngs.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    for scene in [
        "20190412T103015_dmi",
        "20200117T211533_cis",
        "20211130T083012_dmi",
    ] {
        let png = std::fs::read(pngs.join(format!("{scene}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG"));
    }
    // The challenge's evaluator opens the package with xarray: check it the same way, against
    // the package PyTorch's predictions made.
    let script = format!(
        r#"
import sys, xarray as xr, numpy as np
got = xr.open_dataset({got:?})
want = xr.open_dataset({want:?})
assert sorted(got.data_vars) == sorted(want.data_vars), (list(got.data_vars), list(want.data_vars))
for v in want.data_vars:
    assert got[v].dtype == np.uint8, (v, got[v].dtype)
    assert got[v].dims == (v + "_dim0", v + "_dim1"), got[v].dims
    assert got[v].shape == want[v].shape
    same = (got[v].values == want[v].values).mean()
    assert same > 0.999, (v, same)
print("ok", len(want.data_vars))
"#,
        got = upload.to_str().unwrap(),
        want = path("reference/upload_package_example.nc"),
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 with xarray (scripts/setup.sh test installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("ok 9"), "{text}");
}

#[test]
fn bad_models_give_one_error_line() {
    let scene = path(DMI);
    let wrong = tmp("scene_as_model.pt");
    std::fs::copy(shared().join(DMI), &wrong).unwrap();
    for (model, needle) in [
        (
            wrong.to_str().unwrap().to_string(),
            "not a model checkpoint",
        ),
        ("/nonexistent.pt".to_string(), "cannot be read"),
    ] {
        let (ok, _, stderr) = icelens(&["evaluate", "--model", &model, &scene]);
        assert!(!ok);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(needle),
            "{stderr}"
        );
    }
}
