//! The `icelens` binary on the shared fixtures and on bad input.

use std::path::PathBuf;

mod common;

use common::{icelens, shared};

fn fixture(name: &str) -> PathBuf {
    shared().join("fixtures").join(name)
}

fn tmp(name: &str) -> PathBuf {
    common::tmp("cli", name)
}

#[test]
fn inspect_json_describes_both_containers() {
    let a = fixture("20190412T103015_dmi_prep.nc");
    let b = fixture("20200117T211533_cis_prep.nc");
    let c = fixture("20211130T083012_dmi_prep.nc");
    let (ok, stdout, stderr) = icelens(&[
        "inspect",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        c.to_str().unwrap(),
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let scenes = v.as_array().unwrap();
    assert_eq!(scenes.len(), 3);
    assert_eq!(scenes[0]["scene"], "20190412T103015_dmi");
    assert_eq!(scenes[0]["format"], "netcdf4");
    assert_eq!(scenes[0]["lines"], 600);
    assert_eq!(scenes[0]["samples"], 500);
    assert_eq!(scenes[0]["ice_service"], "dmi");
    assert_eq!(scenes[0]["mission"], "S1B");
    assert_eq!(scenes[0]["region"], "SouthEast");
    assert_eq!(scenes[0]["acquired"], "2019-04-12T10:30:15Z");
    assert_eq!(scenes[0]["has_charts"], true);
    assert_eq!(scenes[0]["variables"].as_array().unwrap().len(), 29);
    assert_eq!(scenes[1]["format"], "netcdf3");
    assert_eq!(scenes[1]["region"], "SGRDIEA");
    assert_eq!(scenes[2]["has_charts"], false);
    assert!(scenes[2]["variables"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n != "SIC"));
}

#[test]
fn inspect_text_reports_a_bad_file_and_goes_on() {
    let bad = tmp("not-a-scene.nc");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\nrest").unwrap();
    let good = fixture("20200117T211533_cis_prep.nc");
    let (ok, stdout, stderr) = icelens(&["inspect", bad.to_str().unwrap(), good.to_str().unwrap()]);
    assert!(!ok);
    assert!(stdout.contains("20200117T211533_cis"), "{stdout}");
    assert!(stdout.contains("netcdf3"));
    let line = stderr.lines().find(|l| l.starts_with("error:")).unwrap();
    assert!(
        line.contains("not-a-scene.nc") && line.contains("PNG"),
        "{line}"
    );
}

#[test]
fn input_writes_the_window_as_npy() {
    let out = tmp("x.npy");
    let scene = fixture("20190412T103015_dmi_prep.nc");
    let (ok, _, stderr) = icelens(&[
        "input",
        scene.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--window",
        "10,20,30,40",
    ]);
    assert!(ok, "{stderr}");
    let arr = icelens_core::npy::read(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(arr.shape, vec![1, 24, 30, 40]);
    // Compare with the reference input of the whole scene.
    let npz = std::fs::read(shared().join("reference/scene_20190412T103015_dmi.npz")).unwrap();
    let x = icelens_core::npy::read_npz_member(&npz, "x")
        .unwrap()
        .to_f32()
        .unwrap();
    let got = arr.to_f32().unwrap();
    for c in [0, 3, 4, 23] {
        for r in 0..30 {
            for col in 0..40 {
                let want = x[(c * 600 + 10 + r) * 500 + 20 + col];
                assert_eq!(got[(c * 30 + r) * 40 + col].to_bits(), want.to_bits());
            }
        }
    }
}

#[test]
fn errors_are_one_line_and_non_zero() {
    let scene = fixture("20190412T103015_dmi_prep.nc");
    let out = tmp("y.npy");
    for args in [
        vec![
            "input",
            scene.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--window",
            "0,0,999,10",
        ],
        vec![
            "input",
            "/nonexistent/scene.nc",
            "--out",
            out.to_str().unwrap(),
        ],
    ] {
        let (ok, _, stderr) = icelens(&args);
        assert!(!ok);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(lines[0].starts_with("error: "), "{stderr}");
    }
}

#[test]
fn synth_writes_a_readable_scene() {
    let dir = tmp("synth");
    std::fs::create_dir_all(&dir).unwrap();
    let (ok, _, stderr) = icelens(&[
        "synth",
        "--out",
        dir.to_str().unwrap(),
        "--size",
        "120",
        "130",
        "--seed",
        "4",
        "--service",
        "cis",
        "--stamp",
        "20191001T050000",
    ]);
    assert!(ok, "{stderr}");
    let file = dir.join("20191001T050000_cis_prep.nc");
    let (ok, stdout, stderr) = icelens(&["inspect", file.to_str().unwrap(), "--json"]);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v[0]["lines"], 120);
    assert_eq!(v[0]["ice_service"], "cis");
    assert_eq!(v[0]["has_charts"], true);
}
