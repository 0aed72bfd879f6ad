//! Evaluation across machines: `--shard`, `evaluate --partial`, `merge`; the dataset atlas;
//! fine-tuning with an atlas's weights. On the shared fixtures and reference checkpoint.

use std::path::PathBuf;

mod common;

use common::{icelens, shared};

const MODEL: &str = "reference/pizza_marinara.pt";
/// The fixtures in file-name order: two labelled scenes and a test-style one.
const FIXTURES: [&str; 3] = [
    "fixtures/20190412T103015_dmi_prep.nc",
    "fixtures/20200117T211533_cis_prep.nc",
    "fixtures/20211130T083012_dmi_prep.nc",
];

fn path(rel: &str) -> String {
    shared().join(rel).to_string_lossy().into_owned()
}

fn tmp(name: &str) -> PathBuf {
    common::tmp("cluster-cli", name)
}

fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

/// `evaluate` args: the model, then the fixtures in the given order.
fn eval_args(order: [usize; 3]) -> Vec<String> {
    let mut a = vec!["evaluate".to_string(), "--model".into(), path(MODEL)];
    a.extend(order.iter().map(|i| path(FIXTURES[*i])));
    a
}

fn run(args: &[String]) -> (bool, String, String) {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    icelens(&refs)
}

fn with(mut a: Vec<String>, more: &[&str]) -> Vec<String> {
    a.extend(more.iter().map(|s| s.to_string()));
    a
}

#[test]
fn three_shards_merged_equal_one_run_byte_for_byte() {
    // The shards, scenes listed in a shuffled order: the split sorts them first.
    let mut parts = Vec::new();
    for k in 1..=3 {
        let part = tmp(&format!("part-{k}.json"));
        let (ok, _, stderr) = run(&with(
            eval_args([2, 0, 1]),
            &["--shard", &format!("{k}/3"), "--partial", s(&part)],
        ));
        // Shard 3 holds the test-style scene: it fails there, is recorded in the part, and
        // the task still succeeds so that a dependent merge runs.
        assert!(ok, "shard {k}: {stderr}");
        assert!(
            stderr.contains(&format!("shard {k}/3: 1 of 3 scenes")),
            "{stderr}"
        );
        parts.push(part);
    }
    let part3: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&parts[2]).unwrap()).unwrap();
    assert_eq!(part3["failed"][0]["file"], "20211130T083012_dmi_prep.nc");
    assert_eq!(part3["format"], "icelens-partial");
    assert_eq!(part3["models"][0]["name"], "pizza_marinara.pt");

    // Merged (parts in another order) against one run over the scenes in file-name order.
    let (m_csv, s_csv) = (tmp("merged.csv"), tmp("single.csv"));
    let merge = |more: &[&str]| {
        let mut a = vec!["merge".to_string()];
        a.extend(parts.iter().rev().map(|p| s(p).to_string()));
        run(&with(a, more))
    };
    let (m_ok, m_json, m_err) =
        merge(&["--by", "all", "--rank", "SOD", "--json", "--csv", s(&m_csv)]);
    let (s_ok, s_json, s_err) = run(&with(
        eval_args([0, 1, 2]),
        &["--by", "all", "--rank", "SOD", "--json", "--csv", s(&s_csv)],
    ));
    assert!(!s_ok && !m_ok, "both report the unscorable scene");
    assert!(
        m_err.contains("20211130T083012_dmi_prep.nc") && m_err.contains("no ice charts"),
        "{m_err}"
    );
    assert!(s_err.contains("no ice charts"), "{s_err}");
    let got: serde_json::Value = serde_json::from_str(&m_json).unwrap();
    assert_eq!(got["scenes"].as_array().unwrap().len(), 2);
    assert!(got["breakdown"]["rows"].as_array().unwrap().len() > 10);
    assert_eq!(m_json, s_json, "merged JSON differs from the single run's");
    let (a, b) = (
        std::fs::read(&m_csv).unwrap(),
        std::fs::read(&s_csv).unwrap(),
    );
    assert!(a.len() > 200);
    assert_eq!(a, b, "merged CSV differs from the single run's");
    // `--out` writes the pooled counts as one part, which merges alone into the same result.
    let whole = tmp("merged-whole.json");
    let (_, _, _) = merge(&["--out", s(&whole)]);
    let (w_ok, w_json, w_err) = run(&[
        "merge".into(),
        s(&whole).into(),
        "--by".into(),
        "all".into(),
        "--rank".into(),
        "SOD".into(),
        "--json".into(),
    ]);
    assert!(!w_ok && w_err.contains("no ice charts"), "{w_err}");
    assert_eq!(
        w_json, s_json,
        "the merged part differs from the single run"
    );
    // The text table too, and another --by chosen at merge time.
    let (_, m_text, _) = merge(&["--by", "region,land"]);
    let (_, s_text, _) = run(&with(eval_args([0, 1, 2]), &["--by", "region,land"]));
    assert!(m_text.contains("Worst conditions by combined"));
    assert_eq!(m_text, s_text);
}

#[test]
fn merge_refuses_parts_that_are_not_one_run() {
    // Shards 1/2 and 2/2 of the two labelled scenes, and shard 1/2 of a renamed model copy.
    let dir = tmp("other");
    std::fs::create_dir_all(&dir).unwrap();
    let other_model = dir.join("other.pt");
    std::fs::copy(path(MODEL), &other_model).unwrap();
    let labelled = |model: &str, k: usize, out: &PathBuf| {
        let (ok, _, stderr) = run(&[
            "evaluate".into(),
            "--model".into(),
            model.into(),
            path(FIXTURES[0]),
            path(FIXTURES[1]),
            "--shard".into(),
            format!("{k}/2"),
            "--partial".into(),
            s(out).into(),
        ]);
        assert!(ok, "{stderr}");
    };
    let (p1, p2, q1) = (tmp("p1.json"), tmp("p2.json"), tmp("q1.json"));
    labelled(&path(MODEL), 1, &p1);
    labelled(&path(MODEL), 2, &p2);
    labelled(s(&other_model), 1, &q1);
    let merge = |parts: &[&PathBuf]| {
        let mut a = vec!["merge".to_string()];
        a.extend(parts.iter().map(|p| s(p).to_string()));
        let (ok, _, stderr) = run(&a);
        assert!(!ok);
        let line = stderr
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or_default()
            .to_string();
        line
    };
    let e = merge(&[&p2, &q1]);
    assert!(
        e.contains("different models") && e.contains("other.pt") && e.contains("q1.json"),
        "{e}"
    );
    let e = merge(&[&p1, &p1]);
    assert!(e.contains("both hold scene 20190412T103015_dmi"), "{e}");
    let e = merge(&[&p2]);
    assert!(e.contains("shard 1/2 is missing"), "{e}");
    let junk = tmp("junk.json");
    std::fs::write(&junk, b"{\"pooled\": 1}").unwrap();
    let e = merge(&[&junk]);
    assert!(
        e.contains("junk.json") && e.contains("not an icelens partial result"),
        "{e}"
    );
    // A dimension the parts did not count cannot be asked for... every part counts all.
    let (ok, _, stderr) = run(&[
        "merge".into(),
        s(&p1).into(),
        s(&p2).into(),
        "--by".into(),
        "nonsense".into(),
    ]);
    assert!(
        !ok && stderr.contains("unknown dimension \"nonsense\""),
        "{stderr}"
    );
}

#[test]
fn bad_shards_are_refused_with_the_rule() {
    for bad in ["0/3", "4/3", "3", "a/b", "1/0"] {
        let (ok, _, stderr) = run(&with(eval_args([0, 1, 2]), &["--shard", bad]));
        assert!(!ok, "{bad}");
        assert!(
            stderr.contains("K/N") && stderr.contains(bad),
            "{bad}: {stderr}"
        );
    }
}

#[test]
fn predict_takes_only_its_shard() {
    let upload = tmp("shard2.nc");
    let mut a = vec!["predict".to_string(), "--model".into(), path(MODEL)];
    a.extend([2, 1, 0].iter().map(|i| path(FIXTURES[*i])));
    let (ok, _, stderr) = run(&with(a, &["--upload", s(&upload), "--shard", "2/3"]));
    assert!(ok, "{stderr}");
    let bytes = std::fs::read(&upload).unwrap();
    let has = |name: &str| bytes.windows(name.len()).any(|w| w == name.as_bytes());
    assert!(
        has("20200117T211533_cis_SIC"),
        "the second scene in name order"
    );
    assert!(!has("20190412T103015_dmi_SIC") && !has("20211130T083012_dmi_SIC"));
}

#[test]
fn dataset_prints_the_shipped_atlas_and_reads_lists_and_folders() {
    let (ok, stdout, stderr) = icelens(&["dataset", "--json", "--dimension", "service"]);
    assert!(ok, "{stderr}");
    let atlas: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(atlas["train_scenes"], 512);
    assert_eq!(atlas["test_scenes"], 20);
    assert_eq!(atlas["weights"]["dimension"], "service");
    let cis = atlas["weights"]["groups"]["cis"].as_f64().unwrap();
    assert!(
        (cis - (12.0 / 20.0) / (197.0 / 512.0)).abs() < 1e-12,
        "{cis}"
    );
    assert_eq!(atlas["classes"]["overall"]["scenes"], 512);

    let (ok, text, _) = icelens(&["dataset"]);
    assert!(ok);
    assert!(text.contains("512 training scenes, 20 test scenes"));
    let line = text.lines().find(|l| l.starts_with("SGRDIEA")).unwrap();
    assert!(line.contains("42") && line.contains("<-"), "{line}");
    let (ok, csv, _) = icelens(&["dataset", "--csv"]);
    assert!(ok && csv.starts_with("facet,group,train,test,"));

    // A folder's .nc names (the files are empty: never read) against a text list.
    let dir = tmp("names");
    std::fs::create_dir_all(&dir).unwrap();
    for n in [
        "20200101T100000_dmi_prep.nc",
        "20200102T100000_cis_prep.nc",
        "20200103T100000_cis_prep.nc",
        "readme.txt",
    ] {
        std::fs::write(dir.join(n), b"").unwrap();
    }
    let list = tmp("test.txt");
    std::fs::write(&list, "# test\n20210101T100000_dmi_prep.nc\n").unwrap();
    let (ok, stdout, stderr) =
        icelens(&["dataset", "--train", s(&dir), "--test", s(&list), "--json"]);
    assert!(ok, "{stderr}");
    let a: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(a["train_scenes"], 3);
    let service = &a["facets"][0];
    assert_eq!(service["facet"], "service");
    assert_eq!(service["groups"][0]["group"], "cis");
    assert_eq!(service["groups"][0]["train"], 2);
    assert_eq!(service["groups"][1]["weight"].as_f64().unwrap(), 3.0);
    assert!(a.get("classes").is_none());

    std::fs::write(&list, "[\"a\", 3]").unwrap();
    let (ok, _, stderr) = icelens(&["dataset", "--train", s(&dir), "--test", s(&list)]);
    assert!(
        !ok && stderr.contains("test.txt") && stderr.contains("not a JSON list"),
        "{stderr}"
    );
    let (ok, _, stderr) = icelens(&["dataset", "--train", s(&dir)]);
    assert!(!ok && stderr.contains("--test"), "{stderr}");
    let (ok, _, stderr) = icelens(&["dataset", "--dimension", "land"]);
    assert!(
        !ok && stderr.contains("unknown dimension \"land\""),
        "{stderr}"
    );
}

#[test]
fn finetune_draws_groups_with_an_atlas_s_test_shares() {
    let atlas = tmp("atlas.json");
    let (ok, stdout, _) = icelens(&["dataset", "--json"]);
    assert!(ok);
    std::fs::write(&atlas, &stdout).unwrap();
    let base = |more: &[&str]| {
        let out = tmp("tuned.pt");
        let mut a = vec![
            "finetune",
            "--model",
            MODEL,
            FIXTURES[0],
            FIXTURES[1],
            "--out",
            s(&out),
            "--device",
            "cpu",
            "--patches",
            "4",
            "--patch-size",
            "64",
            "--batch",
            "2",
            "--epochs",
            "1",
            "--steps",
            "1",
            "--val",
            "0.5",
        ]
        .into_iter()
        .map(|x| {
            if x.starts_with("reference/") || x.starts_with("fixtures/") {
                path(x)
            } else {
                x.to_string()
            }
        })
        .collect::<Vec<String>>();
        a.extend(more.iter().map(|m| m.to_string()));
        run(&a)
    };
    let (ok, _, stderr) = base(&["--weights-from", s(&atlas)]);
    assert!(!ok && stderr.contains("give --balance"), "{stderr}");
    // Both fixtures are in services the test set has: training runs, drawing by its shares.
    let (ok, _, stderr) = base(&["--balance", "service", "--weights-from", s(&atlas)]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("service groups drawn with the test shares of"),
        "{stderr}"
    );
    // An atlas whose test set has neither service: nothing to draw, said so.
    let mut a: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    for g in a["facets"][0]["groups"].as_array_mut().unwrap() {
        g["test_share"] = 0.0.into();
    }
    std::fs::write(&atlas, a.to_string()).unwrap();
    let (ok, _, stderr) = base(&["--balance", "service", "--weights-from", s(&atlas)]);
    assert!(
        !ok && stderr.contains("none of the scenes' service groups (dmi, cis)"),
        "{stderr}"
    );
}
