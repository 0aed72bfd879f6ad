//! The reader on a large netCDF-4 scene written at test time by the real netCDF library
//! (the shared generator `make_scenes.py`), against netCDF4-python reading the same file.

mod common;

use std::process::Command;

use common::*;
use icelens_core::{read_scene, Chart, Container, ReadLimits};

#[test]
fn a_large_netcdf4_scene_reads_like_the_c_library_reads_it() {
    let dir = std::env::temp_dir().join(format!("icelens-large-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let name = "20200305T120000_cis_prep.nc";
    let make = shared().join("tools/make_scenes.py");
    let out = Command::new("python3")
        .arg(&make)
        .args([
            "--out",
            dir.to_str().unwrap(),
            "--name",
            name,
            "--fmt",
            "nc4",
        ])
        .args(["--size", "1800", "1500", "--seed", "3"])
        .output()
        .expect("python3 with numpy, scipy and netCDF4 (scripts/setup.sh test installs them)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = dir.join(name);
    // Sums by the C library: HH over all pixels, SIC over labelled pixels, distance map.
    let script = format!(
        r#"
import netCDF4, numpy as np
d = netCDF4.Dataset({path:?}); d.set_auto_mask(False)
hh = d["nersc_sar_primary"][:].astype(np.float64)
sic = d["SIC"][:]
dm = d["distance_map"][:].astype(np.float64)
t = d["tclw"][:].astype(np.float64)
print(hh.sum(), int((sic != 255).sum()), int(sic[sic != 255].astype(np.int64).sum()), dm.sum(), t.sum())
"#,
        path = path.to_str().unwrap()
    );
    let py = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let text = String::from_utf8_lossy(&py.stdout);
    let v: Vec<f64> = text
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();

    let scene = read_scene(name, std::fs::read(&path).unwrap(), &ReadLimits::default()).unwrap();
    assert_eq!(scene.container, Container::Netcdf4);
    assert_eq!((scene.lines, scene.samples), (1800, 1500));
    assert_eq!((scene.grid_lines, scene.grid_samples), (72, 60));
    let sum = |x: &[f32]| x.iter().map(|v| *v as f64).sum::<f64>();
    assert!((sum(&scene.sar[0]) - v[0]).abs() < 1e-6 * v[0].abs().max(1.0));
    let sic = scene.chart(Chart::SIC).unwrap();
    assert_eq!(scene.labelled_pixels(Chart::SIC) as f64, v[1]);
    let sic_sum: u64 = sic.iter().filter(|c| **c != 255).map(|c| *c as u64).sum();
    assert_eq!(sic_sum as f64, v[2]);
    assert!((sum(&scene.sar[3]) - v[3]).abs() < 1e-6 * v[3].abs().max(1.0));
    assert!((sum(&scene.coarse[19]) - v[4]).abs() < 1e-6 * v[4].abs().max(1.0));
    let _ = std::fs::remove_dir_all(&dir);
}
