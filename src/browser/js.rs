//! Browser glue used by the page and its worker: reading and writing fields of JavaScript
//! objects, calling methods by name, error text, the envelope of the messages between them,
//! and starting the page's Web Worker. One copy,
//! so that every message and every worker start behaves the same.

use icelens_core::memory::OutOfMemory;
use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// The worker's loader script, written by Trunk next to the page.
pub const WORKER_URL: &str = "./icelens-worker_loader.js";

/// A field of an object; `undefined` when it is missing.
pub fn get(o: &JsValue, k: &str) -> JsValue {
    Reflect::get(o, &k.into()).unwrap_or(JsValue::UNDEFINED)
}

/// A field that is there (neither `undefined` nor `null`).
pub fn field(o: &JsValue, k: &str) -> Option<JsValue> {
    Reflect::get(o, &k.into())
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_null())
}

pub fn set(o: &Object, k: &str, v: impl Into<JsValue>) {
    let _ = Reflect::set(o, &k.into(), &v.into());
}

/// Calls the method `name` of `o`.
pub fn call(o: &JsValue, name: &str, args: &[&JsValue]) -> Result<JsValue, JsValue> {
    let f: js_sys::Function = Reflect::get(o, &name.into())?.dyn_into()?;
    let args: js_sys::Array = args.iter().copied().collect();
    f.apply(o, &args)
}

/// The threads the browser says it has (`navigator.hardwareConcurrency`), at least 1.
pub fn hardware_threads() -> usize {
    get(&get(&js_sys::global(), "navigator"), "hardwareConcurrency")
        .as_f64()
        .filter(|n| n.is_finite() && *n >= 1.0)
        .unwrap_or(1.0) as usize
}

/// Half the device's memory in bytes: `navigator.deviceMemory` (GB) where the browser tells
/// it, else 4 GB is assumed. What the page lets its workers use together.
pub fn worker_memory() -> u64 {
    let gigabytes = get(&get(&js_sys::global(), "navigator"), "deviceMemory")
        .as_f64()
        .filter(|g| g.is_finite() && *g > 0.0)
        .unwrap_or(4.0);
    (gigabytes * 1e9 / 2.0) as u64
}

/// Marks a moment on the page's performance timeline (`performance.mark`), where the
/// browser's profiler shows it and the browser benchmark reads the phases of a drop.
pub fn mark(name: &str) {
    let _ = call(
        &get(&js_sys::global(), "performance"),
        "mark",
        &[&name.into()],
    );
}

/// The text of a thrown value: a string, an `Error`'s message, or any object's `message`.
pub fn js_err(e: JsValue) -> String {
    e.as_string()
        .or_else(|| {
            e.dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
        })
        .or_else(|| field(&e, "message").and_then(|m| m.as_string()))
        .unwrap_or_else(|| "unknown browser error".into())
}

/// What the page says when a worker dies, from its `error` event.
///
/// The worker posts a panic's message itself before it ends (its panic hook), so a worker
/// that traps with `unreachable` and no message aborted on a failed allocation: the browser
/// would not give its wasm memory more. Anything else (a script that failed to load) is
/// passed on as the browser words it.
pub fn worker_death(event: &JsValue, who: &str) -> String {
    let raw = get(event, "message").as_string().unwrap_or_default();
    if raw.contains("unreachable") || raw.contains("memory") {
        format!("{who} ran out of memory: the browser would not give it more ({raw})")
    } else if raw.is_empty() {
        format!("{who} stopped without saying why")
    } else {
        format!("{who} stopped: {raw}")
    }
}

/// A float32 array's values copied into wasm memory; refused, not aborted, when the browser
/// gives the page no more memory.
pub fn f32_values(t: &js_sys::Float32Array) -> Result<Vec<f32>, OutOfMemory> {
    // SAFETY: the view covers exactly the `len` values reserved, and `set` writes them all.
    copied(t.length() as usize, |at, len| unsafe {
        js_sys::Float32Array::view_mut_raw(at, len).set(t, 0)
    })
}

/// [`f32_values`] for bytes.
pub fn u8_values(t: &js_sys::Uint8Array) -> Result<Vec<u8>, OutOfMemory> {
    // SAFETY: as in `f32_values`.
    copied(t.length() as usize, |at, len| unsafe {
        js_sys::Uint8Array::view_mut_raw(at, len).set(t, 0)
    })
}

/// A vector of `len` values that `fill(pointer, len)` writes straight into its reserved
/// memory. Zeroing half a gigabyte of a scene's arrays before overwriting them took the page
/// half a second. `fill` must write all `len` values, and must not allocate (which could
/// move wasm memory under the view it writes through).
fn copied<T>(len: usize, fill: impl FnOnce(*mut T, usize)) -> Result<Vec<T>, OutOfMemory> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| OutOfMemory {
        bytes: len.saturating_mul(std::mem::size_of::<T>()),
    })?;
    fill(v.as_mut_ptr(), len);
    // SAFETY: `fill` initialised the first `len` values, within the capacity reserved.
    unsafe { v.set_len(len) };
    Ok(v)
}

/// Posts a message of `icelens_core::messages` (its JSON `msg`) with its bulk `data` to
/// `target` (a `Worker`, or the worker's own global scope), transferring the buffers listed.
pub fn post_message(
    target: &JsValue,
    msg: String,
    data: &JsValue,
    transfer: Option<&js_sys::Array>,
) -> Result<(), String> {
    let o = Object::new();
    set(&o, "msg", msg);
    set(&o, "data", data.clone());
    let empty = js_sys::Array::new();
    call(target, "postMessage", &[&o, transfer.unwrap_or(&empty)])
        .map(|_| ())
        .map_err(js_err)
}

/// The JSON `msg` and the `data` of a message event, as [`post_message`] sent them.
pub fn received(event: &JsValue) -> (String, JsValue) {
    let o = get(event, "data");
    (
        get(&o, "msg").as_string().unwrap_or_default(),
        get(&o, "data"),
    )
}

/// Starts a Web Worker running `src/worker.rs` (through the constructor found at run time, so
/// the page needs no `Worker` binding of web-sys), named for what it is for (`name`): the
/// browser's developer tools list workers by it, and tests tell decoding workers from CPU
/// workers by it.
pub fn start_worker(name: &str) -> Result<JsValue, String> {
    let ctor: js_sys::Function = get(&js_sys::global(), "Worker")
        .dyn_into()
        .map_err(|_| "this browser cannot start a Web Worker".to_string())?;
    let options = js_sys::Object::new();
    let _ = Reflect::set(&options, &"name".into(), &name.into());
    Reflect::construct(&ctor, &js_sys::Array::of2(&WORKER_URL.into(), &options))
        .map_err(|e| format!("the worker did not start ({})", js_err(e)))
}
