//! What the page holds in memory, and whether one more thing fits.
//!
//! A browser tab's wasm32 memory ends at 4 GB and cannot shrink, so the page keeps one budget
//! for everything it holds for the user: decoded scenes, models and predictions. A file that
//! would take the page over it is refused by name before its arrays are copied in, and what
//! is already loaded stays. The figures are what the structures hold, not what the files
//! weigh: a 200 MB netCDF-4 scene decodes to about 500 MB.

use std::fmt;

use crate::checkpoint::{StateDict, Tensor};
use crate::Scene;

/// The page's budget. The rest of the 4 GB is left for inference buffers, pictures and the
/// allocator's slack.
pub const PAGE_BUDGET: usize = 2_800 * 1024 * 1024;

/// Bytes per pixel of a prediction: three class maps and three float32 confidences.
pub const PREDICTION_BYTES_PER_PIXEL: usize = 3 + 3 * 4;

/// Bytes per SAR pixel of a decoded scene: four float32 channels (HH, HV, incidence,
/// distance to land), and the three chart bytes of a labelled one.
const SCENE_BYTES_PER_PIXEL: usize = 16;
const CHART_BYTES_PER_PIXEL: usize = 3;

/// What a decoded scene holds.
pub fn scene_bytes(s: &Scene) -> usize {
    let charts = if s.has_charts() {
        CHART_BYTES_PER_PIXEL
    } else {
        0
    };
    s.pixels().saturating_mul(SCENE_BYTES_PER_PIXEL + charts)
        + s.coarse.iter().map(|c| c.len() * 4).sum::<usize>()
}

/// The largest SAR grid (in pixels) a scene can have and still fit in `bytes`: a reader
/// given it as its limit refuses a larger scene from its header, before decoding anything.
pub fn scene_pixels_within(bytes: usize) -> usize {
    bytes / SCENE_BYTES_PER_PIXEL
}

/// What a prediction of `pixels` holds.
pub fn prediction_bytes(pixels: usize) -> usize {
    pixels.saturating_mul(PREDICTION_BYTES_PER_PIXEL)
}

/// What a loaded model holds: its weights twice, once as loaded (fine-tuning starts from
/// them and exports keep them) and once in the network built from them.
pub fn model_bytes(sd: &StateDict) -> usize {
    weights_bytes(sd.tensors.values())
}

fn weights_bytes<'a>(tensors: impl IntoIterator<Item = &'a Tensor>) -> usize {
    let values: usize = tensors.into_iter().map(|t| t.data.len()).sum();
    values.saturating_mul(4 * 2)
}

/// A file that does not fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverBudget {
    pub adding: usize,
    pub held: usize,
    pub budget: usize,
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1e6
}

impl fmt::Display for OverBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "decoded, it takes {:.0} MB, but the page already holds {:.0} MB of its {:.0} MB memory budget \
             (a browser tab has 4 GB at most); reload the page to start again with fewer scenes",
            mb(self.adding),
            mb(self.held),
            mb(self.budget)
        )
    }
}

impl std::error::Error for OverBudget {}

/// Whether `adding` bytes fit beside `held` within `budget`.
pub fn fits(adding: usize, held: usize, budget: usize) -> Result<(), OverBudget> {
    match held.checked_add(adding) {
        Some(total) if total <= budget => Ok(()),
        _ => Err(OverBudget {
            adding,
            held,
            budget,
        }),
    }
}

/// The budget a page URL's query asks for (`memory-budget=MB`, to try refusals without a
/// pile of real scenes), never above [`PAGE_BUDGET`].
pub fn budget_from_query(query: &str) -> usize {
    query
        .trim_start_matches('?')
        .split('&')
        .find_map(|kv| kv.strip_prefix("memory-budget="))
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|mb| mb.is_finite() && *mb > 0.0)
        .map(|mb| ((mb * 1e6) as usize).min(PAGE_BUDGET))
        .unwrap_or(PAGE_BUDGET)
}

/// The allocator gave no more memory for a large buffer.
///
/// A browser may give a page less than [`PAGE_BUDGET`] (other tabs, a phone), and an
/// infallible allocation that fails there aborts the whole wasm module, and the page with
/// everything loaded in it. The large buffers of a scene, a prediction and a tile are asked
/// for with [`try_zeros`], so that such a failure refuses one file or one run instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfMemory {
    pub bytes: usize,
}

impl fmt::Display for OutOfMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "needs another {:.0} MB, and no more memory is given (free some: remove a scene or a model)",
            mb(self.bytes)
        )
    }
}

impl std::error::Error for OutOfMemory {}

/// `len` default values (zeros), or [`OutOfMemory`] where a plain `vec!` would abort.
pub fn try_zeros<T: Clone + Default>(len: usize) -> Result<Vec<T>, OutOfMemory> {
    let bytes = len.saturating_mul(std::mem::size_of::<T>());
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| OutOfMemory { bytes })?;
    v.resize(len, T::default());
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{generate, SynthSpec};

    #[test]
    fn buffers_larger_than_memory_are_refused_not_aborted() {
        let v: Vec<f32> = try_zeros(1000).unwrap();
        assert_eq!((v.len(), v.iter().sum::<f32>()), (1000, 0.0));
        // Twice what any address space holds: a plain `vec![0.0; n]` aborts the process.
        let e = try_zeros::<f32>(usize::MAX / 2).unwrap_err();
        assert_eq!(e.bytes, usize::MAX);
        assert!(e.to_string().starts_with("needs another "), "{e}");
    }

    #[test]
    fn fits_up_to_the_budget_and_not_a_byte_more() {
        assert!(fits(40, 60, 100).is_ok());
        let e = fits(41, 60, 100).unwrap_err();
        assert_eq!((e.adding, e.held, e.budget), (41, 60, 100));
        // A size near usize::MAX must not wrap into "fits".
        assert!(fits(usize::MAX, 1, 100).is_err());
    }

    #[test]
    fn refusal_names_the_figures_in_megabytes() {
        let e = fits(19_000_000, 3_000_000, 6_000_000).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("decoded, it takes 19 MB, but the page already holds 3 MB of its 6 MB memory budget"),
            "{e}"
        );
    }

    #[test]
    fn scenes_count_their_sar_grid_charts_and_coarse_grid() {
        let bytes = generate(&SynthSpec::new(60, 50, 1)).to_netcdf().unwrap();
        let mut s = crate::read_scene("s.nc", bytes, &Default::default()).unwrap();
        let coarse: usize = s.coarse.iter().map(|c| c.len()).sum();
        assert!(coarse > 0);
        assert_eq!(scene_bytes(&s), 3000 * 19 + coarse * 4);
        s.charts = None;
        assert_eq!(scene_bytes(&s), 3000 * 16 + coarse * 4);
    }

    #[test]
    fn a_scene_larger_than_the_room_left_is_refused_by_its_reader() {
        let bytes = generate(&SynthSpec::new(60, 50, 1)).to_netcdf().unwrap();
        let s = crate::read_scene("s.nc", bytes.clone(), &Default::default()).unwrap();
        let room = scene_bytes(&s);
        assert!(scene_pixels_within(room) >= s.pixels());
        let limits = crate::ReadLimits {
            max_pixels: scene_pixels_within(s.pixels() * SCENE_BYTES_PER_PIXEL - 1),
            ..Default::default()
        };
        assert!(crate::read_scene("s.nc", bytes, &limits).is_err());
    }

    #[test]
    fn models_count_their_weights_twice() {
        let w = Tensor {
            shape: vec![10, 3],
            data: vec![0.0; 30],
        };
        let b = Tensor {
            shape: vec![10],
            data: vec![0.0; 10],
        };
        assert_eq!(weights_bytes([&w, &b]), 40 * 8);
        assert_eq!(prediction_bytes(1000), 15_000);
    }

    #[test]
    fn the_query_can_lower_the_budget_but_not_raise_it() {
        assert_eq!(budget_from_query("?memory-budget=6"), 6_000_000);
        assert_eq!(budget_from_query("?a=1&memory-budget=0.5"), 500_000);
        assert_eq!(budget_from_query("?memory-budget=999999"), PAGE_BUDGET);
        assert_eq!(budget_from_query("?memory-budget=-3"), PAGE_BUDGET);
        assert_eq!(budget_from_query("?memory-budget=NaN"), PAGE_BUDGET);
        assert_eq!(budget_from_query(""), PAGE_BUDGET);
    }
}
