//! Putting RGBA pixels on a canvas.

use wasm_bindgen::{Clamped, JsCast};
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, ImageData};

/// Sizes the canvas to the picture and draws it, pixel for pixel (CSS does the scaling).
///
/// Setting the size clears the canvas, so nothing else is cleared: on a real scene every
/// `clearRect` made the browser build a 100 MB bitmap only to blank it. A canvas with nothing
/// to show (no layer, no highlight) is made 0 x 0 rather than a transparent bitmap of the
/// scene's size; the stylesheet gives every canvas of the stack its size on screen.
pub fn draw(canvas: &HtmlCanvasElement, rgba: &[u8], width: usize, height: usize) {
    let fits = width
        .checked_mul(height)
        .and_then(|n| n.checked_mul(4))
        .is_some_and(|n| n == rgba.len() && n > 0);
    let (w, h) = if fits { (width, height) } else { (0, 0) };
    canvas.set_width(w as u32);
    canvas.set_height(h as u32);
    if !fits {
        return;
    }
    let Ok(Some(ctx)) = canvas.get_context("2d") else {
        return;
    };
    let Ok(ctx) = ctx.dyn_into::<CanvasRenderingContext2d>() else {
        return;
    };
    if let Ok(img) =
        ImageData::new_with_u8_clamped_array_and_sh(Clamped(rgba), width as u32, height as u32)
    {
        let _ = ctx.put_image_data(&img, 0.0, 0.0);
    }
}

/// One entry of a legend drawn into an exported picture.
pub struct LegendItem {
    pub label: String,
    pub colour: String,
}

fn context(canvas: &HtmlCanvasElement) -> Option<CanvasRenderingContext2d> {
    canvas.get_context("2d").ok()??.dyn_into().ok()
}

/// Saves what the viewport shows (the scene window `(x, y, w, h)` in scene pixels) as a PNG:
/// the canvases stacked with their opacities, scaled up without smoothing to at least
/// 1000 px, with the legend on the right.
pub fn export_png(
    file_name: &str,
    layers: &[(HtmlCanvasElement, f64)],
    window: (f64, f64, f64, f64),
    title: &str,
    legend: &[LegendItem],
) -> Result<(), String> {
    let (x, y, w, h) = window;
    if w < 1.0 || h < 1.0 {
        return Err("nothing is in view".into());
    }
    let scale = (1000.0 / w).max(1.0).min(4000.0 / w.max(h));
    let (pw, ph) = ((w * scale).round(), (h * scale).round());
    let side = 320.0;
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or("no document")?;
    let out: HtmlCanvasElement = document
        .create_element("canvas")
        .map_err(|_| "no canvas")?
        .dyn_into()
        .map_err(|_| "no canvas")?;
    out.set_width((pw + side) as u32);
    out.set_height(ph.max(80.0 + 30.0 * legend.len() as f64) as u32);
    let ctx = context(&out).ok_or("no 2d context")?;
    ctx.set_fill_style_str("#0b1220");
    ctx.fill_rect(0.0, 0.0, out.width() as f64, out.height() as f64);
    ctx.set_image_smoothing_enabled(false);
    for (canvas, alpha) in layers {
        if canvas.width() == 0 {
            continue;
        }
        ctx.set_global_alpha(*alpha);
        let _ = ctx.draw_image_with_html_canvas_element_and_sw_and_sh_and_dx_and_dy_and_dw_and_dh(
            canvas, x, y, w, h, 0.0, 0.0, pw, ph,
        );
    }
    ctx.set_global_alpha(1.0);
    ctx.set_fill_style_str("#e8eef9");
    ctx.set_font("bold 22px sans-serif");
    let _ = ctx.fill_text(title, pw + 20.0, 40.0);
    ctx.set_font("18px sans-serif");
    for (i, item) in legend.iter().enumerate() {
        let top = 64.0 + 30.0 * i as f64;
        ctx.set_fill_style_str(&item.colour);
        ctx.fill_rect(pw + 20.0, top, 20.0, 20.0);
        ctx.set_fill_style_str("#e8eef9");
        let _ = ctx.fill_text(&item.label, pw + 50.0, top + 16.0);
    }
    let url = out
        .to_data_url_with_type("image/png")
        .map_err(|_| "the picture could not be encoded")?;
    let a = document.create_element("a").map_err(|_| "no link")?;
    let _ = a.set_attribute("href", &url);
    let _ = a.set_attribute("download", file_name);
    if let Some(a) = a.dyn_ref::<web_sys::HtmlElement>() {
        a.click();
    }
    Ok(())
}
