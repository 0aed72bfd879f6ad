//! Decoding a dropped scene in a Web Worker (`src/worker.rs`), with progress, and taking the
//! result in only if it fits the page's memory budget.
//!
//! One worker per file: it is ended once the scene has arrived (or failed), which returns
//! its memory to the browser. If it dies (out of memory on a huge file) the page reports it
//! and carries on.

use std::cell::RefCell;
use std::rc::Rc;

use icelens_core::messages::{FromWorker, ToWorker};
use icelens_core::transfer::{expected_arrays, join, Array, Parts};
use icelens_core::Scene;
use js_sys::Reflect;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::browser::js::{
    call, f32_values, get, js_err, post_message, received, start_worker, u8_values, worker_death,
};

/// The page's memory budget (`icelens_core::memory`), or a smaller one given as
/// `?memory-budget=MB` in the page's URL (to try the refusal without a pile of real scenes).
pub fn budget() -> usize {
    let search = get(&get(&js_sys::global(), "location"), "search")
        .as_string()
        .unwrap_or_default();
    icelens_core::memory::budget_from_query(&search)
}

/// Where a file's decoding stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub stage: String,
    pub done: f64,
    pub total: f64,
}

/// Reads and checks a dropped checkpoint in a worker before the page reads it: a file that
/// exhausts memory or time there ends that worker, and the page reports the file by name and
/// keeps everything it holds. Returns the architecture's name.
pub async fn check_model(name: &str, bytes: &[u8]) -> Result<String, String> {
    let msg = ToWorker::CheckModel { name: name.into() };
    let data = js_sys::Uint8Array::from(bytes);
    match one_shot(name, msg, data.into(), |_| {}).await? {
        (FromWorker::Checked { architecture }, _) => Ok(architecture),
        (other, _) => Err(format!("{name}: the worker answered {other:?}")),
    }
}

/// Starts a worker, sends it `msg` (with `data`) once it is ready, and waits for its answer;
/// progress goes to `on_progress` on the way. An `Error` or the worker's death (usually: out
/// of memory) become an error naming the file. The worker is ended afterwards, which hands
/// its memory back to the browser.
async fn one_shot(
    name: &str,
    msg: ToWorker,
    data: JsValue,
    on_progress: impl Fn(Progress) + 'static,
) -> Result<(FromWorker, JsValue), String> {
    let worker = start_worker().map_err(|e| format!("{name}: {e}"))?;
    // The answer: the promise settles with its data (or an error text), the message itself
    // waits here.
    let answer: Rc<RefCell<Option<FromWorker>>> = Rc::default();
    let slot: Rc<RefCell<Option<(js_sys::Function, js_sys::Function)>>> = Rc::default();
    let promise = {
        let slot = slot.clone();
        js_sys::Promise::new(&mut move |resolve, reject| {
            *slot.borrow_mut() = Some((resolve, reject));
        })
    };
    let settle = {
        let slot = slot.clone();
        move |ok: bool, v: &JsValue| {
            if let Some((resolve, reject)) = slot.borrow_mut().take() {
                let _ = if ok {
                    resolve.call1(&JsValue::NULL, v)
                } else {
                    reject.call1(&JsValue::NULL, v)
                };
            }
        }
    };
    let worker_for_ready = worker.clone();
    let settle_msg = settle.clone();
    let msg = msg.encode();
    let answer_slot = answer.clone();
    let on_message = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
        let (text, reply_data) = received(&event);
        match FromWorker::decode(&text) {
            Ok(FromWorker::Ready) => {
                if let Err(e) = post_message(&worker_for_ready, msg.clone(), &data, None) {
                    settle_msg(false, &JsValue::from_str(&e));
                }
            }
            Ok(FromWorker::Progress { stage, done, total }) => {
                on_progress(Progress { stage, done, total })
            }
            Ok(FromWorker::Error { message, .. }) => {
                settle_msg(false, &JsValue::from_str(&message))
            }
            Ok(reply) => {
                *answer_slot.borrow_mut() = Some(reply);
                settle_msg(true, &reply_data);
            }
            Err(e) => settle_msg(false, &JsValue::from_str(&e.to_string())),
        }
    });
    let settle_err = settle.clone();
    let on_error = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
        // Usually the worker ran out of memory, or its script could not load.
        let _ = call(&event, "preventDefault", &[]);
        let what = worker_death(&event, "the worker reading it");
        settle_err(false, &JsValue::from_str(&what));
    });
    let _ = Reflect::set(&worker, &"onmessage".into(), on_message.as_ref());
    let _ = Reflect::set(&worker, &"onerror".into(), on_error.as_ref());

    let result = JsFuture::from(promise).await;
    let _ = call(&worker, "terminate", &[]);
    drop((on_message, on_error));
    let data = result.map_err(|e| {
        let m = js_err(e);
        if m.starts_with(name) {
            m
        } else {
            format!("{name}: {m}")
        }
    })?;
    let reply = answer
        .borrow_mut()
        .take()
        .ok_or_else(|| format!("{name}: the worker sent no answer"))?;
    Ok((reply, data))
}

/// Whether this browser can run the worker (it always can where the page runs, but a page
/// opened from a `file://` URL cannot start one).
pub fn available() -> bool {
    !get(&js_sys::global(), "Worker").is_undefined()
}

/// Decodes `file` in a worker.
///
/// The arrays arrive as typed arrays over transferred buffers and are copied into wasm
/// memory one by one, so the page never holds a second copy of the whole scene. `on_progress` hears of reading and decoding; `room(bytes)`
/// is asked, before the arrays are copied in, whether the page can hold the scene, and
/// returns a reason when it cannot.
pub async fn decode(
    file: web_sys::File,
    on_progress: impl Fn(Progress) + 'static,
    room: impl Fn(usize) -> Result<(), String>,
) -> Result<Scene, String> {
    let name = file.name();
    let (header, arrays) = match one_shot(&name, ToWorker::Decode, file.into(), on_progress).await?
    {
        (FromWorker::Scene { header }, arrays) => (header, arrays),
        (other, _) => return Err(format!("{name}: the worker answered {other:?}")),
    };
    let want = expected_arrays(&header).map_err(|e| format!("{name}: {e}"))?;
    let arrays: js_sys::Array = arrays
        .dyn_into()
        .map_err(|_| format!("{name}: the worker sent no arrays"))?;
    if arrays.length() as usize != want.len() {
        return Err(format!(
            "{name}: the worker sent {} arrays, expected {}",
            arrays.length(),
            want.len()
        ));
    }
    let bytes: usize = want.iter().map(|(f, n)| if *f { n * 4 } else { *n }).sum();
    room(bytes).map_err(|e| format!("{name}: {e}"))?;
    let mut out = Vec::with_capacity(want.len());
    for (i, (is_f32, len)) in want.into_iter().enumerate() {
        let a = arrays.get(i as u32);
        let array = if is_f32 {
            let t: js_sys::Float32Array = a
                .dyn_into()
                .map_err(|_| format!("{name}: array {i} is not float32"))?;
            check_len(&name, i, t.length(), len)?;
            Array::F32(f32_values(&t).map_err(|e| format!("{name}: {e}"))?)
        } else {
            let t: js_sys::Uint8Array = a
                .dyn_into()
                .map_err(|_| format!("{name}: array {i} is not bytes"))?;
            check_len(&name, i, t.length(), len)?;
            Array::U8(u8_values(&t).map_err(|e| format!("{name}: {e}"))?)
        };
        out.push(array);
    }
    join(Parts {
        header,
        arrays: out,
    })
    .map_err(|e| format!("{name}: {e}"))
}

fn check_len(name: &str, i: usize, got: u32, len: usize) -> Result<(), String> {
    if got as usize == len {
        Ok(())
    } else {
        Err(format!(
            "{name}: array {i} has {got} values, expected {len}"
        ))
    }
}
