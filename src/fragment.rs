//! The view in the URL fragment (`#scene=…&model=…&layer=…&zoom=…&x=…&y=…`), so a reload or
//! a shared link shows the same thing once the same files are loaded.
//!
//! The fragment is read once at start and applied as the named scene and model arrive; it is
//! written at most twice a second (browsers throttle history updates made on every wheel
//! step).

use wasm_bindgen::{JsCast, JsValue};

/// What the fragment holds; every part is optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fragment {
    pub scene: Option<String>,
    pub model: Option<String>,
    pub layer: Option<String>,
    pub zoom: Option<f64>,
    /// Scene position (sample, line) at the centre of the view.
    pub center: Option<(f64, f64)>,
}

fn decode(s: &str) -> String {
    js_sys::decode_uri_component(s)
        .ok()
        .and_then(|v| v.as_string())
        .unwrap_or_else(|| s.to_string())
}

fn encode(s: &str) -> String {
    String::from(js_sys::encode_uri_component(s))
}

impl Fragment {
    /// Parses `#k=v&…`; unknown keys and bad numbers are ignored.
    pub fn parse(hash: &str) -> Fragment {
        let mut f = Fragment::default();
        let (mut x, mut y) = (None, None);
        for pair in hash.trim_start_matches('#').split('&') {
            let Some((k, v)) = pair.split_once('=') else {
                continue;
            };
            let v = decode(v);
            let num = v.parse::<f64>().ok().filter(|n| n.is_finite());
            match k {
                "scene" => f.scene = Some(v),
                "model" => f.model = Some(v),
                "layer" => f.layer = Some(v),
                "zoom" => f.zoom = num.filter(|z| *z > 0.0),
                "x" => x = num,
                "y" => y = num,
                _ => {}
            }
        }
        if let (Some(x), Some(y)) = (x, y) {
            f.center = Some((x, y));
        }
        f
    }

    pub fn to_hash(&self) -> String {
        let mut parts = vec![];
        if let Some(s) = &self.scene {
            parts.push(format!("scene={}", encode(s)));
        }
        if let Some(m) = &self.model {
            parts.push(format!("model={}", encode(m)));
        }
        if let Some(l) = &self.layer {
            parts.push(format!("layer={}", encode(l)));
        }
        if let Some(z) = self.zoom {
            parts.push(format!("zoom={z:.4}"));
        }
        if let Some((x, y)) = self.center {
            parts.push(format!("x={x:.1}&y={y:.1}"));
        }
        format!("#{}", parts.join("&"))
    }
}

fn get(target: &JsValue, key: &str) -> Option<JsValue> {
    js_sys::Reflect::get(target, &key.into())
        .ok()
        .filter(|v| !v.is_undefined())
}

/// The page's current fragment.
pub fn read() -> Fragment {
    let hash = web_sys::window()
        .and_then(|w| get(&w, "location"))
        .and_then(|l| get(&l, "hash"))
        .and_then(|h| h.as_string())
        .unwrap_or_default();
    Fragment::parse(&hash)
}

/// Replaces the fragment without adding a history entry.
pub fn write(f: &Fragment) {
    let Some(history) = web_sys::window().and_then(|w| get(&w, "history")) else {
        return;
    };
    let Some(replace) =
        get(&history, "replaceState").and_then(|r| r.dyn_into::<js_sys::Function>().ok())
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
