//! Reading the shared fixture scenes in both containers, and the exact model input.

mod common;

use common::*;
use icelens_core::input::{nearest_source, Window, N_INPUT};
use icelens_core::{npy, read_scene, Chart, Container, ReadLimits};

fn read(name: &str) -> icelens_core::Scene {
    read_scene(name, fixture_bytes(name), &ReadLimits::default()).expect("fixture reads")
}

#[test]
fn fixtures_read_with_their_layout_and_metadata() {
    let nc4 = read(FIXTURES[0]);
    assert_eq!(nc4.container, Container::Netcdf4);
    assert_eq!((nc4.lines, nc4.samples), (600, 500));
    assert_eq!((nc4.grid_lines, nc4.grid_samples), (24, 20));
    assert!(nc4.has_charts());
    assert_eq!(nc4.variables.len(), 29);
    assert_eq!(nc4.meta.mission.as_deref(), Some("S1B"));
    assert_eq!(nc4.meta.region.as_deref(), Some("SouthEast"));
    assert_eq!(nc4.meta.ice_service.as_deref(), Some("dmi"));
    assert_eq!(nc4.meta.acquired.unwrap().iso(), "2019-04-12T10:30:15Z");

    let nc3 = read(FIXTURES[1]);
    assert_eq!(nc3.container, Container::Netcdf3);
    assert_eq!((nc3.lines, nc3.samples), (525, 450));
    assert_eq!(nc3.meta.region.as_deref(), Some("SGRDIEA"));
    assert_eq!(nc3.meta.ice_service.as_deref(), Some("cis"));

    let test = read(FIXTURES[2]);
    assert!(!test.has_charts());
    assert_eq!(test.variables.len(), 26);
    assert_eq!((test.lines, test.samples), (576, 512));
}

#[test]
fn charts_match_the_reference_valid_pixel_counts() {
    // scene_reference.json gives, per labelled scene, the pixels each chart scores.
    let json: serde_json::Value =
        serde_json::from_slice(&reference_bytes("scene_reference.json")).unwrap();
    for name in &FIXTURES[..2] {
        let scene = read(name);
        for chart in Chart::ALL {
            let expected = json["scenes"][name]["valid_pixels"][chart.name()]
                .as_u64()
                .unwrap();
            assert_eq!(
                scene.labelled_pixels(chart) as u64,
                expected,
                "{name} {chart}"
            );
        }
        // Unsigned charts from netCDF-3 must not come back as negative bytes folded to 255s.
        let hist = scene.class_histogram(Chart::SIC).unwrap();
        assert!(hist[10] > 0, "{name}: SIC class 10 present");
    }
    for name in FIXTURES {
        let mask = json["scenes"][name]["test_mode_mask_pixels(x[0,0]==0)"]
            .as_u64()
            .unwrap();
        let scene = read(name);
        let zeros = scene.sar[0].iter().filter(|v| **v == 0.0).count() as u64;
        assert_eq!(zeros, mask, "{name}");
    }
}

#[test]
fn whole_scene_input_is_bit_identical_to_the_loader() {
    for name in FIXTURES {
        let scene = read(name);
        let npz = reference_bytes(&format!("scene_{}.npz", &name[..19]));
        let x = npy::read_npz_member(&npz, "x").unwrap();
        assert_eq!(x.shape, vec![1, N_INPUT, scene.lines, scene.samples]);
        let expected = x.to_f32().unwrap();
        let got = scene.input_window(Window::full(&scene)).unwrap();
        assert_eq!(got.len(), expected.len());
        let differing = got
            .iter()
            .zip(&expected)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        assert_eq!(differing, 0, "{name}: {differing} values differ");
    }
}

#[test]
fn windows_equal_crops_of_the_whole_input() {
    let scene = read(FIXTURES[1]);
    let whole = scene.input_window(Window::full(&scene)).unwrap();
    let (h, w) = (scene.lines, scene.samples);
    for win in [
        Window::new(0, 0, 1, 1),
        Window::new(37, 101, 64, 80),
        Window::new(h - 25, w - 26, 25, 26),
        Window::new(0, 0, h, w),
    ] {
        let part = scene.input_window(win).unwrap();
        for c in 0..N_INPUT {
            for r in 0..win.height {
                for x in 0..win.width {
                    let a = part[(c * win.height + r) * win.width + x];
                    let b = whole[(c * h + win.row + r) * w + win.col + x];
                    assert_eq!(a.to_bits(), b.to_bits(), "{win:?} c{c} r{r} x{x}");
                }
            }
        }
    }
    assert!(scene.input_window(Window::new(0, 0, h + 1, w)).is_err());
}

#[test]
fn nearest_upsampling_matches_torch_index_tables() {
    let json: serde_json::Value =
        serde_json::from_slice(&reference_bytes("upsample_nearest_index.json")).unwrap();
    let tables = json["tables"].as_object().expect("tables");
    let mut checked = 0;
    for (key, index) in tables {
        let (input, output) = key.split_once("->").expect("IN->OUT");
        let (input, output): (usize, usize) = (input.parse().unwrap(), output.parse().unwrap());
        let index = index.as_array().unwrap();
        assert_eq!(index.len(), output);
        for (d, s) in index.iter().enumerate() {
            assert_eq!(
                nearest_source(d, input, output) as u64,
                s.as_u64().unwrap(),
                "{key} at {d}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 6, "index tables found: {checked}");
}

#[test]
fn tie_points_give_corner_coordinates() {
    let scene = read(FIXTURES[0]);
    let t = &scene.tie_points;
    let (lat, lon) = scene.lat_lon(0.0, 0.0);
    assert!((lat - t.lat[0]).abs() < 1e-12 && (lon - t.lon[0]).abs() < 1e-12);
    let (lat, _) = scene.lat_lon((scene.lines - 1) as f64, (scene.samples - 1) as f64);
    assert!((lat - t.lat[t.lat.len() - 1]).abs() < 1e-9);
    let (lat, lon) = scene.lat_lon(300.0, 250.0);
    assert!(
        (55.0..70.0).contains(&lat) && (-50.0..-30.0).contains(&lon),
        "{lat} {lon}"
    );
}
