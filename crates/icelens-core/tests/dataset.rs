//! The dataset atlas on the real AI4Arctic lists shipped in `assets/datasets` (512 training
//! and 20 test names, the class pixel table). The expected counts were computed independently
//! with a few lines of Python over the same files (names split on "_" as spec §g.1 says).

mod common;

use std::path::PathBuf;

use icelens_core::dataset::*;

fn asset(name: &str) -> (String, Vec<u8>) {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../assets/datasets")
        .join(name);
    (
        p.display().to_string(),
        std::fs::read(&p).expect("asset readable"),
    )
}

fn lists() -> (Vec<String>, Vec<String>) {
    let (f, b) = asset("train_files.json");
    let train = parse_names(&f, &b).unwrap();
    let (f, b) = asset("test_files.json");
    (train, parse_names(&f, &b).unwrap())
}

fn counts(a: &Atlas, facet: Facet) -> Vec<(String, usize, usize)> {
    a.facet(facet)
        .groups
        .iter()
        .map(|g| (g.group.clone(), g.train, g.test))
        .collect()
}

fn g(list: &[(&str, usize, usize)]) -> Vec<(String, usize, usize)> {
    list.iter()
        .map(|(n, a, b)| (n.to_string(), *a, *b))
        .collect()
}

#[test]
fn the_shipped_lists_are_the_shared_ones() {
    let shared = common::shared().join("datasets");
    if !shared.is_dir() {
        return; // only a check of the copy where the originals are at hand
    }
    for name in [
        "train_files.json",
        "test_files.json",
        "train_class_pixels.csv",
    ] {
        let original = std::fs::read(shared.join(name)).unwrap();
        assert_eq!(
            asset(name).1,
            original,
            "{name} differs from the shared copy"
        );
    }
}

#[test]
fn train_and_test_distributions_of_the_real_lists() {
    let (train, test) = lists();
    assert_eq!((train.len(), test.len()), (512, 20));
    let a = Atlas::new(&train, &test, None);
    assert_eq!((a.train_scenes, a.test_scenes), (512, 20));
    assert_eq!(
        counts(&a, Facet::Service),
        g(&[("cis", 197, 12), ("dmi", 315, 8)])
    );
    assert_eq!(
        counts(&a, Facet::Mission),
        g(&[("S1A", 233, 11), ("S1B", 279, 9)])
    );
    assert_eq!(
        counts(&a, Facet::Year),
        g(&[
            ("2018", 88, 6),
            ("2019", 128, 3),
            ("2020", 117, 5),
            ("2021", 179, 6)
        ])
    );
    assert_eq!(
        counts(&a, Facet::Region),
        g(&[
            ("CapeFarewell", 39, 2),
            ("CentralEast", 39, 2),
            ("CentralWest", 36, 0),
            ("North", 31, 0),
            ("NorthAndCentralEast", 3, 0),
            ("NorthEast", 38, 0),
            ("NorthWest", 37, 2),
            ("Qaanaaq", 39, 0),
            ("SGRDIEA", 42, 6),
            ("SGRDIFOXE", 39, 4),
            ("SGRDIHA", 20, 0),
            ("SGRDIMID", 25, 0),
            ("SGRDINFLD", 39, 2),
            ("SGRDIWA", 32, 0),
            ("SouthEast", 26, 1),
            ("SouthWest", 27, 1),
        ])
    );
    let month: Vec<(String, usize, usize)> = counts(&a, Facet::Month);
    assert_eq!(month.len(), 12);
    assert_eq!(month[0], ("01 Jan".to_string(), 35, 1));
    assert_eq!(month[8], ("09 Sep".to_string(), 71, 2));
    assert_eq!(month[10], ("11 Nov".to_string(), 37, 0));
    assert_eq!(
        counts(&a, Facet::Season),
        g(&[
            ("DJF winter", 103, 3),
            ("MAM spring", 111, 7),
            ("JJA summer", 139, 6),
            ("SON autumn", 159, 4)
        ])
    );
    let hour = counts(&a, Facet::Hour);
    assert_eq!(hour.len(), 15);
    assert_eq!(hour[0], ("07".to_string(), 18, 1));
    assert_eq!(hour[4], ("11".to_string(), 41, 5));
    assert_eq!(hour[14], ("21".to_string(), 88, 2));

    // Where the test share differs most, and its weight (test share / training share).
    for (facet, group, diff, weight) in [
        (
            Facet::Service,
            "cis",
            0.21523437499999998,
            1.5593908629441624,
        ),
        (Facet::Region, "SGRDIEA", 0.21796875, 3.657142857142857),
        (
            Facet::Mission,
            "S1A",
            0.09492187500000004,
            1.2085836909871246,
        ),
        (Facet::Year, "2018", 0.128125, 1.7454545454545454),
        (
            Facet::Month,
            "07 Jul",
            0.11992187500000001,
            2.497560975609756,
        ),
        (
            Facet::Season,
            "MAM spring",
            0.13320312499999998,
            1.6144144144144144,
        ),
        (Facet::Hour, "11", 0.169921875, 3.1219512195121952),
    ] {
        let t = a.facet(facet);
        let m = t.most_different().unwrap();
        assert_eq!(m.group, group, "{facet}");
        assert!(
            (m.difference - diff).abs() < 1e-12,
            "{facet}: {}",
            m.difference
        );
        assert!((m.weight.unwrap() - weight).abs() < 1e-12, "{facet}");
        assert_eq!(t.groups.iter().filter(|g| g.most_different).count(), 1);
        // Weighted training scenes reproduce the test shares.
        let norm: f64 = t
            .groups
            .iter()
            .filter_map(|g| Some(g.weight? * g.train as f64))
            .sum();
        for g in &t.groups {
            if let Some(w) = g.weight {
                assert!((w * g.train as f64 / norm - g.test_share).abs() < 1e-12);
            }
        }
    }
    // Regions without test scenes weigh 0: fine-tuning would never draw them.
    assert_eq!(a.facet(Facet::Region).weights()["North"], 0.0);
}

#[test]
fn ready_to_train_names_give_the_same_service_and_time_groups() {
    let (train, test) = lists();
    let short = |l: &[String]| -> Vec<String> {
        l.iter()
            .map(|n| {
                format!(
                    "{}_prep.nc",
                    icelens_core::SceneMeta::from_file_name(n).scene
                )
            })
            .collect()
    };
    let a = Atlas::new(&train, &test, None);
    let b = Atlas::new(&short(&train), &short(&test), None);
    for f in [
        Facet::Service,
        Facet::Year,
        Facet::Month,
        Facet::Season,
        Facet::Hour,
    ] {
        assert_eq!(a.facet(f), b.facet(f), "{f}");
    }
    // Region and mission are not in ready-to-train names.
    assert_eq!(counts(&b, Facet::Region), g(&[("unknown", 512, 20)]));
    assert!(b.facet(Facet::Region).most_different().is_none());
}

#[test]
fn class_balance_from_the_pixel_table() {
    let (train, test) = lists();
    let (f, bytes) = asset("train_class_pixels.csv");
    let pixels = ClassPixels::parse(&f, &bytes).unwrap();
    assert_eq!(pixels.scenes.len(), 513);
    let a = Atlas::new(&train, &test, Some(&pixels));
    let c = a.classes.as_ref().unwrap();
    assert!(c.train_without_counts.is_empty());
    assert_eq!(c.counted_not_listed, ["20200625T081801_dmi"]);
    assert_eq!(c.overall.scenes, 512);
    let chart = |b: &GroupBalance, i: usize| {
        (
            b.charts[i].labelled,
            b.charts[i].masked,
            b.charts[i].pixels[0],
        )
    };
    assert_eq!(chart(&c.overall, 0), (7860756754, 5238930775, 4470451351));
    assert_eq!(chart(&c.overall, 1), (6730342942, 6369344587, 4470451351));
    assert_eq!(chart(&c.overall, 2), (6707942475, 6391745054, 4470451351));
    let group = |facet: Facet, name: &str| {
        c.groups
            .iter()
            .find(|b| b.facet == Some(facet) && b.group == name)
            .unwrap()
    };
    let cis = group(Facet::Service, "cis");
    assert_eq!(cis.scenes, 197);
    assert_eq!(chart(cis, 0), (2744503583, 2181078663, 1716744277));
    assert_eq!(
        chart(group(Facet::Service, "dmi"), 2),
        (4264405128, 3909700155, 2753707074)
    );
    for b in &c.groups {
        for ch in &b.charts {
            assert_eq!(ch.pixels.len(), ch.chart.n_classes());
            let s: f64 = ch.shares.iter().sum();
            assert!(
                ch.labelled == 0 || (s - 1.0).abs() < 1e-9,
                "{} {}",
                b.group,
                s
            );
        }
    }
    let csv = a.to_csv();
    assert!(
        csv.contains("\nservice,cis,197,,,,,,,SIC,0,1716744277,"),
        "class lines"
    );
    assert!(csv.contains("\nregion,SGRDIEA,42,6,"), "group lines");
}
