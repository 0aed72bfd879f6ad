//! Every input a fuzzer found (tests/data/fuzz/, named after the reader it broke) must now be
//! refused with an error by that reader, not panic. New findings go into the same folder with
//! the reader's name as prefix: `npy_…`, `scene_…`, `checkpoint_…`, `story_…`.

use std::path::PathBuf;

use icelens_core::checkpoint::load_state_dict;
use icelens_core::{npy, read_scene, ReadLimits};

fn findings() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz");
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/data/fuzz")
        .map(|e| {
            let p = e.expect("entry").path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("read finding"))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn every_fuzz_finding_is_refused_by_its_reader() {
    let all = findings();
    assert!(!all.is_empty(), "tests/data/fuzz holds the findings");
    for (name, bytes) in all {
        let err = match name.split('_').next().unwrap_or("") {
            "npy" => npy::read(&bytes).err().map(|e| e.to_string()),
            "scene" => read_scene(&name, bytes.clone(), &ReadLimits::default())
                .err()
                .map(|e| e.to_string()),
            "checkpoint" => load_state_dict(&name, &bytes).err().map(|e| e.to_string()),
            other => panic!("{name}: no reader named {other:?}"),
        };
        let err = err.unwrap_or_else(|| panic!("{name} was accepted"));
        assert!(!err.is_empty(), "{name}: an empty message");
    }
}

#[test]
fn a_shape_starting_with_a_closing_parenthesis_names_the_shape() {
    let bytes = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/fuzz/npy_shape_starts_with_close_paren.npy"),
    )
    .unwrap();
    let err = npy::read(&bytes).unwrap_err();
    assert!(
        matches!(&err, npy::NpyError::Header(m) if m.contains("shape")),
        "{err}"
    );
}
