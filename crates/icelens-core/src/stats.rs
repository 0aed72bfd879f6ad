//! Summaries of a scene for `icelens inspect` and the scene list of the page.

use serde::Serialize;

use crate::chart::Chart;
use crate::scene::Scene;

/// What `icelens inspect --json` prints for one scene.
#[derive(Debug, Clone, Serialize)]
pub struct SceneSummary {
    pub scene: String,
    pub file: String,
    pub format: &'static str,
    pub lines: usize,
    pub samples: usize,
    pub grid_lines: usize,
    pub grid_samples: usize,
    pub ice_service: Option<String>,
    pub mission: Option<String>,
    pub region: Option<String>,
    /// ISO 8601 acquisition start.
    pub acquired: Option<String>,
    pub chart_time: Option<String>,
    pub has_charts: bool,
    /// Share of pixels with SAR data (HH not equal to the fill value 0).
    pub valid_fraction: f64,
    pub variables: Vec<String>,
    /// Per chart: pixel count of each class present, plus `"255"` for unlabelled pixels.
    pub histograms: Vec<ChartHistogram>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChartHistogram {
    pub chart: Chart,
    /// `(value, pixels)` for every value that occurs.
    pub counts: Vec<(u8, u64)>,
}

impl SceneSummary {
    pub fn of(scene: &Scene) -> Self {
        let histograms = Chart::ALL
            .into_iter()
            .filter_map(|chart| {
                let hist = scene.class_histogram(chart)?;
                let counts = (0..256)
                    .filter(|v| hist[*v] > 0)
                    .map(|v| (v as u8, hist[v]))
                    .collect();
                Some(ChartHistogram { chart, counts })
            })
            .collect();
        let m = &scene.meta;
        SceneSummary {
            scene: m.scene.clone(),
            file: scene.file.clone(),
            format: scene.container.as_str(),
            lines: scene.lines,
            samples: scene.samples,
            grid_lines: scene.grid_lines,
            grid_samples: scene.grid_samples,
            ice_service: m.ice_service.clone(),
            mission: m.mission.clone(),
            region: m.region.clone(),
            acquired: m.acquired.map(|t| t.iso()),
            chart_time: m.chart_time.map(|t| t.iso()),
            has_charts: scene.has_charts(),
            valid_fraction: scene.valid_fraction(),
            variables: scene.variables.iter().map(|v| v.name.clone()).collect(),
            histograms,
        }
    }
}
