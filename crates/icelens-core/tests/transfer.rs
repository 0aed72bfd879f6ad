//! A scene split into a header and arrays (the Web Worker handover) comes back whole, and a
//! damaged handover is refused.

mod common;

use common::{fixture_bytes, FIXTURES};
use icelens_core::scene::AttrValue;
use icelens_core::transfer::{expected_arrays, join, split, Array, TransferError};
use icelens_core::{read_scene, ReadLimits, Scene};

fn read(name: &str) -> Scene {
    read_scene(name, fixture_bytes(name), &ReadLimits::default()).unwrap()
}

fn assert_same(a: &Scene, b: &Scene) {
    assert_eq!(a.file, b.file);
    assert_eq!(a.container, b.container);
    assert_eq!((a.lines, a.samples), (b.lines, b.samples));
    assert_eq!(
        (a.grid_lines, a.grid_samples),
        (b.grid_lines, b.grid_samples)
    );
    assert_eq!(a.sar, b.sar);
    assert_eq!(a.coarse, b.coarse);
    assert_eq!(a.charts, b.charts);
    assert_eq!(a.tie_points, b.tie_points);
    assert_eq!(a.meta, b.meta);
    // Attributes are for display: numbers within JSON's decimal precision, NaN kept.
    assert_eq!(a.variables.len(), b.variables.len());
    for (x, y) in a.variables.iter().zip(&b.variables) {
        assert_eq!((&x.name, &x.dims, &x.dtype), (&y.name, &y.dims, &y.dtype));
        assert_eq!(x.attributes.len(), y.attributes.len());
        for ((kx, vx), (ky, vy)) in x.attributes.iter().zip(&y.attributes) {
            assert_eq!(kx, ky);
            match (vx, vy) {
                (AttrValue::Numbers(p), AttrValue::Numbers(q)) => {
                    assert_eq!(p.len(), q.len());
                    for (u, v) in p.iter().zip(q) {
                        assert!(
                            (u.is_nan() && v.is_nan()) || (u - v).abs() <= 1e-12 * u.abs().max(1.0),
                            "{}.{kx}: {u} != {v}",
                            x.name
                        );
                    }
                }
                _ => assert_eq!(vx, vy),
            }
        }
    }
}

#[test]
fn every_fixture_survives_the_handover() {
    for name in FIXTURES {
        let scene = read(name);
        let parts = split(scene.clone());
        assert!(parts.header.len() < 200_000, "the header stays small");
        let want = expected_arrays(&parts.header).unwrap();
        assert_eq!(want.len(), parts.arrays.len());
        assert_eq!(
            parts.array_bytes(),
            scene.pixels() * 4 * 4
                + scene.coarse.iter().map(|c| c.len() * 4).sum::<usize>()
                + if scene.has_charts() {
                    3 * scene.pixels()
                } else {
                    0
                }
        );
        assert_same(&join(parts).unwrap(), &scene);
    }
}

#[test]
fn a_damaged_handover_is_an_error() {
    let scene = read(FIXTURES[0]);
    let parts = split(scene);

    let mut short = parts.clone();
    if let Array::F32(v) = &mut short.arrays[1] {
        v.pop();
    }
    let e = join(short).unwrap_err();
    assert!(
        matches!(&e, TransferError::Array { file, index: 1, .. } if file == "20190412T103015_dmi_prep.nc"),
        "{e}"
    );

    let mut missing = parts.clone();
    missing.arrays.pop();
    let e = join(missing).unwrap_err();
    assert!(
        matches!(e, TransferError::Count { got, want, .. } if got + 1 == want),
        "{e}"
    );

    let mut swapped = parts.clone();
    let last = swapped.arrays.len() - 1;
    swapped.arrays.swap(0, last);
    assert!(join(swapped).is_err());

    let mut header = parts.clone();
    header.header = "{\"file\": 3}".into();
    let e = join(header).unwrap_err();
    assert!(matches!(&e, TransferError::Header(_)), "{e}");

    let mut huge = parts;
    huge.header = huge
        .header
        .replacen("\"lines\":", "\"lines\":18446744073709551615,\"x\":", 1);
    assert!(join(huge).is_err());
}
