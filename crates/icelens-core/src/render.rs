//! Pictures of a scene as RGBA pixels: the SAR backdrop and chart layers.
//!
//! Kept here, not in the page, so the exact look (stretch, colours, transparency) is tested
//! natively and shared by the page and the CLI's PNGs.

use crate::chart::Chart;
use crate::scene::Scene;

/// Which SAR picture to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SarView {
    HH,
    HV,
    /// R = HH, G = HV, B = HH - HV contrast, each stretched: ice and water separate by colour.
    FalseColour,
}

/// The values at quantiles `lo` and `hi` (0..1) of a channel's valid pixels, like the
/// challenge notebooks' `np.quantile(x[valid], [0.025, 0.975])`. Valid = HH not 0.
pub fn stretch_limits(values: &[f32], valid: &[f32], lo: f64, hi: f64) -> Option<(f32, f32)> {
    let mut v: Vec<f32> = values
        .iter()
        .zip(valid)
        .filter(|(x, m)| **m != 0.0 && x.is_finite())
        .map(|(x, _)| *x)
        .collect();
    if v.is_empty() {
        return None;
    }
    // numpy's default 'linear' quantile needs the values at ranks i and i + 1 only: a
    // selection finds them in linear time, where sorting 20 M values took a second in wasm.
    let mut q = |p: f64| {
        let pos = p * (v.len() - 1) as f64;
        let (i, f) = (pos.floor() as usize, pos.fract());
        let (_, a, rest) = v.select_nth_unstable_by(i, f32::total_cmp);
        let a = *a as f64;
        // The next rank is the smallest of what lies above rank i.
        let b = rest
            .iter()
            .copied()
            .min_by(f32::total_cmp)
            .map_or(a, |b| b as f64);
        (a + (b - a) * f) as f32
    };
    let (l, h) = (q(lo), q(hi));
    Some((l, h))
}

fn to_byte(x: f32, (lo, hi): (f32, f32)) -> u8 {
    let t = if hi > lo { (x - lo) / (hi - lo) } else { 0.5 };
    (t.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// RGBA of the SAR, stretched at 2.5 % / 97.5 %; pixels without data are transparent.
pub fn sar_rgba(scene: &Scene, view: SarView) -> Vec<u8> {
    let n = scene.pixels();
    let hh = &scene.sar[0];
    let hv = &scene.sar[1];
    let limits = |x: &[f32]| stretch_limits(x, hh, 0.025, 0.975).unwrap_or((-1.0, 1.0));
    let mut out = vec![0u8; n * 4];
    match view {
        SarView::HH | SarView::HV => {
            let ch = if view == SarView::HH { hh } else { hv };
            let lim = limits(ch);
            for i in 0..n {
                if hh[i] != 0.0 {
                    let g = to_byte(ch[i], lim);
                    out[i * 4..i * 4 + 4].copy_from_slice(&[g, g, g, 255]);
                }
            }
        }
        SarView::FalseColour => {
            let diff: Vec<f32> = hh.iter().zip(hv).map(|(a, b)| a - b).collect();
            let (lh, lv, ld) = (limits(hh), limits(hv), limits(&diff));
            for i in 0..n {
                if hh[i] != 0.0 {
                    out[i * 4..i * 4 + 4].copy_from_slice(&[
                        to_byte(hh[i], lh),
                        to_byte(hv[i], lv),
                        to_byte(diff[i], ld),
                        255,
                    ]);
                }
            }
        }
    }
    out
}

/// RGBA of a class map in the challenge colours; 255 and out-of-range values transparent.
pub fn chart_rgba(values: &[u8], chart: Chart, alpha: u8) -> Vec<u8> {
    let mut out = vec![0u8; values.len() * 4];
    for (px, v) in out.chunks_exact_mut(4).zip(values) {
        if let Some([r, g, b]) = chart.colour(*v) {
            px.copy_from_slice(&[r, g, b, alpha]);
        }
    }
    out
}

/// Where a prediction disagrees with the chart. SIC: the absolute difference in tens of
/// percent, from transparent (0) through yellow to red (100 %); SOD/FLOE: red where the class
/// differs, a faint green where it agrees. Unlabelled pixels (255) stay transparent.
pub fn error_rgba(chart: Chart, truth: &[u8], pred: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; truth.len() * 4];
    for ((px, t), p) in out.chunks_exact_mut(4).zip(truth).zip(pred) {
        if *t == crate::chart::CHART_FILL {
            continue;
        }
        let rgba = if chart == Chart::SIC {
            let d = (*t as i32 - *p as i32).unsigned_abs().min(10) as f32 / 10.0;
            if d == 0.0 {
                [40, 200, 120, 90]
            } else {
                [255, (230.0 * (1.0 - d)) as u8, 0, (120.0 + 135.0 * d) as u8]
            }
        } else if t == p {
            [40, 200, 120, 90]
        } else {
            [235, 40, 40, 230]
        };
        px.copy_from_slice(&rgba);
    }
    out
}

/// Model confidence (softmax probability of the chosen class) as a dark-to-bright ramp:
/// purple where the model hesitates, yellow where it is sure.
pub fn confidence_rgba(confidence: &[f32], valid: &[f32]) -> Vec<u8> {
    // A few stops of matplotlib's `plasma`, interpolated.
    const STOPS: [[f32; 3]; 5] = [
        [13.0, 8.0, 135.0],
        [126.0, 3.0, 168.0],
        [204.0, 71.0, 120.0],
        [248.0, 149.0, 64.0],
        [240.0, 249.0, 33.0],
    ];
    let mut out = vec![0u8; confidence.len() * 4];
    for ((px, c), v) in out.chunks_exact_mut(4).zip(confidence).zip(valid) {
        if *v == 0.0 {
            continue;
        }
        let t = c.clamp(0.0, 1.0) * (STOPS.len() - 1) as f32;
        let i = (t as usize).min(STOPS.len() - 2);
        let f = t - i as f32;
        let mix = |k: usize| (STOPS[i][k] * (1.0 - f) + STOPS[i + 1][k] * f) as u8;
        px.copy_from_slice(&[mix(0), mix(1), mix(2), 255]);
    }
    out
}

/// Stops of the attention heat map (matplotlib's `inferno`), low to high; the page's legend
/// ramp (`.attn-ramp` in style.css) uses the same.
pub const ATTENTION_STOPS: [[u8; 3]; 5] = [
    [0, 0, 4],
    [87, 16, 110],
    [188, 55, 84],
    [249, 142, 9],
    [252, 255, 164],
];

/// An attention U-Net's ψ (stored as round(255 ψ)) as a heat map, clear where the SAR has
/// no data.
pub fn attention_rgba(psi: &[u8], valid: &[f32]) -> Vec<u8> {
    let mut out = vec![0u8; psi.len() * 4];
    for ((px, p), v) in out.chunks_exact_mut(4).zip(psi).zip(valid) {
        if *v == 0.0 {
            continue;
        }
        let t = f32::from(*p) / 255.0 * (ATTENTION_STOPS.len() - 1) as f32;
        let i = (t as usize).min(ATTENTION_STOPS.len() - 2);
        let f = t - i as f32;
        let (a, b) = (ATTENTION_STOPS[i], ATTENTION_STOPS[i + 1]);
        let mix = |k: usize| (f32::from(a[k]) * (1.0 - f) + f32::from(b[k]) * f).round() as u8;
        px.copy_from_slice(&[mix(0), mix(1), mix(2), 255]);
    }
    out
}

/// CSS colour of a class, for legends.
pub fn css_colour(chart: Chart, class: u8) -> String {
    let [r, g, b] = chart.colour(class).unwrap_or([0, 0, 0]);
    format!("#{r:02x}{g:02x}{b:02x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attention_runs_from_the_first_stop_to_the_last_and_is_clear_without_sar() {
        let rgba = attention_rgba(&[0, 255, 128, 200], &[1.0, 1.0, 1.0, 0.0]);
        assert_eq!(&rgba[0..4], &[0, 0, 4, 255]);
        assert_eq!(&rgba[4..8], &[252, 255, 164, 255]);
        // 128/255 lies just past the middle stop.
        let mid = &rgba[8..12];
        assert!(mid[0] >= 188 && mid[0] < 200 && mid[3] == 255, "{mid:?}");
        assert_eq!(&rgba[12..16], &[0, 0, 0, 0]);
    }

    #[test]
    fn quantiles_follow_numpy_linear() {
        let v: Vec<f32> = (0..=100).map(|x| x as f32).collect();
        let valid = vec![1.0; v.len()];
        assert_eq!(stretch_limits(&v, &valid, 0.025, 0.975), Some((2.5, 97.5)));
        let none = vec![0.0; v.len()];
        assert_eq!(stretch_limits(&v, &none, 0.025, 0.975), None);
    }

    #[test]
    fn error_layer_marks_disagreement() {
        let e = error_rgba(Chart::SOD, &[1, 1, 255], &[1, 2, 3]);
        assert_eq!(e[3], 90);
        assert_eq!(&e[4..8], &[235, 40, 40, 230]);
        assert_eq!(e[11], 0);
        let s = error_rgba(Chart::SIC, &[10, 0], &[0, 5]);
        assert_eq!(&s[0..4], &[255, 0, 0, 255]);
        assert!(s[7] > 120 && s[7] < 255);
        let c = confidence_rgba(&[0.0, 1.0, 0.5], &[1.0, 1.0, 0.0]);
        assert_eq!(&c[0..4], &[13, 8, 135, 255]);
        assert_eq!(&c[4..8], &[240, 249, 33, 255]);
        assert_eq!(c[11], 0);
    }

    #[test]
    fn chart_pixels_use_challenge_colours_and_hide_fill() {
        let rgba = chart_rgba(&[0, 10, 255, 11], Chart::SIC, 200);
        assert_eq!(&rgba[0..4], &[0x00, 0x00, 0x80, 200]);
        assert_eq!(&rgba[4..8], &[0x80, 0x00, 0x00, 200]);
        assert_eq!(&rgba[8..16], &[0u8; 8]);
        assert_eq!(css_colour(Chart::SOD, 2), "#29ffce");
    }
}
