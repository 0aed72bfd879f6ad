//! Times `icelens_core::read_scene` on one file.
//!
//!   icelens-bench-decode FILE [RUNS]      (RUNS defaults to 3)
//!
//! Each run reads the file into memory (timed separately) and decodes it. Prints one line per
//! run, then a summary line `RESULT key=value ...` for scripts: minimum and median decode time
//! in seconds, the file read time, and peak resident memory (VmHWM) in bytes.
use std::time::Instant;

use icelens_core::{read_scene, ReadLimits};

fn vm_hwm_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: icelens-bench-decode FILE [RUNS]");
    let runs: usize = args
        .next()
        .map_or(3, |r| r.parse().expect("RUNS must be a number"));
    let name = std::path::Path::new(&path)
        .file_name()
        .map_or_else(|| path.clone(), |n| n.to_string_lossy().into_owned());
    let limits = ReadLimits::default();

    let mut decode = Vec::with_capacity(runs);
    let mut read = Vec::with_capacity(runs);
    let mut decoded_bytes = 0usize;
    for run in 1..=runs {
        let t0 = Instant::now();
        let bytes = std::fs::read(&path).expect("cannot read the file");
        let t1 = Instant::now();
        let file_len = bytes.len();
        let scene = read_scene(&name, bytes, &limits).unwrap_or_else(|e| panic!("{e}"));
        let t2 = Instant::now();
        let px = scene.lines * scene.samples;
        decoded_bytes = scene.sar.iter().map(|v| v.len() * 4).sum::<usize>()
            + scene
                .charts
                .as_ref()
                .map_or(0, |c| c.iter().map(Vec::len).sum())
            + scene.coarse.iter().map(|v| v.len() * 4).sum::<usize>();
        assert_eq!(scene.sar[0].len(), px);
        // Touch the result so that nothing can be optimised away.
        let checksum: f64 = scene.sar.iter().map(|v| v[px / 2] as f64).sum();
        drop(scene);
        let (r, d) = ((t1 - t0).as_secs_f64(), (t2 - t1).as_secs_f64());
        println!(
            "run {run}: file read {r:.3} s ({:.0} MB), read_scene {d:.3} s, {px} pixels, checksum {checksum:.4}",
            file_len as f64 / 1e6
        );
        read.push(r);
        decode.push(d);
    }
    decode.sort_by(f64::total_cmp);
    read.sort_by(f64::total_cmp);
    println!(
        "RESULT min_s={:.4} median_s={:.4} read_min_s={:.4} peak_rss_bytes={} decoded_bytes={}",
        decode[0],
        decode[decode.len() / 2],
        read[0],
        vm_hwm_bytes(),
        decoded_bytes
    );
}
