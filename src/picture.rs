//! Putting RGBA pixels on a canvas.

use wasm_bindgen::{Clamped, JsCast};
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, ImageData};

/// Sizes the canvas to the picture and draws it, pixel for pixel (CSS does the scaling).
pub fn draw(canvas: &HtmlCanvasElement, rgba: &[u8], width: usize, height: usize) {
    canvas.set_width(width as u32);
    canvas.set_height(height as u32);
    let Ok(Some(ctx)) = canvas.get_context("2d") else {
        return;
    };
    let Ok(ctx) = ctx.dyn_into::<CanvasRenderingContext2d>() else {
        return;
    };
    ctx.clear_rect(0.0, 0.0, width as f64, height as f64);
    if rgba.len() != width * height * 4 {
        return;
    }
    if let Ok(img) =
        ImageData::new_with_u8_clamped_array_and_sh(Clamped(rgba), width as u32, height as u32)
    {
        let _ = ctx.put_image_data(&img, 0.0, 0.0);
    }
}
