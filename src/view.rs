//! Where the picture is looked at: zoom, centre and the viewport's size, kept in the page
//! state so that other parts (the conditions table, story steps, fine-tuning on the area in
//! view) can read and move it.

use leptos::prelude::*;

/// Largest magnification: one scene pixel becomes this many screen pixels.
const MAX_ZOOM: f64 = 48.0;

/// Where the picture is looked at. Kept in the page state so that other parts (the
/// conditions table, saved views) can move it.
#[derive(Clone, Copy)]
pub struct ViewState {
    /// Screen pixels per scene pixel.
    pub zoom: RwSignal<f64>,
    /// Scene position (sample, line) at the centre of the viewport.
    pub center: RwSignal<(f64, f64)>,
    /// Divider position as a share of the viewport width; `None` when not comparing.
    pub swipe: RwSignal<Option<f64>>,
    /// Viewport size in CSS pixels.
    pub size: RwSignal<(f64, f64)>,
    /// Scene size (lines, samples) the current fit was made for.
    pub scene_size: RwSignal<(usize, usize)>,
    /// A view (zoom, centre) to show instead of the whole scene when the next scene appears:
    /// how a link's view is restored.
    pub restore: RwSignal<Option<(f64, (f64, f64))>>,
}

impl ViewState {
    pub fn new() -> Self {
        ViewState {
            zoom: RwSignal::new(1.0),
            center: RwSignal::new((0.0, 0.0)),
            swipe: RwSignal::new(None),
            size: RwSignal::new((800.0, 600.0)),
            scene_size: RwSignal::new((1, 1)),
            restore: RwSignal::new(None),
        }
    }

    /// The zoom that shows the whole scene.
    pub fn fit_zoom(&self) -> f64 {
        let (w, h) = self.size.get_untracked();
        let (lines, samples) = self.scene_size.get_untracked();
        (w / samples.max(1) as f64).min(h / lines.max(1) as f64) * 0.98
    }

    /// Shows the whole scene.
    pub fn fit(&self) {
        let (lines, samples) = self.scene_size.get_untracked();
        self.zoom.set(self.fit_zoom());
        self.center.set((samples as f64 / 2.0, lines as f64 / 2.0));
    }

    /// Centres the view on a scene position at a given zoom.
    pub fn focus(&self, line: f64, sample: f64, zoom: f64) {
        self.zoom.set(self.clamp_zoom(zoom));
        self.center.set((sample, line));
    }

    /// Keeps a zoom between half the fit and [`MAX_ZOOM`]. A tiny scene's fit can exceed
    /// the maximum (and `f64::clamp` panics when its bounds cross), so the maximum wins.
    pub fn clamp_zoom(&self, z: f64) -> f64 {
        z.max(self.fit_zoom() * 0.5).min(MAX_ZOOM)
    }

    /// Screen offset of the scene origin, and the zoom.
    pub fn transform(&self) -> (f64, f64, f64) {
        let (w, h) = self.size.get();
        let s = self.zoom.get();
        let (cx, cy) = self.center.get();
        (w / 2.0 - cx * s, h / 2.0 - cy * s, s)
    }

    /// The scene position under a viewport point.
    pub fn scene_at(&self, x: f64, y: f64) -> (f64, f64) {
        let (w, h) = self.size.get_untracked();
        let s = self.zoom.get_untracked();
        let (cx, cy) = self.center.get_untracked();
        (cx + (x - w / 2.0) / s, cy + (y - h / 2.0) / s)
    }

    /// Zooms by `factor`, keeping the scene point under (x, y) in place.
    pub fn zoom_at(&self, x: f64, y: f64, factor: f64) {
        let (px, py) = self.scene_at(x, y);
        let (w, h) = self.size.get_untracked();
        let s = self.clamp_zoom(self.zoom.get_untracked() * factor);
        self.zoom.set(s);
        self.center
            .set((px - (x - w / 2.0) / s, py - (y - h / 2.0) / s));
    }

    pub fn pan_screen(&self, dx: f64, dy: f64) {
        let s = self.zoom.get_untracked();
        self.center.update(|(cx, cy)| {
            *cx -= dx / s;
            *cy -= dy / s;
        });
    }
}

impl Default for ViewState {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(size: (f64, f64), scene: (usize, usize)) -> ViewState {
        let v = ViewState::new();
        v.size.set(size);
        v.scene_size.set(scene);
        v.fit();
        v
    }

    #[test]
    fn fit_shows_the_whole_scene_centred() {
        let v = view((800.0, 600.0), (300, 1000));
        // Width limits: 800 / 1000 samples, with a 2 % margin.
        assert!((v.zoom.get_untracked() - 0.8 * 0.98).abs() < 1e-12);
        assert_eq!(v.center.get_untracked(), (500.0, 150.0));
        let (x0, _, s) = v.transform();
        assert!(x0 > 0.0 && x0 + 1000.0 * s < 800.0, "inside the viewport");
    }

    #[test]
    fn zooming_keeps_the_point_under_the_pointer() {
        let v = view((800.0, 600.0), (300, 1000));
        let before = v.scene_at(123.0, 456.0);
        v.zoom_at(123.0, 456.0, 3.0);
        let after = v.scene_at(123.0, 456.0);
        assert!((before.0 - after.0).abs() < 1e-9 && (before.1 - after.1).abs() < 1e-9);
        assert!((v.zoom.get_untracked() - 0.784 * 3.0).abs() < 1e-9);
        // Panning moves the scene with the pointer: a drag right shows what lay left.
        let (cx, cy) = v.center.get_untracked();
        v.pan_screen(30.0, 0.0);
        let s = v.zoom.get_untracked();
        assert_eq!(v.center.get_untracked(), (cx - 30.0 / s, cy));
    }

    #[test]
    fn a_tiny_scene_zooms_to_the_maximum_without_panicking() {
        // 2 x 2 pixels in 800 x 600: the fit (294) is beyond the maximum (48).
        let v = view((800.0, 600.0), (2, 2));
        assert!(v.fit_zoom() > MAX_ZOOM);
        assert_eq!(v.clamp_zoom(1.0), MAX_ZOOM);
        v.zoom_at(400.0, 300.0, 0.5);
        assert_eq!(v.zoom.get_untracked(), MAX_ZOOM);
        // A large scene: never below half the fit, never above the maximum.
        let big = view((800.0, 600.0), (5200, 5000));
        assert_eq!(big.clamp_zoom(1e-6), big.fit_zoom() * 0.5);
        assert_eq!(big.clamp_zoom(1e6), MAX_ZOOM);
    }
}
