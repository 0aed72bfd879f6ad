//! Reading and writing the URL fragment (the view in a link, `icelens_core::link`).
//!
//! The fragment is read once at start and applied as the named scene and model arrive; it is
//! written at most twice a second (browsers throttle history updates made on every wheel
//! step).

pub use icelens_core::link::Fragment;
use wasm_bindgen::{JsCast, JsValue};

use crate::browser::js::field;

/// The page's current fragment.
pub fn read() -> Fragment {
    let hash = web_sys::window()
        .and_then(|w| field(&w, "location"))
        .and_then(|l| field(&l, "hash"))
        .and_then(|h| h.as_string())
        .unwrap_or_default();
    Fragment::parse(&hash)
}

/// Replaces the fragment without adding a history entry.
pub fn write(f: &Fragment) {
    let Some(history) = web_sys::window().and_then(|w| field(&w, "history")) else {
        return;
    };
    let Some(replace) =
        field(&history, "replaceState").and_then(|r| r.dyn_into::<js_sys::Function>().ok())
    else {
        return;
    };
    let _ = replace.call3(
        &history,
        &JsValue::NULL,
        &JsValue::from_str(""),
        &JsValue::from_str(&f.to_hash()),
    );
}
