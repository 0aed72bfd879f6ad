//! The CPU network run in the page's Web Worker (`src/worker.rs`), so that a tile's arithmetic
//! (about a second for a 640 px tile of a challenge-size model) never freezes the page.
//!
//! One worker for the page's lifetime. Each model is sent once (as burnpack bytes of its
//! weights, so a fine-tuned model goes the same way as a loaded one); then every tile's input
//! goes over with its buffer transferred and the three heads come back the same way. Should
//! the worker die, every pending tile fails with a message and the next tile starts a new one.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use icelens_core::checkpoint::write_burnpack;
use icelens_core::memory::try_zeros;
use icelens_model::cpu::Feature;
use icelens_model::Outputs;
use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::browser::js::{get, set, start_worker, worker_death};
use crate::model::Model;

type Handler = Closure<dyn FnMut(JsValue)>;
type Pending = Rc<RefCell<HashMap<u32, (js_sys::Function, js_sys::Function)>>>;

struct CpuWorker {
    worker: JsValue,
    pending: Pending,
    next: Cell<u32>,
    /// Models the worker holds, by name.
    loaded: RefCell<HashSet<String>>,
    ready: js_sys::Promise,
    /// The message and error handlers, alive as long as the worker.
    _handlers: [Handler; 2],
}

thread_local! {
    static WORKER: RefCell<Option<Rc<CpuWorker>>> = const { RefCell::new(None) };
}

fn start() -> Result<Rc<CpuWorker>, String> {
    let worker = start_worker().map_err(|e| format!("CPU inference: {e}"))?;
    let pending: Pending = Rc::default();
    let ready_slot: Rc<RefCell<Option<js_sys::Function>>> = Rc::default();
    let ready = {
        let slot = ready_slot.clone();
        js_sys::Promise::new(&mut move |resolve, _| *slot.borrow_mut() = Some(resolve))
    };
    let on_message = {
        let pending = pending.clone();
        Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
            let data = get(&event, "data");
            let kind = get(&data, "kind").as_string().unwrap_or_default();
            if kind == "ready" {
                if let Some(resolve) = ready_slot.borrow_mut().take() {
                    let _ = resolve.call0(&JsValue::NULL);
                }
                return;
            }
            let Some(id) = get(&data, "id").as_f64().map(|v| v as u32) else {
                // An error of no request: the worker's panic hook, just before it ends.
                if kind == "error" {
                    let msg = get(&data, "message");
                    for (_, (_, reject)) in pending.borrow_mut().drain() {
                        let _ = reject.call1(&JsValue::NULL, &msg);
                    }
                }
                return;
            };
            if let Some((resolve, reject)) = pending.borrow_mut().remove(&id) {
                let _ = if kind == "error" {
                    reject.call1(&JsValue::NULL, &get(&data, "message"))
                } else {
                    resolve.call1(&JsValue::NULL, &data)
                };
            }
        })
    };
    let on_error = {
        let pending = pending.clone();
        Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
            let _ = Reflect::get(&event, &"preventDefault".into())
                .ok()
                .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
                .map(|f| f.call0(&event));
            let msg = JsValue::from_str(&worker_death(&event, "the CPU worker"));
            for (_, (_, reject)) in pending.borrow_mut().drain() {
                let _ = reject.call1(&JsValue::NULL, &msg);
            }
            WORKER.with(|w| w.borrow_mut().take());
        })
    };
    let _ = Reflect::set(&worker, &"onmessage".into(), on_message.as_ref());
    let _ = Reflect::set(&worker, &"onerror".into(), on_error.as_ref());
    Ok(Rc::new(CpuWorker {
        worker,
        pending,
        next: Cell::new(1),
        loaded: RefCell::new(HashSet::new()),
        ready,
        _handlers: [on_message, on_error],
    }))
}

fn worker() -> Result<Rc<CpuWorker>, String> {
    if let Some(w) = WORKER.with(|w| w.borrow().clone()) {
        return Ok(w);
    }
    let w = start()?;
    WORKER.with(|slot| *slot.borrow_mut() = Some(w.clone()));
    Ok(w)
}

impl CpuWorker {
    /// Sends a message with an id and waits for its answer.
    async fn ask(&self, msg: Object, transfer: &js_sys::Array) -> Result<JsValue, String> {
        JsFuture::from(self.ready.clone())
            .await
            .map_err(|_| "the CPU worker did not start".to_string())?;
        let id = self.next.get();
        self.next.set(id.wrapping_add(1));
        set(&msg, "id", id as f64);
        let promise = {
            let pending = self.pending.clone();
            js_sys::Promise::new(&mut move |resolve, reject| {
                pending.borrow_mut().insert(id, (resolve, reject));
            })
        };
        let post: js_sys::Function = get(&self.worker, "postMessage")
            .dyn_into()
            .map_err(|_| "the CPU worker cannot be reached".to_string())?;
        post.call2(&self.worker, &msg, transfer)
            .map_err(|e| format!("the CPU worker cannot be reached ({e:?})"))?;
        JsFuture::from(promise).await.map_err(|e| {
            e.as_string()
                .unwrap_or_else(|| "the CPU worker failed".into())
        })
    }

    async fn ensure_model(&self, model: &Model) -> Result<(), String> {
        let key = key(model);
        if self.loaded.borrow().contains(&key) {
            return Ok(());
        }
        let bytes = write_burnpack(&model.state, &[]);
        let msg = Object::new();
        set(&msg, "kind", "model");
        set(&msg, "name", key.as_str());
        let array = js_sys::Uint8Array::from(bytes.as_slice());
        let transfer = js_sys::Array::of1(&array.buffer());
        set(&msg, "bytes", array);
        self.ask(msg, &transfer).await?;
        self.loaded.borrow_mut().insert(key);
        Ok(())
    }
}

/// The worker's name for a model: two files of the same name are different models.
fn key(model: &Model) -> String {
    format!(
        "{}#{:x}",
        model.name,
        std::sync::Arc::as_ptr(&model.state) as usize
    )
}

fn feature(head: &JsValue) -> Result<Feature, String> {
    let dim = |k: &str| {
        get(head, k)
            .as_f64()
            .map(|v| v as usize)
            .ok_or_else(|| format!("the CPU worker sent a head without {k}"))
    };
    let (c, h, w) = (dim("c")?, dim("h")?, dim("w")?);
    let data: js_sys::Float32Array = get(head, "data")
        .dyn_into()
        .map_err(|_| "the CPU worker sent a head without data".to_string())?;
    let len = c
        .checked_mul(h)
        .and_then(|n| n.checked_mul(w))
        .filter(|n| *n == data.length() as usize)
        .ok_or("the CPU worker sent a head of the wrong size")?;
    let mut v = try_zeros::<f32>(len).map_err(|e| format!("a tile's output {e}"))?;
    data.copy_to(&mut v);
    Ok(Feature { c, h, w, data: v })
}

/// Whether the page can run the network in a worker.
pub fn available() -> bool {
    crate::browser::decode::available()
}

/// The model's three heads for one input tile, computed in the worker.
pub async fn forward(model: &Model, x: &Feature) -> Result<(Outputs, Vec<Feature>), String> {
    let w = worker()?;
    w.ensure_model(model).await?;
    let msg = Object::new();
    set(&msg, "kind", "forward");
    set(&msg, "model", key(model).as_str());
    set(&msg, "c", x.c as f64);
    set(&msg, "h", x.h as f64);
    set(&msg, "w", x.w as f64);
    let data = js_sys::Float32Array::from(x.data.as_slice());
    let transfer = js_sys::Array::of1(&data.buffer());
    set(&msg, "data", data);
    let reply = w.ask(msg, &transfer).await?;
    let heads: js_sys::Array = get(&reply, "heads")
        .dyn_into()
        .map_err(|_| "the CPU worker sent no outputs".to_string())?;
    // The three heads, then an attention U-Net's ψ per expanding block.
    let blocks = model.attention_blocks();
    if heads.length() as usize != 3 + blocks {
        return Err("the CPU worker sent the wrong number of outputs".into());
    }
    let psis = (3..heads.length())
        .map(|i| feature(&heads.get(i)))
        .collect::<Result<_, _>>()?;
    let out = Outputs {
        sic: feature(&heads.get(0))?,
        sod: feature(&heads.get(1))?,
        floe: feature(&heads.get(2))?,
    };
    Ok((out, psis))
}
