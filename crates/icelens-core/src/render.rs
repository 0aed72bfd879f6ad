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
    v.sort_unstable_by(f32::total_cmp);
    // numpy's default 'linear' quantile.
    let q = |p: f64| {
        let pos = p * (v.len() - 1) as f64;
        let (i, f) = (pos.floor() as usize, pos.fract());
        let a = v[i] as f64;
        let b = v[(i + 1).min(v.len() - 1)] as f64;
        (a + (b - a) * f) as f32
    };
    Some((q(lo), q(hi)))
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

/// CSS colour of a class, for legends.
pub fn css_colour(chart: Chart, class: u8) -> String {
    let [r, g, b] = chart.colour(class).unwrap_or([0, 0, 0]);
    format!("#{r:02x}{g:02x}{b:02x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_follow_numpy_linear() {
        let v: Vec<f32> = (0..=100).map(|x| x as f32).collect();
        let valid = vec![1.0; v.len()];
        assert_eq!(stretch_limits(&v, &valid, 0.025, 0.975), Some((2.5, 97.5)));
        let none = vec![0.0; v.len()];
        assert_eq!(stretch_limits(&v, &none, 0.025, 0.975), None);
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
