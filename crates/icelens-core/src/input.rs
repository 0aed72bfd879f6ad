//! The model input, exactly as the starter kit's loader builds it (spec §b.3), for any window.
//!
//! The loader concatenates the four SAR-grid channels with the twenty 2 km channels
//! nearest-upsampled to the SAR grid by `torch.nn.functional.interpolate(mode='nearest')`.
//! Building a window directly from the source arrays gives the same numbers as cutting it out
//! of the whole-scene tensor, without ever holding that tensor (2.5 GB for a real scene).

use serde::{Deserialize, Serialize};

use crate::scene::Scene;

/// Input channels of the challenge U-Net.
pub const N_INPUT: usize = 24;

/// A window that cannot be used: text that is not one, or a rectangle outside the scene.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("window `{0}` is not ROW,COL,HEIGHT,WIDTH in whole numbers")]
    NotNumbers(String),
    #[error("window `{0}` needs four numbers: ROW,COL,HEIGHT,WIDTH")]
    NotFour(String),
    #[error("window {},{},{},{} does not fit the {lines} x {samples} scene", .window.row, .window.col, .window.height, .window.width)]
    Outside {
        window: Window,
        lines: usize,
        samples: usize,
    },
    #[error("input buffer holds {got} values, the window needs {need}")]
    Buffer { got: usize, need: usize },
}

/// The command line and the page report errors as text; `?` turns this into it there.
impl From<WindowError> for String {
    fn from(e: WindowError) -> String {
        e.to_string()
    }
}

/// A rectangle of the SAR grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub row: usize,
    pub col: usize,
    pub height: usize,
    pub width: usize,
}

impl Window {
    pub fn new(row: usize, col: usize, height: usize, width: usize) -> Self {
        Self {
            row,
            col,
            height,
            width,
        }
    }

    pub fn full(scene: &Scene) -> Self {
        Self::new(0, 0, scene.lines, scene.samples)
    }

    /// Whether `inner` lies wholly inside this window (sums checked: the windows may come
    /// from a message).
    pub fn contains(&self, inner: &Window) -> bool {
        let end = |at: usize, len: usize| at.checked_add(len);
        match (
            end(inner.row, inner.height),
            end(inner.col, inner.width),
            end(self.row, self.height),
            end(self.col, self.width),
        ) {
            (Some(bottom), Some(right), Some(self_bottom), Some(self_right)) => {
                inner.row >= self.row
                    && inner.col >= self.col
                    && bottom <= self_bottom
                    && right <= self_right
            }
            _ => false,
        }
    }

    pub fn pixels(&self) -> usize {
        self.height * self.width
    }

    /// Parses `ROW,COL,HEIGHT,WIDTH`.
    pub fn parse(s: &str) -> Result<Window, WindowError> {
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        let nums: Vec<usize> = parts
            .iter()
            .map(|p| p.parse::<usize>())
            .collect::<Result<_, _>>()
            .map_err(|_| WindowError::NotNumbers(s.into()))?;
        match nums[..] {
            [r, c, h, w] => Ok(Window::new(r, c, h, w)),
            _ => Err(WindowError::NotFour(s.into())),
        }
    }

    /// Whether the window is non-empty and lies inside a `lines x samples` grid.
    pub fn check(&self, lines: usize, samples: usize) -> Result<(), WindowError> {
        let fits = self.height > 0
            && self.width > 0
            && self
                .row
                .checked_add(self.height)
                .is_some_and(|e| e <= lines)
            && self
                .col
                .checked_add(self.width)
                .is_some_and(|e| e <= samples);
        if fits {
            Ok(())
        } else {
            Err(WindowError::Outside {
                window: *self,
                lines,
                samples,
            })
        }
    }
}

/// Source index of output index `dst` when `torch.nn.functional.interpolate(mode='nearest')`
/// resizes an axis from `input` to `output` elements: `min(floor(dst * float32(in/out)), in-1)`,
/// computed in float32 as PyTorch does (float64 would pick other rows at some sizes).
pub fn nearest_source(dst: usize, input: usize, output: usize) -> usize {
    let scale = input as f32 / output as f32;
    let src = (dst as f32 * scale).floor() as usize;
    src.min(input.saturating_sub(1))
}

impl Scene {
    /// The `[24, height, width]` float32 input of a window, channel-major, row-major.
    pub fn input_window(&self, w: Window) -> Result<Vec<f32>, WindowError> {
        let mut out = vec![0f32; N_INPUT * w.pixels()];
        self.input_window_into(w, &mut out)?;
        Ok(out)
    }

    /// Like [`Scene::input_window`], into a caller's buffer (reused across tiles).
    pub fn input_window_into(&self, w: Window, out: &mut [f32]) -> Result<(), WindowError> {
        w.check(self.lines, self.samples)?;
        let plane = w.pixels();
        if out.len() != N_INPUT * plane {
            return Err(WindowError::Buffer {
                got: out.len(),
                need: N_INPUT * plane,
            });
        }
        for (c, src) in self.sar.iter().enumerate() {
            let dst = &mut out[c * plane..(c + 1) * plane];
            for r in 0..w.height {
                let s = (w.row + r) * self.samples + w.col;
                dst[r * w.width..(r + 1) * w.width].copy_from_slice(&src[s..s + w.width]);
            }
        }
        let cols: Vec<usize> = (0..w.width)
            .map(|x| nearest_source(w.col + x, self.grid_samples, self.samples))
            .collect();
        for (k, src) in self.coarse.iter().enumerate() {
            let dst = &mut out[(4 + k) * plane..(5 + k) * plane];
            for r in 0..w.height {
                let gr = nearest_source(w.row + r, self.grid_lines, self.lines);
                let row = &src[gr * self.grid_samples..(gr + 1) * self.grid_samples];
                for (d, gc) in dst[r * w.width..(r + 1) * w.width].iter_mut().zip(&cols) {
                    *d = row[*gc];
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_contains_what_lies_inside_it_and_nothing_that_overflows() {
        let w = Window::new(10, 20, 30, 40);
        assert!(w.contains(&w));
        assert!(w.contains(&Window::new(39, 59, 1, 1)));
        assert!(!w.contains(&Window::new(39, 59, 2, 1)));
        assert!(!w.contains(&Window::new(9, 20, 1, 1)));
        assert!(!w.contains(&Window::new(10, 19, 1, 1)));
        assert!(!w.contains(&Window::new(10, 20, usize::MAX, 1)));
        assert!(!Window::new(usize::MAX, 0, 2, 2).contains(&Window::new(usize::MAX, 0, 1, 1)));
    }

    #[test]
    fn nearest_matches_torch_on_the_real_scene_size() {
        // 200 -> 5003: source rows 0, 66 and 133 cover 26 output rows, all others 25 (spec §b.3).
        let mut counts = vec![0usize; 200];
        for d in 0..5003 {
            counts[nearest_source(d, 200, 5003)] += 1;
        }
        let long: Vec<usize> = (0..200).filter(|i| counts[*i] == 26).collect();
        assert_eq!(long, vec![0, 66, 133]);
        assert!(counts.iter().all(|c| *c == 25 || *c == 26));
    }

    #[test]
    fn window_parsing_and_bounds() {
        assert_eq!(Window::parse("1, 2,3,4").unwrap(), Window::new(1, 2, 3, 4));
        assert!(Window::parse("1,2,3").is_err());
        assert!(Window::parse("a,2,3,4").is_err());
        assert!(Window::new(0, 0, 10, 10).check(10, 10).is_ok());
        assert!(Window::new(1, 0, 10, 10).check(10, 10).is_err());
        assert!(Window::new(0, 0, 0, 10).check(10, 10).is_err());
        assert!(Window::new(usize::MAX, 0, 2, 1).check(10, 10).is_err());
    }
}
