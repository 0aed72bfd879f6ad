//! The CPU network run in a pool of the page's Web Workers (`src/worker.rs`): one worker per
//! thread the machine offers (as many as memory allows, `InferOptions::tile_workers`), so a
//! scene's tiles run on every core and a tile's arithmetic never freezes the page.
//!
//! Each worker gets each model once (as burnpack bytes of its weights, so a fine-tuned model
//! goes the same way as a loaded one); then a tile's input goes over with its buffer
//! transferred and what the page keeps of the tile's core comes back the same way (classes,
//! confidences, ψ: about a tenth of the logits). No shared memory is needed, so this works
//! from any static server. Should a worker die, its pending tiles fail with a message and
//! the next tile starts a new one.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use icelens_core::checkpoint::write_burnpack;
use icelens_core::input::Window;
use icelens_core::messages::{FromWorker, ToWorker};
use icelens_model::cpu::Feature;
use icelens_model::{InferOptions, Prediction, SicHead};
use js_sys::Reflect;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::browser::js::{
    call, f32_values, hardware_threads, post_message, received, start_worker, u8_values,
    worker_death, worker_memory,
};
use crate::model::Model;

type Handler = Closure<dyn FnMut(JsValue)>;
type Pending = Rc<RefCell<HashMap<u32, (js_sys::Function, js_sys::Function)>>>;
/// Answers that arrived, by request id, until their askers pick them up.
type Answers = Rc<RefCell<HashMap<u32, FromWorker>>>;

struct CpuWorker {
    /// Its place in the order workers were started: which worker ran a tile.
    number: usize,
    /// Tiles sent to it and not yet answered.
    under_way: Cell<usize>,
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
    static POOL: RefCell<Vec<Rc<CpuWorker>>> = const { RefCell::new(Vec::new()) };
    static STARTED: Cell<usize> = const { Cell::new(0) };
}

/// Rejects every request still waiting with `msg`.
fn fail_all(pending: &Pending, msg: &str) {
    let msg = JsValue::from_str(msg);
    for (_, (_, reject)) in pending.borrow_mut().drain() {
        let _ = reject.call1(&JsValue::NULL, &msg);
    }
}

fn start() -> Result<Rc<CpuWorker>, String> {
    let number = STARTED.with(|n| n.replace(n.get() + 1));
    let worker = start_worker(&format!("icelens-cpu-{number}"))
        .map_err(|e| format!("CPU inference: {e}"))?;
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
            fail_all(&pending, &worker_death(&event, "a CPU worker"));
            POOL.with(|p| p.borrow_mut().retain(|w| w.number != number));
        })
    };
    let _ = Reflect::set(&worker, &"onmessage".into(), on_message.as_ref());
    let _ = Reflect::set(&worker, &"onerror".into(), on_error.as_ref());
    Ok(Rc::new(CpuWorker {
        number,
        under_way: Cell::new(0),
        worker,
        pending,
        answers,
        next: Cell::new(1),
        loaded: RefCell::new(HashSet::new()),
        ready,
        _handlers: [on_message, on_error],
    }))
}

/// A worker for the next tile: an idle one, else a new one while the pool has fewer than
/// `size`, else the least busy.
fn pick(size: usize) -> Result<Rc<CpuWorker>, String> {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        if let Some(w) = pool.iter().find(|w| w.under_way.get() == 0) {
            return Ok(w.clone());
        }
        if pool.len() < size.max(1) {
            let w = start()?;
            pool.push(w.clone());
            return Ok(w);
        }
        pool.iter()
            .min_by_key(|w| w.under_way.get())
            .cloned()
            .ok_or_else(|| "no CPU worker".to_string())
    })
}

/// Counts a tile as under way on a worker for as long as it lives, answered or not.
struct UnderWay(Rc<CpuWorker>);

impl UnderWay {
    fn new(w: Rc<CpuWorker>) -> Self {
        w.under_way.set(w.under_way.get() + 1);
        UnderWay(w)
    }
}

impl Drop for UnderWay {
    fn drop(&mut self) {
        self.0
            .under_way
            .set(self.0.under_way.get().saturating_sub(1));
    }
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

/// Whether the page can run the network in workers.
pub fn available() -> bool {
    crate::browser::decode::available()
}

/// How many workers run a model's tiles: the threads the browser reports
/// (`navigator.hardwareConcurrency`), as many as half the device's memory holds
/// (`navigator.deviceMemory`, in GB, where the browser tells it; else 4 GB is assumed).
pub fn threads(model: &Model, opts: &InferOptions) -> usize {
    opts.tile_workers(&model.net.arch, hardware_threads(), worker_memory())
}

/// One of `n` values of the answer's typed arrays, checked against the length it should have.
fn array<T>(
    arrays: &js_sys::Array,
    i: u32,
    n: usize,
    copy: impl Fn(&JsValue) -> Option<Result<Vec<T>, String>>,
) -> Result<Vec<T>, String> {
    let v = copy(&arrays.get(i)).ok_or("a CPU worker sent a tile without its data")??;
    if v.len() != n {
        return Err("a CPU worker sent a tile of the wrong size".into());
    }
    Ok(v)
}

/// What the page keeps of the tile whose input is `x` (the window `win`) and whose core is
/// `core`, computed by one of up to `size` workers; with the number of the worker that ran it.
pub async fn run_tile(
    model: &Model,
    x: Feature,
    win: Window,
    core: Window,
    size: usize,
) -> Result<(Prediction, usize), String> {
    let w = UnderWay::new(pick(size)?);
    w.0.ensure_model(model).await?;
    let data = js_sys::Float32Array::from(x.data.as_slice());
    // The input lives on in the transferred buffer only.
    drop(x);
    let transfer = js_sys::Array::of1(&data.buffer());
    let name = key(model);
    let (reply, arrays) =
        w.0.ask(
            |id| ToWorker::Tile {
                id,
                model: name,
                window: win,
                core,
            },
            &data,
            &transfer,
        )
        .await?;
    let FromWorker::Tile {
        lines,
        samples,
        sic_value,
        attention,
        ..
    } = reply
    else {
        return Err(format!("a CPU worker answered {reply:?}"));
    };
    let regression = model.net.arch.sic == SicHead::Regression;
    if (lines, samples) != (core.height, core.width)
        || sic_value != regression
        || attention != model.attention_blocks()
    {
        return Err("a CPU worker sent a tile of another shape".into());
    }
    let arrays: js_sys::Array = arrays
        .dyn_into()
        .map_err(|_| "a CPU worker sent a tile without its data".to_string())?;
    let n = lines * samples;
    let bytes = |v: &JsValue| {
        let t = v.dyn_ref::<js_sys::Uint8Array>()?;
        Some(u8_values(t).map_err(|e| format!("a tile's prediction {e}")))
    };
    let floats = |v: &JsValue| {
        let t = v.dyn_ref::<js_sys::Float32Array>()?;
        Some(f32_values(t).map_err(|e| format!("a tile's prediction {e}")))
    };
    let count = 6 + usize::from(sic_value) + attention;
    if arrays.length() as usize != count {
        return Err("a CPU worker sent the wrong number of maps".into());
    }
    let classes = [
        array(&arrays, 0, n, bytes)?,
        array(&arrays, 1, n, bytes)?,
        array(&arrays, 2, n, bytes)?,
    ];
    let confidence = [
        array(&arrays, 3, n, floats)?,
        array(&arrays, 4, n, floats)?,
        array(&arrays, 5, n, floats)?,
    ];
    let sic = match sic_value {
        true => Some(array(&arrays, 6, n, floats)?),
        false => None,
    };
    let first = 6 + u32::from(sic_value);
    let attention = (0..attention as u32)
        .map(|k| array(&arrays, first + k, n, bytes))
        .collect::<Result<Vec<_>, _>>()?;
    let pred = Prediction {
        lines,
        samples,
        classes,
        confidence,
        sic_value: sic,
        attention,
    };
    Ok((pred, w.0.number))
}
