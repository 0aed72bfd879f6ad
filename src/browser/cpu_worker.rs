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
use icelens_core::messages::{FromWorker, ToWorker};
use icelens_model::cpu::Feature;
use icelens_model::Outputs;
use js_sys::Reflect;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::browser::js::{call, f32_values, post_message, received, start_worker, worker_death};
use crate::model::Model;

type Handler = Closure<dyn FnMut(JsValue)>;
type Pending = Rc<RefCell<HashMap<u32, (js_sys::Function, js_sys::Function)>>>;
/// Answers that arrived, by request id, until their askers pick them up.
type Answers = Rc<RefCell<HashMap<u32, FromWorker>>>;

struct CpuWorker {
    worker: JsValue,
    pending: Pending,
    answers: Answers,
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

/// Rejects every request still waiting with `msg`.
fn fail_all(pending: &Pending, msg: &str) {
    let msg = JsValue::from_str(msg);
    for (_, (_, reject)) in pending.borrow_mut().drain() {
        let _ = reject.call1(&JsValue::NULL, &msg);
    }
}

fn start() -> Result<Rc<CpuWorker>, String> {
    let worker = start_worker().map_err(|e| format!("CPU inference: {e}"))?;
    let pending: Pending = Rc::default();
    let answers: Answers = Rc::default();
    let ready_slot: Rc<RefCell<Option<js_sys::Function>>> = Rc::default();
    let ready = {
        let slot = ready_slot.clone();
        js_sys::Promise::new(&mut move |resolve, _| *slot.borrow_mut() = Some(resolve))
    };
    let on_message = {
        let (pending, answers) = (pending.clone(), answers.clone());
        Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
            let (text, data) = received(&event);
            let reply = match FromWorker::decode(&text) {
                Ok(r) => r,
                Err(e) => return fail_all(&pending, &e.to_string()),
            };
            match (reply.id(), reply) {
                (_, FromWorker::Ready) => {
                    if let Some(resolve) = ready_slot.borrow_mut().take() {
                        let _ = resolve.call0(&JsValue::NULL);
                    }
                }
                // An error of no request: the worker's panic hook, just before it ends.
                (None, FromWorker::Error { message, .. }) => fail_all(&pending, &message),
                (Some(id), reply) => {
                    let Some((resolve, reject)) = pending.borrow_mut().remove(&id) else {
                        return;
                    };
                    let _ = match reply {
                        FromWorker::Error { message, .. } => {
                            reject.call1(&JsValue::NULL, &JsValue::from_str(&message))
                        }
                        reply => {
                            answers.borrow_mut().insert(id, reply);
                            resolve.call1(&JsValue::NULL, &data)
                        }
                    };
                }
                (None, _) => {}
            }
        })
    };
    let on_error = {
        let pending = pending.clone();
        Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
            let _ = call(&event, "preventDefault", &[]);
            fail_all(&pending, &worker_death(&event, "the CPU worker"));
            WORKER.with(|w| w.borrow_mut().take());
        })
    };
    let _ = Reflect::set(&worker, &"onmessage".into(), on_message.as_ref());
    let _ = Reflect::set(&worker, &"onerror".into(), on_error.as_ref());
    Ok(Rc::new(CpuWorker {
        worker,
        pending,
        answers,
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
    /// Sends the request `msg(id)` with `data` (its buffers transferred) and waits for its
    /// answer and the answer's data.
    async fn ask(
        &self,
        msg: impl FnOnce(u32) -> ToWorker,
        data: &JsValue,
        transfer: &js_sys::Array,
    ) -> Result<(FromWorker, JsValue), String> {
        JsFuture::from(self.ready.clone())
            .await
            .map_err(|_| "the CPU worker did not start".to_string())?;
        let id = self.next.get();
        self.next.set(id.wrapping_add(1));
        let promise = {
            let pending = self.pending.clone();
            js_sys::Promise::new(&mut move |resolve, reject| {
                pending.borrow_mut().insert(id, (resolve, reject));
            })
        };
        post_message(&self.worker, msg(id).encode(), data, Some(transfer))
            .map_err(|e| format!("the CPU worker cannot be reached ({e})"))?;
        let data = JsFuture::from(promise).await.map_err(|e| {
            e.as_string()
                .unwrap_or_else(|| "the CPU worker failed".into())
        })?;
        let answer = self
            .answers
            .borrow_mut()
            .remove(&id)
            .ok_or("the CPU worker sent no answer")?;
        Ok((answer, data))
    }

    async fn ensure_model(&self, model: &Model) -> Result<(), String> {
        let key = key(model);
        if self.loaded.borrow().contains(&key) {
            return Ok(());
        }
        let bytes = write_burnpack(&model.state, &[]);
        let array = js_sys::Uint8Array::from(bytes.as_slice());
        let transfer = js_sys::Array::of1(&array.buffer());
        let name = key.clone();
        self.ask(|id| ToWorker::Model { id, name }, &array, &transfer)
            .await?;
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

/// A head the worker sent: `[c, h, w]` and its values, copied into wasm memory.
fn feature([c, h, w]: [usize; 3], data: &JsValue) -> Result<Feature, String> {
    let data: js_sys::Float32Array = data
        .clone()
        .dyn_into()
        .map_err(|_| "the CPU worker sent a head without data".to_string())?;
    c.checked_mul(h)
        .and_then(|n| n.checked_mul(w))
        .filter(|n| *n == data.length() as usize)
        .ok_or("the CPU worker sent a head of the wrong size")?;
    let data = f32_values(&data).map_err(|e| format!("a tile's output {e}"))?;
    Ok(Feature { c, h, w, data })
}

/// Whether the page can run the network in a worker.
pub fn available() -> bool {
    crate::browser::decode::available()
}

/// The model's three heads (and an attention U-Net's ψ per expanding block) for one input
/// tile, computed in the worker.
pub async fn forward(model: &Model, x: &Feature) -> Result<(Outputs, Vec<Feature>), String> {
    let w = worker()?;
    w.ensure_model(model).await?;
    let data = js_sys::Float32Array::from(x.data.as_slice());
    let transfer = js_sys::Array::of1(&data.buffer());
    let name = key(model);
    let (h, wd) = (x.h, x.w);
    let (reply, arrays) = w
        .ask(
            |id| ToWorker::Forward {
                id,
                model: name,
                h,
                w: wd,
            },
            &data,
            &transfer,
        )
        .await?;
    let FromWorker::Outputs { shapes, .. } = reply else {
        return Err(format!("the CPU worker answered {reply:?}"));
    };
    let arrays: js_sys::Array = arrays
        .dyn_into()
        .map_err(|_| "the CPU worker sent no outputs".to_string())?;
    if shapes.len() != 3 + model.attention_blocks() || arrays.length() as usize != shapes.len() {
        return Err("the CPU worker sent the wrong number of outputs".into());
    }
    let mut heads = shapes
        .iter()
        .enumerate()
        .map(|(i, s)| feature(*s, &arrays.get(i as u32)))
        .collect::<Result<Vec<_>, _>>()?;
    let psis = heads.split_off(3);
    let floe = heads.pop().ok_or("no FLOE head")?;
    let sod = heads.pop().ok_or("no SOD head")?;
    let sic = heads.pop().ok_or("no SIC head")?;
    Ok((Outputs { sic, sod, floe }, psis))
}
