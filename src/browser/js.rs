//! Browser glue used by the page and its worker: reading and writing fields of JavaScript
//! objects, calling methods by name, error text, the envelope of the messages between them,
//! and starting the page's Web Worker. One copy,
//! so that every message and every worker start behaves the same.

use icelens_core::memory::{try_zeros, OutOfMemory};
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
/// gives the page no more memory (`icelens_core::memory::try_zeros`).
pub fn f32_values(t: &js_sys::Float32Array) -> Result<Vec<f32>, OutOfMemory> {
    let mut v = try_zeros(t.length() as usize)?;
    t.copy_to(&mut v);
    Ok(v)
}

/// [`f32_values`] for bytes.
pub fn u8_values(t: &js_sys::Uint8Array) -> Result<Vec<u8>, OutOfMemory> {
    let mut v = try_zeros(t.length() as usize)?;
    t.copy_to(&mut v);
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
/// the page needs no `Worker` binding of web-sys).
pub fn start_worker() -> Result<JsValue, String> {
    let ctor: js_sys::Function = get(&js_sys::global(), "Worker")
        .dyn_into()
        .map_err(|_| "this browser cannot start a Web Worker".to_string())?;
    Reflect::construct(&ctor, &js_sys::Array::of1(&WORKER_URL.into()))
        .map_err(|e| format!("the worker did not start ({})", js_err(e)))
}
