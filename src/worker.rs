//! The page's Web Worker: reads a dropped scene file and decodes it off the UI thread.
//!
//! A real scene is a 100-200 MB netCDF-4 file whose decoding takes seconds and briefly needs
//! its bytes and its arrays together. Here that happens in a worker with its own wasm memory:
//! the page keeps answering, and a file that is too much for memory kills this worker, not
//! the tab. The page starts its decoding workers for each file and ends them afterwards, which hands
//! the decoding's memory back to the browser (wasm memory never shrinks).
//!
//! It also runs the network on the CPU for the page, tile by tile, so that a tile's second of
//! arithmetic never freezes the picture: the page keeps a pool of such workers, one per
//! thread, sends each model to each once, then the input of every tile; a worker answers
//! with what the page keeps of the tile's core (classes, confidences, ψ), not the logits.
//!
//! A scene is decoded by several such workers at once, each with the file open and a share
//! of its seven big arrays (`icelens_core::transfer::share_out`), as the native reader
//! decodes them on several threads.
//!
//! The messages are `icelens_core::messages` (`ToWorker` in, `FromWorker` out), one
//! definition for both sides: decode (part of) a scene file, keep a model, check a dropped checkpoint,
//! run a tile. Any failure answers `Error` with the request's id; a panic, `Error` without
//! one, before the worker ends.
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
    use icelens_core::input::{Window, N_INPUT};
    use icelens_core::messages::{FromWorker, ToWorker};
    use icelens_core::render::{sar_rgba_of, SarView};
    use icelens_core::transfer::{split_small, Array};
    use icelens_core::{ReadLimits, SceneFile};
    use icelens_model::cpu::Feature;
    use icelens_model::infer::tile_prediction;
    use icelens_model::UNet;
    use js_sys::{Array as JsArray, Reflect, Uint8Array};
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;

    use crate::js::{call, js_err, post_message, received};

    /// Bytes read per slice of the file: small enough for smooth progress, large enough that
    /// the per-slice cost does not matter.
    const CHUNK: f64 = 16.0 * 1024.0 * 1024.0;
    /// The page refuses larger files before sending them; checked again here.
    const MAX_FILE_BYTES: f64 = 600.0 * 1024.0 * 1024.0;

    /// Tells the page `msg`, with `data` beside it (its buffers transferred).
    fn reply(msg: FromWorker, data: &JsValue, transfer: Option<&JsArray>) {
        let _ = post_message(&js_sys::global(), msg.encode(), data, transfer);
    }

    fn progress(stage: &str, done: f64, total: f64) {
        reply(
            FromWorker::Progress {
                stage: stage.into(),
                done,
                total,
            },
            &JsValue::UNDEFINED,
            None,
        );
    }

    /// Reads a `File` in slices, reporting progress. `FileReaderSync` (workers only) reads
    /// each slice without a promise's round trip through the event loop: with 8 MB slices
    /// read by promise, reading a 114 MB scene took about half a second.
    fn read(file: &JsValue, name: &str) -> Result<Vec<u8>, String> {
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
        let cannot = |e: JsValue| format!("{name}: cannot be read ({})", js_err(e));
        let reader_class: js_sys::Function =
            Reflect::get(&js_sys::global(), &"FileReaderSync".into())
                .and_then(|c| c.dyn_into())
                .map_err(|_| format!("{name}: this browser cannot read files in a worker"))?;
        let reader = Reflect::construct(&reader_class, &JsArray::new()).map_err(cannot)?;
        let mut bytes = vec![0u8; size as usize];
        let slice = Reflect::get(file, &"slice".into())
            .and_then(|f| f.dyn_into::<js_sys::Function>())
            .map_err(js_err)?;
        let mut at = 0.0;
        while at < size {
            let end = (at + CHUNK).min(size);
            let part = slice.call2(file, &at.into(), &end.into()).map_err(cannot)?;
            let buffer = call(&reader, "readAsArrayBuffer", &[&part]).map_err(cannot)?;
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

    /// The network of a checkpoint's bytes, read and checked as the page reads it.
    fn parse_model(name: &str, data: &JsValue) -> Result<UNet, String> {
        let bytes: Uint8Array = data
            .clone()
            .dyn_into()
            .map_err(|_| format!("{name}: no bytes"))?;
        let sd = load_state_dict(name, &bytes.to_vec()).map_err(|e| e.to_string())?;
        UNet::from_state_dict(&sd).map_err(|e| format!("{name}: {e}"))
    }

    /// Runs the model kept as `name` on the input of `window` and keeps the prediction of
    /// `core`: what the page keeps of a tile, as typed arrays with the buffers to transfer.
    fn tile(
        id: u32,
        name: &str,
        window: Window,
        core: Window,
        data: &JsValue,
    ) -> Result<(FromWorker, JsArray, JsArray), String> {
        let input: js_sys::Float32Array = data
            .clone()
            .dyn_into()
            .map_err(|_| "the tile has no float32 data".to_string())?;
        let values = window.height.checked_mul(window.width);
        if Some(input.length() as usize) != values.and_then(|n| n.checked_mul(N_INPUT)) {
            return Err(format!(
                "a tile of {} values is not {N_INPUT} x {} x {}",
                input.length(),
                window.height,
                window.width
            ));
        }
        if !window.contains(&core) {
            return Err(format!("the core {core:?} is not inside {window:?}"));
        }
        let x = Feature {
            c: N_INPUT,
            h: window.height,
            w: window.width,
            data: input.to_vec(),
        };
        let pred = MODELS.with(|m| {
            let models = m.borrow();
            let net = models
                .get(name)
                .ok_or(format!("{name}: not loaded in the worker"))?;
            let (out, psis) = net.forward_with_attention(&x);
            drop(x);
            tile_prediction(&net.arch, &out, &psis, window, core).map_err(|e| e.to_string())
        })?;
        let (arrays, transfer) = (JsArray::new(), JsArray::new());
        let push = |js: JsValue| {
            if let Ok(buffer) = Reflect::get(&js, &"buffer".into()) {
                transfer.push(&buffer);
            }
            arrays.push(&js);
        };
        for c in &pred.classes {
            push(Uint8Array::from(c.as_slice()).into());
        }
        for c in pred.confidence.iter().chain(&pred.sic_value) {
            push(js_sys::Float32Array::from(c.as_slice()).into());
        }
        for a in &pred.attention {
            push(Uint8Array::from(a.as_slice()).into());
        }
        let msg = FromWorker::Tile {
            id,
            lines: pred.lines,
            samples: pred.samples,
            sic_value: pred.sic_value.is_some(),
            attention: pred.attention.len(),
        };
        Ok((msg, arrays, transfer))
    }

    /// Reads a scene `File` and decodes its big arrays `wanted` (those the scene has), and
    /// its small parts when `small`: the reply, its arrays and the buffers to transfer. Each
    /// array is copied out of wasm memory once and freed here at once, except HH (and HV)
    /// when `picture` asks for the SAR picture: it is drawn from them and sent first.
    async fn decode(
        file: &JsValue,
        wanted: &[usize],
        small: bool,
        picture: Option<SarView>,
    ) -> Result<(FromWorker, JsArray, JsArray), String> {
        let name = Reflect::get(file, &"name".into())
            .ok()
            .and_then(|n| n.as_string())
            .unwrap_or_else(|| "file".into());
        let bytes = read(file, &name)?;
        let scene =
            SceneFile::open(&name, bytes, &ReadLimits::default()).map_err(|e| e.to_string())?;
        let mine: Vec<usize> = wanted
            .iter()
            .copied()
            .filter(|i| *i < scene.big_arrays())
            .collect();
        let picture = picture.filter(|v| v.arrays().iter().all(|i| mine.contains(i)));
        let (arrays, transfer) = (JsArray::new(), JsArray::new());
        let push = |a: Array| -> Result<(), String> {
            let js: JsValue = match a {
                Array::F32(v) => js_sys::Float32Array::from(v.as_slice()).into(),
                Array::U8(v) => Uint8Array::from(v.as_slice()).into(),
            };
            transfer.push(&Reflect::get(&js, &"buffer".into()).map_err(js_err)?);
            arrays.push(&js);
            Ok(())
        };
        let steps = mine.len() + usize::from(small);
        let mut done = 0;
        let mut step = || {
            done += 1;
            progress("decoding", done as f64, steps as f64);
        };
        progress("decoding", 0.0, steps as f64);
        let header = if small {
            let (header, coarse) =
                split_small(&scene, scene.read_small().map_err(|e| e.to_string())?);
            coarse.into_iter().try_for_each(push)?;
            step();
            Some(header)
        } else {
            None
        };
        // HH (and HV) are kept until the picture is drawn from them.
        let mut held: Vec<Array> = Vec::new();
        for i in &mine {
            let a = scene.read_big(*i).map_err(|e| e.to_string())?;
            step();
            let Some(view) = picture.filter(|v| v.arrays().contains(i)) else {
                push(a)?;
                continue;
            };
            held.push(a);
            if held.len() == view.arrays().len() {
                match held.as_slice() {
                    [Array::F32(hh)] => send_picture(scene.size(), &sar_rgba_of(hh, hh, view)),
                    [Array::F32(hh), Array::F32(hv)] => {
                        send_picture(scene.size(), &sar_rgba_of(hh, hv, view))
                    }
                    _ => {}
                }
                held.drain(..).try_for_each(push)?;
            }
        }
        let msg = FromWorker::Scene {
            header,
            arrays: mine,
        };
        Ok((msg, arrays, transfer))
    }

    /// Sends the SAR picture (RGBA), its buffer transferred.
    fn send_picture((lines, samples): (usize, usize), rgba: &[u8]) {
        let data = Uint8Array::from(rgba);
        let transfer = JsArray::of1(&data.buffer());
        reply(
            FromWorker::Picture { lines, samples },
            &data.into(),
            Some(&transfer),
        );
    }

    async fn handle(msg: ToWorker, data: JsValue) -> Result<(), String> {
        let none = JsValue::UNDEFINED;
        match msg {
            ToWorker::Model { id, name } => {
                let net = parse_model(&name, &data)?;
                MODELS.with(|m| m.borrow_mut().insert(name, net));
                reply(FromWorker::Done { id }, &none, None);
            }
            ToWorker::CheckModel { name } => {
                let net = parse_model(&name, &data)?;
                let architecture = net.arch.name().into();
                reply(FromWorker::Checked { architecture }, &none, None);
            }
            ToWorker::Tile {
                id,
                model,
                window,
                core,
            } => {
                let (msg, arrays, transfer) = tile(id, &model, window, core, &data)?;
                reply(msg, &arrays, Some(&transfer));
            }
            ToWorker::Decode {
                arrays,
                small,
                picture,
            } => {
                let picture = picture.as_deref().map(SarView::from_key);
                let (msg, arrays, transfer) = decode(&data, &arrays, small, picture).await?;
                reply(msg, &arrays, Some(&transfer));
            }
        }
        Ok(())
    }

    pub fn start() {
        // A panic says what it was before the worker ends (an allocation that fails aborts
        // without a word, which the page reads as out of memory).
        std::panic::set_hook(Box::new(|info| {
            let message = format!("icelens failed in its worker: {info}");
            reply(
                FromWorker::Error { id: None, message },
                &JsValue::UNDEFINED,
                None,
            );
        }));
        let on_message = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
            let (text, data) = received(&event);
            wasm_bindgen_futures::spawn_local(async move {
                let (id, result) = match ToWorker::decode(&text) {
                    Ok(msg) => (msg.id(), handle(msg, data).await),
                    Err(e) => (None, Err(e.to_string())),
                };
                if let Err(message) = result {
                    reply(FromWorker::Error { id, message }, &JsValue::UNDEFINED, None);
                }
            });
        });
        let _ = Reflect::set(&js_sys::global(), &"onmessage".into(), on_message.as_ref());
        on_message.forget();
        reply(FromWorker::Ready, &JsValue::UNDEFINED, None);
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
