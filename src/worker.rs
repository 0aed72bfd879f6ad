//! The page's Web Worker: reads a dropped scene file and decodes it off the UI thread.
//!
//! A real scene is a 100-200 MB netCDF-4 file whose decoding takes seconds and briefly needs
//! its bytes and its arrays together. Here that happens in a worker with its own wasm memory:
//! the page keeps answering, and a file that is too much for memory kills this worker, not
//! the tab. The page starts one worker per file and ends it afterwards, which also hands
//! the decoding's memory back to the browser (wasm memory never shrinks).
//!
//! It also runs the network on the CPU for the page, tile by tile, so that a tile's second of
//! arithmetic never freezes the picture: the page keeps one such worker, sends it each model
//! once, then the input of every tile.
//!
//! Messages, in:
//! - `{ kind: "decode", file: File }`; out: `{ kind: "progress", stage, done, total }` while
//!   reading and decoding, then `{ kind: "scene", header, arrays }` (see
//!   `icelens_core::transfer`; the arrays' buffers are transferred, not copied);
//! - `{ kind: "model", id, name, bytes }` (a checkpoint in any format icelens reads); out:
//!   `{ kind: "done", id }`;
//! - `{ kind: "check-model", name, bytes }`: reads a dropped checkpoint before the page does,
//!   in this worker's own memory, so that whatever a file does costs a worker, never the
//!   page; out: `{ kind: "checked", architecture }`;
//! - `{ kind: "forward", id, model, c, h, w, data: Float32Array }`; out:
//!   `{ kind: "outputs", id, heads: [{ c, h, w, data }, …] }` (SIC, SOD, FLOE, then an
//!   attention U-Net's ψ per expanding block, deepest first).
//!
//! Any failure answers `{ kind: "error", id, message }`; a panic, `{ kind: "error", message }`
//! before the worker ends.
//!
//! Only `js_sys` is used to reach the worker's globals, so this adds no `web-sys` features
//! (which would rebuild the GPU stack that shares them).

/// The page's browser glue; the worker uses its field access and error text, not the worker
/// start (hence the allowance).
#[cfg(target_arch = "wasm32")]
#[allow(dead_code)]
#[path = "browser/js.rs"]
mod js;

#[cfg(target_arch = "wasm32")]
mod run {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use icelens_core::checkpoint::load_state_dict;
    use icelens_core::transfer::{split, Array};
    use icelens_core::{read_scene, ReadLimits};
    use icelens_model::cpu::Feature;
    use icelens_model::UNet;
    use js_sys::{Array as JsArray, Object, Reflect, Uint8Array};
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;

    use crate::js::{call, get, js_err, set};

    /// Bytes read per slice of the file: small enough for smooth progress, large enough that
    /// the per-slice cost does not matter.
    const CHUNK: f64 = 8.0 * 1024.0 * 1024.0;
    /// The page refuses larger files before sending them; checked again here.
    const MAX_FILE_BYTES: f64 = 600.0 * 1024.0 * 1024.0;

    fn post(msg: &Object, transfer: Option<&JsArray>) {
        let global = js_sys::global();
        let Ok(f) = Reflect::get(&global, &"postMessage".into()) else {
            return;
        };
        let Ok(f) = f.dyn_into::<js_sys::Function>() else {
            return;
        };
        let _ = match transfer {
            Some(t) => f.call2(&global, msg, t),
            None => f.call1(&global, msg),
        };
    }

    fn progress(stage: &str, done: f64, total: f64) {
        let o = Object::new();
        set(&o, "kind", "progress");
        set(&o, "stage", stage);
        set(&o, "done", done);
        set(&o, "total", total);
        post(&o, None);
    }

    fn call0(o: &JsValue, name: &str) -> Result<JsValue, String> {
        call(o, name, &[]).map_err(js_err)
    }

    /// Reads a `File` in slices, reporting progress.
    async fn read(file: &JsValue, name: &str) -> Result<Vec<u8>, String> {
        let size = Reflect::get(file, &"size".into())
            .ok()
            .and_then(|s| s.as_f64())
            .ok_or_else(|| format!("{name}: not a file"))?;
        if size > MAX_FILE_BYTES {
            return Err(format!(
                "{name}: is {:.0} MB, more than the {:.0} MB this page can hold in memory",
                size / 1e6,
                MAX_FILE_BYTES / 1e6
            ));
        }
        let mut bytes = vec![0u8; size as usize];
        let slice = Reflect::get(file, &"slice".into())
            .and_then(|f| f.dyn_into::<js_sys::Function>())
            .map_err(js_err)?;
        let mut at = 0.0;
        while at < size {
            let end = (at + CHUNK).min(size);
            let part = slice
                .call2(file, &at.into(), &end.into())
                .map_err(|e| format!("{name}: cannot be read ({})", js_err(e)))?;
            let promise: js_sys::Promise = call0(&part, "arrayBuffer")
                .map_err(|e| format!("{name}: cannot be read ({e})"))?
                .dyn_into()
                .map_err(|_| format!("{name}: cannot be read"))?;
            let buffer = JsFuture::from(promise)
                .await
                .map_err(|e| format!("{name}: cannot be read ({})", js_err(e)))?;
            let chunk = Uint8Array::new(&buffer);
            if chunk.length() as f64 != end - at {
                return Err(format!("{name}: changed while it was read"));
            }
            chunk.copy_to(&mut bytes[at as usize..end as usize]);
            at = end;
            progress("reading", at, size);
        }
        Ok(bytes)
    }

    thread_local! {
        static MODELS: RefCell<HashMap<String, UNet>> = RefCell::new(HashMap::new());
    }

    /// The network of a `{ name, bytes }` message, read and checked as the page reads it.
    fn parse_model(data: &JsValue) -> Result<(String, UNet), String> {
        let name = get(data, "name")
            .as_string()
            .ok_or("a model without a name")?;
        let bytes: Uint8Array = get(data, "bytes")
            .dyn_into()
            .map_err(|_| format!("{name}: no bytes"))?;
        let sd = load_state_dict(&name, &bytes.to_vec()).map_err(|e| e.to_string())?;
        let net = UNet::from_state_dict(&sd).map_err(|e| format!("{name}: {e}"))?;
        Ok((name, net))
    }

    fn load_model(data: &JsValue) -> Result<(), String> {
        let (name, net) = parse_model(data)?;
        MODELS.with(|m| m.borrow_mut().insert(name, net));
        Ok(())
    }

    fn forward(data: &JsValue) -> Result<(Object, JsArray), String> {
        let name = get(data, "model").as_string().unwrap_or_default();
        let dim = |k: &str| {
            get(data, k)
                .as_f64()
                .map(|v| v as usize)
                .ok_or(format!("no {k}"))
        };
        let (c, h, w) = (dim("c")?, dim("h")?, dim("w")?);
        let input: js_sys::Float32Array = get(data, "data")
            .dyn_into()
            .map_err(|_| "the tile has no float32 data".to_string())?;
        if c != 24 || input.length() as usize != c * h * w {
            return Err(format!(
                "a tile of {} values is not 24 x {h} x {w}",
                input.length()
            ));
        }
        let x = Feature {
            c,
            h,
            w,
            data: input.to_vec(),
        };
        let out = MODELS.with(|m| {
            m.borrow()
                .get(&name)
                .map(|net| net.forward_with_attention(&x))
                .ok_or(format!("{name}: not loaded in the worker"))
        })?;
        let (out, psis) = out;
        let heads = JsArray::new();
        let transfer = JsArray::new();
        for f in [out.sic, out.sod, out.floe].into_iter().chain(psis) {
            let o = Object::new();
            set(&o, "c", f.c as f64);
            set(&o, "h", f.h as f64);
            set(&o, "w", f.w as f64);
            let d = js_sys::Float32Array::from(f.data.as_slice());
            transfer.push(&d.buffer());
            set(&o, "data", d);
            heads.push(&o);
        }
        let o = Object::new();
        set(&o, "kind", "outputs");
        set(&o, "heads", heads);
        Ok((o, transfer))
    }

    async fn handle(data: JsValue) -> Result<(), String> {
        let id = get(&data, "id");
        match get(&data, "kind").as_string().as_deref() {
            Some("model") => {
                load_model(&data)?;
                let o = Object::new();
                set(&o, "kind", "done");
                set(&o, "id", id);
                post(&o, None);
                return Ok(());
            }
            Some("check-model") => {
                let (_, net) = parse_model(&data)?;
                let o = Object::new();
                set(&o, "kind", "checked");
                set(&o, "architecture", net.arch.name());
                post(&o, None);
                return Ok(());
            }
            Some("forward") => {
                let (o, transfer) = forward(&data)?;
                set(&o, "id", id);
                post(&o, Some(&transfer));
                return Ok(());
            }
            _ => {}
        }
        let file = Reflect::get(&data, &"file".into()).map_err(js_err)?;
        let name = Reflect::get(&file, &"name".into())
            .ok()
            .and_then(|n| n.as_string())
            .unwrap_or_else(|| "file".into());
        let bytes = read(&file, &name).await?;
        progress("decoding", 0.0, 1.0);
        let scene = read_scene(&name, bytes, &ReadLimits::default()).map_err(|e| e.to_string())?;
        progress("decoding", 1.0, 1.0);
        let parts = split(scene);
        let arrays = JsArray::new();
        let transfer = JsArray::new();
        for a in parts.arrays {
            // Each array is copied out of wasm memory once and freed here at once.
            let js: JsValue = match a {
                Array::F32(v) => js_sys::Float32Array::from(v.as_slice()).into(),
                Array::U8(v) => Uint8Array::from(v.as_slice()).into(),
            };
            transfer.push(&Reflect::get(&js, &"buffer".into()).map_err(js_err)?);
            arrays.push(&js);
        }
        let o = Object::new();
        set(&o, "kind", "scene");
        set(&o, "header", parts.header);
        set(&o, "arrays", arrays);
        post(&o, Some(&transfer));
        Ok(())
    }

    pub fn start() {
        // A panic says what it was before the worker ends (an allocation that fails aborts
        // without a word, which the page reads as out of memory).
        std::panic::set_hook(Box::new(|info| {
            let o = Object::new();
            set(&o, "kind", "error");
            set(
                &o,
                "message",
                format!("icelens failed in its worker: {info}"),
            );
            post(&o, None);
        }));
        let on_message = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
            let data = Reflect::get(&event, &"data".into()).unwrap_or(JsValue::UNDEFINED);
            wasm_bindgen_futures::spawn_local(async move {
                let id = get(&data, "id");
                if let Err(message) = handle(data).await {
                    let o = Object::new();
                    set(&o, "kind", "error");
                    set(&o, "id", id);
                    set(&o, "message", message);
                    post(&o, None);
                }
            });
        });
        let _ = Reflect::set(&js_sys::global(), &"onmessage".into(), on_message.as_ref());
        on_message.forget();
        // Tell the page the worker is listening (messages sent before are not lost, but a
        // page that hears nothing can tell a worker that failed to start).
        let o = Object::new();
        set(&o, "kind", "ready");
        post(&o, None);
    }
}

#[cfg(target_arch = "wasm32")]
extern "C" {
    fn __wasm_call_ctors();
}

fn main() {
    // Constructors once, here, not before every message (see the page's main.rs).
    #[cfg(target_arch = "wasm32")]
    // SAFETY: called once, first.
    unsafe {
        __wasm_call_ctors()
    };
    #[cfg(target_arch = "wasm32")]
    run::start();
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("icelens-worker runs in a browser, as the page's Web Worker");
}
