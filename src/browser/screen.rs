//! The screen around the page: full screen, and telling the viewer the layout changed.

use std::time::Duration;

use leptos::prelude::set_timeout;
use leptos::task::spawn_local;
use wasm_bindgen::{JsCast, JsValue};

use crate::browser::js::field;

/// Calls a method of `target` by name and lets a returned promise settle quietly: browsers
/// refuse full screen in many situations (headless, no user gesture), which is no error here.
pub fn call_quietly(target: &JsValue, method: &str) {
    let Some(f) = field(target, method).and_then(|f| f.dyn_into::<js_sys::Function>().ok()) else {
        return;
    };
    if let Ok(result) = f.call0(target) {
        if let Ok(promise) = result.dyn_into::<js_sys::Promise>() {
            spawn_local(async move {
                let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
            });
        }
    }
}

pub fn document() -> Option<web_sys::Document> {
    web_sys::window().and_then(|w| w.document())
}

/// Tells the viewer to measure itself again after the layout changed around it.
pub fn remeasure() {
    set_timeout(
        || {
            if let Some(w) = web_sys::window() {
                if let Ok(ev) = web_sys::Event::new("resize") {
                    let _ = w.dispatch_event(&ev);
                }
            }
        },
        Duration::from_millis(30),
    );
}
