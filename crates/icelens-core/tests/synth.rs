//! The scene generator writes files the reader accepts, with realistic content.

use icelens_core::input::Window;
use icelens_core::synth::{generate, SynthSpec};
use icelens_core::{read_scene, Chart, Container, ReadLimits};

#[test]
fn generated_scenes_round_trip_through_the_reader() {
    let mut spec = SynthSpec::new(300, 260, 42);
    spec.service = "cis".into();
    spec.stamp = "20200905T120000".into();
    let synth = generate(&spec);
    let bytes = synth.to_netcdf().unwrap();
    let scene = read_scene(&spec.file_name(), bytes, &ReadLimits::default()).unwrap();
    assert_eq!(scene.container, Container::Netcdf3);
    assert_eq!((scene.lines, scene.samples), (300, 260));
    assert_eq!((scene.grid_lines, scene.grid_samples), (12, 10));
    assert_eq!(scene.sar[0], synth.sar[0]);
    assert_eq!(scene.coarse[19], synth.coarse[19]);
    assert_eq!(scene.chart(Chart::SOD).unwrap(), &synth.charts[1][..]);
    assert_eq!(scene.meta.ice_service.as_deref(), Some("cis"));
    assert_eq!(scene.meta.region.as_deref(), Some("SGRDIFOXE"));
    assert_eq!(scene.meta.mission.as_deref(), Some("S1A"));
    assert_eq!(scene.meta.acquired.unwrap().iso(), "2020-09-05T12:00:00Z");
    assert_eq!(scene.variables.len(), 29);
    assert!(scene.input_window(Window::full(&scene)).is_ok());
}

#[test]
fn generated_content_is_plausible() {
    let synth = generate(&SynthSpec::new(400, 400, 9));
    let n = 400 * 400;
    // A no-data region (SAR 0, charts 255) and some data.
    let nodata = synth.sar[0].iter().filter(|v| **v == 0.0).count();
    assert!(nodata > n / 50 && nodata < n / 2, "no-data pixels {nodata}");
    for (k, chart) in Chart::ALL.iter().enumerate() {
        let c = &synth.charts[k];
        assert!(c.iter().all(|v| chart.is_valid_value(*v)), "{chart}");
        let distinct: std::collections::BTreeSet<u8> =
            c.iter().copied().filter(|v| *v != 255).collect();
        assert!(distinct.len() >= 3, "{chart} has classes {distinct:?}");
        // Charts are blank wherever the SAR is.
        for (hh, class) in synth.sar[0].iter().zip(c) {
            if *hh == 0.0 {
                assert_eq!(*class, 255);
            }
        }
    }
    // Water is darker than old ice in HH (standard scaled values, valid pixels only).
    let mean_hh = |class: u8| {
        let v: Vec<f32> = (0..n)
            .filter(|i| synth.charts[1][*i] == class && synth.sar[0][*i] != 0.0)
            .map(|i| synth.sar[0][i])
            .collect();
        v.iter().sum::<f32>() / v.len().max(1) as f32
    };
    assert!(
        mean_hh(5) > mean_hh(0) + 0.5,
        "{} vs {}",
        mean_hh(5),
        mean_hh(0)
    );
    // Values are standard scaled: within a few units of zero.
    assert!(synth.sar.iter().flatten().all(|v| v.abs() < 8.0));
    assert!(synth
        .coarse
        .iter()
        .flatten()
        .all(|v| v.is_finite() && v.abs() < 10.0));
}

#[test]
fn the_same_seed_gives_the_same_scene() {
    let a = generate(&SynthSpec::new(100, 120, 1)).to_netcdf().unwrap();
    let b = generate(&SynthSpec::new(100, 120, 1)).to_netcdf().unwrap();
    let c = generate(&SynthSpec::new(100, 120, 2)).to_netcdf().unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
}
