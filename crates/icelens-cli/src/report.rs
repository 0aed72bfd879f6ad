//! The human-readable form of `icelens inspect`.

use std::fmt::Write;

use icelens_core::meta::SceneMeta;
use icelens_core::stats::SceneSummary;
use icelens_core::{Chart, Scene};

pub fn scene_text(scene: &Scene, s: &SceneSummary) -> String {
    let mut out = String::new();
    let m = &scene.meta;
    let _ = writeln!(out, "{} ({})", s.scene, s.file);
    let _ = writeln!(out, "  format        {}", s.format);
    let _ = writeln!(
        out,
        "  SAR grid      {} lines x {} samples (80 m), 2 km grid {} x {}",
        s.lines, s.samples, s.grid_lines, s.grid_samples
    );
    let _ = writeln!(
        out,
        "  mission       {}   service {}   region {}",
        SceneMeta::or_unknown(&m.mission),
        SceneMeta::or_unknown(&m.ice_service),
        SceneMeta::or_unknown(&m.region)
    );
    let _ = writeln!(
        out,
        "  acquired      {}   chart {}",
        s.acquired.as_deref().unwrap_or("unknown"),
        s.chart_time.as_deref().unwrap_or("unknown")
    );
    let _ = writeln!(out, "  valid pixels  {:.1} %", 100.0 * s.valid_fraction);
    let _ = writeln!(
        out,
        "  charts        {}",
        if s.has_charts {
            "SIC SOD FLOE"
        } else {
            "none (test-set scene)"
        }
    );
    for h in &s.histograms {
        let total: u64 = h.counts.iter().map(|(_, n)| n).sum();
        let classes: Vec<String> = h
            .counts
            .iter()
            .map(|(v, n)| {
                let label = if *v == 255 {
                    "no class".to_string()
                } else {
                    Chart::classes(h.chart)
                        .get(*v as usize)
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| v.to_string())
                };
                format!("{label} {:.1}%", 100.0 * *n as f64 / total.max(1) as f64)
            })
            .collect();
        let _ = writeln!(out, "  {:<13} {}", h.chart.name(), classes.join(", "));
    }
    let _ = writeln!(out, "  variables     {}", s.variables.len());
    for v in &scene.variables {
        let dims: Vec<String> = v.dims.iter().map(|(n, s)| format!("{n}={s}")).collect();
        let _ = writeln!(
            out,
            "    {:<22} {:<8} ({})",
            v.name,
            v.dtype,
            dims.join(", ")
        );
    }
    out
}
