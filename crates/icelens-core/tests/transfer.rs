//! A scene split into a header and arrays (the Web Worker handover) comes back whole, and a
//! damaged handover is refused.

mod common;

use common::{fixture_bytes, FIXTURES};
use icelens_core::render::{sar_rgba, sar_rgba_of, SarView};
use icelens_core::scene::AttrValue;
use icelens_core::transfer::{
    decode_workers, expected_arrays, join, place, share_out, slots, split, split_small, Array,
    Parts, Share, TransferError,
};
use icelens_core::{read_scene, ReadLimits, Scene, SceneFile, BIG_ARRAYS};

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

/// What the page does with a dropped scene: `workers` workers, each with its own copy of the
/// file, decode the shares [`share_out`] gives them (the first also the small parts), and the
/// page puts the arrays in their places.
fn decode_in_pieces(name: &str, workers: usize) -> Result<Scene, TransferError> {
    let mut header = None;
    let mut shares = vec![];
    for (w, wanted) in share_out(workers).into_iter().enumerate() {
        let file = SceneFile::open(name, fixture_bytes(name), &ReadLimits::default()).unwrap();
        let mine: Vec<usize> = wanted
            .into_iter()
            .filter(|i| *i < file.big_arrays())
            .collect();
        let mut arrays = vec![];
        if w == 0 {
            let (h, coarse) = split_small(&file, file.read_small().unwrap());
            header = Some(h);
            arrays.extend(coarse);
        }
        arrays.extend(mine.iter().map(|i| file.read_big(*i).unwrap()));
        shares.push(Share {
            coarse: w == 0,
            big: mine,
            arrays,
        });
    }
    let header = header.unwrap();
    let arrays = place(&slots(&header)?, shares)?;
    join(Parts { header, arrays })
}

#[test]
fn a_scene_decoded_in_pieces_by_any_number_of_workers_is_the_scene() {
    for name in FIXTURES {
        let whole = read(name);
        for workers in 1..=BIG_ARRAYS {
            let pieces = decode_in_pieces(name, workers).unwrap();
            assert_same(&pieces, &whole);
        }
    }
}

#[test]
fn the_big_arrays_are_shared_out_once_each_with_the_pictures_first() {
    let weight = |i: usize| if i < 4 { 4 } else { 1 };
    for workers in 0..=BIG_ARRAYS + 2 {
        let plan = share_out(workers);
        assert_eq!(
            plan.len(),
            workers.clamp(1, BIG_ARRAYS),
            "{workers} workers"
        );
        let mut all: Vec<usize> = plan.iter().flatten().copied().collect();
        all.sort();
        assert_eq!(all, (0..BIG_ARRAYS).collect::<Vec<_>>(), "{plan:?}");
        // Whatever view is asked for, the first worker decodes it before anything else.
        for view in SarView::ALL {
            assert_eq!(&plan[0][..view.arrays().len()], view.arrays(), "{plan:?}");
        }
        let load: Vec<usize> = plan
            .iter()
            .map(|p| p.iter().map(|i| weight(*i)).sum())
            .collect();
        // Within one chart of the best any plan can do: HH and HV stay together on the
        // first worker, and no plan beats an even split of the weight.
        let total: usize = load.iter().sum();
        let best = 8.max(total.div_ceil(plan.len()));
        let most = *load.iter().max().unwrap();
        assert!(most <= best + 1, "{plan:?} {load:?}");
    }
    assert_eq!(share_out(2), vec![vec![0, 1, 5], vec![2, 3, 4, 6]]);
}

#[test]
fn decoding_workers_follow_threads_memory_and_channels() {
    let mb = 1 << 20;
    assert_eq!(decode_workers(1, 200 * mb, 4000 * mb), 1);
    assert_eq!(decode_workers(2, 200 * mb, 4000 * mb), 2);
    // No more than one per SAR channel.
    assert_eq!(decode_workers(16, 200 * mb, 4000 * mb), 4);
    // Each worker holds the file four times over: 4000 MB holds five of 200 MB.
    assert_eq!(decode_workers(16, 200 * mb, 2400 * mb), 3);
    // At least one, even when memory says none, or threads are unknown.
    assert_eq!(decode_workers(8, 200 * mb, 100 * mb), 1);
    assert_eq!(decode_workers(0, 0, 0), 1);
    assert_eq!(decode_workers(8, u64::MAX, u64::MAX), 1);
}

#[test]
fn shares_that_do_not_fit_the_scene_are_refused() {
    let name = FIXTURES[0];
    let file = SceneFile::open(name, fixture_bytes(name), &ReadLimits::default()).unwrap();
    let (header, _) = split_small(&file, file.read_small().unwrap());
    let slots = slots(&header).unwrap();
    assert_eq!(slots.big.len(), file.big_arrays());
    let coarse = slots.coarse.len();
    let share = |c: bool, big: Vec<usize>| Share {
        coarse: c,
        arrays: vec![(); usize::from(c) * coarse + big.len()],
        big,
    };
    // Everything once: every slot filled.
    let all = place(
        &slots,
        vec![share(true, vec![0, 1, 5]), share(false, vec![2, 3, 4, 6])],
    );
    assert_eq!(all.unwrap().len(), slots.arrays.len());
    assert_eq!(
        place(
            &slots,
            vec![
                share(true, vec![0, 1, 5]),
                share(false, vec![1, 2, 3, 4, 6])
            ]
        ),
        Err(TransferError::Twice {
            index: slots.big[1]
        })
    );
    assert_eq!(
        place(&slots, vec![share(true, vec![0, 1, 2, 3, 4, 5, 6, 7])]),
        Err(TransferError::Unknown { index: 7 })
    );
    assert_eq!(
        place(&slots, vec![share(true, vec![0, 1, 2, 3, 4, 5])]),
        Err(TransferError::Missing {
            index: slots.big[6]
        })
    );
    // The 2 km channels from nobody, or from two workers.
    assert_eq!(
        place(&slots, vec![share(false, (0..7).collect())]),
        Err(TransferError::Missing {
            index: slots.coarse.start
        })
    );
    assert_eq!(
        place(
            &slots,
            vec![share(true, (0..7).collect()), share(true, vec![])]
        ),
        Err(TransferError::Twice {
            index: slots.coarse.start
        })
    );
    // A share whose arrays do not match its list.
    let mut short = share(true, (0..7).collect());
    short.arrays.pop();
    assert_eq!(
        place(&slots, vec![short]),
        Err(TransferError::Listed {
            got: coarse + 6,
            want: coarse + 7
        })
    );
}

#[test]
fn the_picture_drawn_from_hh_and_hv_alone_is_the_scenes_picture() {
    for name in FIXTURES {
        let scene = read(name);
        for view in SarView::ALL {
            let arrays = view.arrays();
            let hh = &scene.sar[arrays[0]];
            let hv = &scene.sar[*arrays.last().unwrap()];
            let ahead = sar_rgba_of(hh, hv, view);
            assert_eq!(ahead, sar_rgba(&scene, view), "{name} {view:?}");
        }
    }
}
