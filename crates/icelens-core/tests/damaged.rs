//! Every damaged or foreign input gives an error naming the file and the problem, never a panic.

mod common;

use common::*;
use icelens_core::synth::{generate, SynthSpec};
use icelens_core::{read_scene, FileError, ReadLimits};
use rand::{Rng, SeedableRng};

fn read(name: &str, bytes: Vec<u8>) -> Result<icelens_core::Scene, FileError> {
    read_scene(name, bytes, &ReadLimits::default())
}

fn expect_err(name: &str, bytes: Vec<u8>, needle: &str) -> FileError {
    let err = match std::panic::catch_unwind(|| read(name, bytes)) {
        Ok(Ok(_)) => panic!("{name}: read succeeded, expected an error containing {needle:?}"),
        Ok(Err(e)) => e,
        Err(_) => panic!("{name}: the reader panicked"),
    };
    let msg = err.to_string();
    assert!(
        msg.starts_with(name),
        "message does not name the file: {msg}"
    );
    assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
    err
}

#[test]
fn truncated_fixtures_fail_cleanly_at_every_length() {
    for name in FIXTURES {
        let bytes = fixture_bytes(name);
        for frac in [0.0005, 0.01, 0.1, 0.3, 0.55, 0.8, 0.95, 0.999] {
            let cut = ((bytes.len() as f64) * frac) as usize;
            let short = format!("short_{cut}_{name}");
            let err = expect_err(&short, bytes[..cut].to_vec(), "");
            assert!(
                err.problem.contains("truncated")
                    || err.problem.contains("damaged")
                    || err.problem.contains("cannot hold"),
                "{err}"
            );
        }
    }
}

#[test]
fn foreign_files_are_named_for_what_they_are() {
    expect_err("empty.nc", vec![], "is empty");
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(std::iter::repeat_n(7u8, 500));
    expect_err("photo.nc", png, "is a PNG image, not a netCDF file");
    let pt = reference_bytes("pizza_marinara.pt");
    expect_err("pizza_marinara.nc", pt, "zip archive");
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(7);
    for i in 0..20 {
        let len = rng.random_range(1..5000);
        let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        expect_err(&format!("random{i}.nc"), bytes, "not a netCDF file");
    }
}

#[test]
fn random_bytes_after_a_valid_signature_never_panic() {
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(11);
    for (i, magic) in [
        &b"CDF\x01"[..],
        b"CDF\x02",
        b"CDF\x05",
        b"\x89HDF\r\n\x1a\n",
    ]
    .iter()
    .cycle()
    .take(40)
    .enumerate()
    {
        let mut bytes = magic.to_vec();
        let len = rng.random_range(0..3000);
        bytes.extend((0..len).map(|_| rng.random::<u8>()));
        expect_err(&format!("noise{i}.nc"), bytes, "");
    }
}

#[test]
fn flipped_bytes_in_real_files_never_panic() {
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(3);
    for name in FIXTURES {
        let orig = fixture_bytes(name);
        for _ in 0..12 {
            let mut bytes = orig.clone();
            for _ in 0..8 {
                let at = rng.random_range(0..bytes.len().min(40_000));
                bytes[at] = rng.random();
            }
            // Either reads (the flip hit unimportant bytes) or fails with a message.
            let _ = std::panic::catch_unwind(|| read(name, bytes)).expect("no panic");
        }
    }
}

fn small_synth(labelled: bool) -> icelens_core::synth::SynthScene {
    let mut spec = SynthSpec::new(120, 100, 5);
    spec.labelled = labelled;
    generate(&spec)
}

#[test]
fn missing_sar_variables_are_named() {
    let synth = small_synth(true);
    let bytes = synth.to_netcdf().unwrap();
    // Rename the HH variable in the header: same length, so the file stays consistent.
    let patched = replace_once(&bytes, b"nersc_sar_primary", b"nersc_sar_xrimary");
    expect_err(
        "nohh.nc",
        patched,
        "variable `nersc_sar_primary` is missing",
    );
}

#[test]
fn a_partial_chart_set_is_an_error() {
    let bytes = small_synth(true).to_netcdf().unwrap();
    let patched = replace_once(&bytes, b"\x00\x00\x00\x03SOD", b"\x00\x00\x00\x03SOX");
    expect_err("nosod.nc", patched, "variable `SOD` is missing");
}

#[test]
fn chart_values_outside_the_classes_are_named() {
    let mut synth = small_synth(true);
    synth.charts[1][17] = 9;
    synth.charts[1][18] = 9;
    let bytes = synth.to_netcdf().unwrap();
    expect_err(
        "badsod.nc",
        bytes,
        "variable `SOD` has 2 pixels of value 9, outside its classes 0 to 5",
    );
}

#[test]
fn absurd_dimension_sizes_are_refused_before_allocating() {
    let bytes = small_synth(false).to_netcdf().unwrap();
    // The header stores `sar_lines` as name, padding, then a big-endian u32 size.
    let key = b"sar_lines\x00\x00\x00";
    let at = find(&bytes, key).expect("dimension in header") + key.len();
    for (size, needle) in [
        (u32::MAX, "more than the"),
        (700_000, "more than the"),
        (4000, "cannot hold"),
    ] {
        let mut b = bytes.clone();
        b[at..at + 4].copy_from_slice(&size.to_be_bytes());
        expect_err("huge.nc", b, needle);
    }
}

#[test]
fn wrong_types_are_named() {
    let bytes = small_synth(true).to_netcdf().unwrap();
    // NC_BYTE (1) -> NC_SHORT (3) for SIC would also change sizes; instead mislabel a float
    // variable as int (NC_FLOAT 5 -> NC_INT 4): same element size, a consistent file.
    let name = b"\x00\x00\x00\x12sar_incidenceangle\x00\x00";
    let at = find(&bytes, name).expect("variable in header") + name.len();
    // dims: count + 2 ids, then attributes (tag, count, ...). Find the type after the attrs.
    let mut b = bytes.clone();
    let type_at = find(&b[at..], b"\x00\x00\x00\x05").map(|i| i + at);
    let type_at = skip_attributes(&b, at).or(type_at).unwrap();
    b[type_at..type_at + 4].copy_from_slice(&4u32.to_be_bytes());
    expect_err(
        "ints.nc",
        b,
        "variable `sar_incidenceangle` has type int32 but should be float32",
    );
}

/// Offset of the nc_type field of a classic-format variable whose name ends at `at`.
fn skip_attributes(b: &[u8], at: usize) -> Option<usize> {
    let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as usize;
    let ndims = u32_at(at);
    let mut i = at + 4 + 4 * ndims;
    let tag = u32_at(i);
    let n_attrs = u32_at(i + 4);
    i += 8;
    if tag == 0x0C {
        for _ in 0..n_attrs {
            let name_len = u32_at(i);
            i += 4 + name_len.div_ceil(4) * 4;
            let t = u32_at(i);
            let n = u32_at(i + 4);
            let size = match t {
                1 | 2 => 1,
                3 => 2,
                6 => 8,
                _ => 4,
            };
            i += 8 + (n * size).div_ceil(4) * 4;
        }
    }
    Some(i)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn replace_once(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = find(bytes, from).expect("pattern present");
    let mut b = bytes.to_vec();
    b[at..at + to.len()].copy_from_slice(to);
    b
}
