//! Decoding a dropped scene in Web Workers (`src/worker.rs`), with progress, and taking the
//! result in only if it fits the page's memory budget.
//!
//! Several workers per file, one per thread the browser reports (up to four,
//! `icelens_core::transfer::decode_workers`), each decoding its share of the seven big
//! arrays: decoding is nearly all of the wait between a drop and the picture. They are ended
//! once the scene has arrived (or failed), which returns their memory to the browser. If one
//! dies (out of memory on a huge file) the others are ended, the page reports it and carries
//! on.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use futures_util::future::try_join_all;
use icelens_core::messages::{FromWorker, ToWorker};
use icelens_core::render::SarView;
use icelens_core::transfer::{decode_workers, join, place, share_out, slots, Array, Parts, Share};
use icelens_core::Scene;
use js_sys::Reflect;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::browser::js::{
    call, f32_values, get, hardware_threads, js_err, mark, post_message, received, start_worker,
    u8_values, worker_death, worker_memory,
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
    let _refill = Refill;
    let msg = ToWorker::CheckModel { name: name.into() };
    let data = js_sys::Uint8Array::from(bytes);
    match one_shot(name, msg, data.into(), |_, _| {}).await? {
        (FromWorker::Checked { architecture }, _) => Ok(architecture),
        (other, _) => Err(format!("{name}: the worker answered {other:?}")),
    }
}

/// A worker that is ended when this is dropped: after its answer, or when the request is
/// given up (another worker of the same file failed).
struct Ending(JsValue);

impl Drop for Ending {
    fn drop(&mut self) {
        let _ = call(&self.0, "terminate", &[]);
    }
}

/// How far a spare worker has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SpareState {
    Starting,
    Ready,
    Dead,
}

/// A worker started ahead of need, so that a dropped file does not wait for the worker's
/// script and wasm to load (a quarter to half a second of the way to the picture).
struct Spare {
    worker: JsValue,
    state: Rc<Cell<SpareState>>,
    /// Its listeners until it is taken; the taker sets its own before dropping these.
    _listeners: [Closure<dyn FnMut(JsValue)>; 2],
}

/// The name decoding workers (and spares) start with.
const DECODER: &str = "icelens-decode";

thread_local! {
    static SPARES: RefCell<Vec<Spare>> = const { RefCell::new(Vec::new()) };
}

fn spare() -> Result<Spare, String> {
    let worker = start_worker(DECODER)?;
    let state = Rc::new(Cell::new(SpareState::Starting));
    let ready = state.clone();
    let on_message = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
        if let Ok(FromWorker::Ready) = FromWorker::decode(&received(&event).0) {
            ready.set(SpareState::Ready);
        }
    });
    let dead = state.clone();
    let on_error = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
        let _ = call(&event, "preventDefault", &[]);
        dead.set(SpareState::Dead);
    });
    let _ = Reflect::set(&worker, &"onmessage".into(), on_message.as_ref());
    let _ = Reflect::set(&worker, &"onerror".into(), on_error.as_ref());
    Ok(Spare {
        worker,
        state,
        _listeners: [on_message, on_error],
    })
}

/// Keeps as many workers started as decoding a file uses on this device: at the page's
/// start and after every file.
pub fn keep_spares() {
    if !available() {
        return;
    }
    let want = decode_workers(hardware_threads(), 1, u64::MAX);
    SPARES.with(|spares| {
        let mut spares = spares.borrow_mut();
        spares.retain(|s| {
            let alive = s.state.get() != SpareState::Dead;
            if !alive {
                let _ = call(&s.worker, "terminate", &[]);
            }
            alive
        });
        while spares.len() < want {
            match spare() {
                Ok(s) => spares.push(s),
                Err(_) => break,
            }
        }
    });
}

/// Starts spares again once a request is over, whichever way it ended.
struct Refill;

impl Drop for Refill {
    fn drop(&mut self) {
        keep_spares();
    }
}

/// A worker for a request: a spare if one is alive (with it, to be dropped once the taker
/// listens), else a new one.
fn take_worker() -> Result<(JsValue, Option<Spare>), String> {
    let taken = SPARES.with(|spares| {
        let mut spares = spares.borrow_mut();
        while let Some(s) = spares.pop() {
            if s.state.get() != SpareState::Dead {
                return Some(s);
            }
            let _ = call(&s.worker, "terminate", &[]);
        }
        None
    });
    match taken {
        Some(s) => Ok((s.worker.clone(), Some(s))),
        None => Ok((start_worker(DECODER)?, None)),
    }
}

/// Takes a worker, sends it `msg` (with `data`) once it is ready, and waits for its answer;
/// progress and the picture go to `on_news` (with their data) on the way. An `Error` or the worker's death (usually: out
/// of memory) become an error naming the file. The worker is ended afterwards, which hands
/// its memory back to the browser.
async fn one_shot(
    name: &str,
    msg: ToWorker,
    data: JsValue,
    on_news: impl Fn(FromWorker, JsValue) + 'static,
) -> Result<(FromWorker, JsValue), String> {
    let (worker, spare) = take_worker().map_err(|e| format!("{name}: {e}"))?;
    let worker = Ending(worker);
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
    let worker_for_ready = worker.0.clone();
    let settle_msg = settle.clone();
    let msg = msg.encode();
    let (first_msg, first_data) = (msg.clone(), data.clone());
    let answer_slot = answer.clone();
    let on_message = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
        let (text, reply_data) = received(&event);
        match FromWorker::decode(&text) {
            Ok(FromWorker::Ready) => {
                mark("icelens:worker");
                if let Err(e) = post_message(&worker_for_ready, msg.clone(), &data, None) {
                    settle_msg(false, &JsValue::from_str(&e));
                }
            }
            Ok(news @ (FromWorker::Progress { .. } | FromWorker::Picture { .. })) => {
                on_news(news, reply_data)
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
    let _ = Reflect::set(&worker.0, &"onmessage".into(), on_message.as_ref());
    let _ = Reflect::set(&worker.0, &"onerror".into(), on_error.as_ref());
    // A spare that is listening already gets the request now; one still starting gets it
    // when it says it is ready (above).
    if spare.is_some_and(|s| s.state.get() == SpareState::Ready) {
        mark("icelens:worker");
        if let Err(e) = post_message(&worker.0, first_msg, &first_data, None) {
            settle(false, &JsValue::from_str(&e));
        }
    }

    let result = JsFuture::from(promise).await;
    drop(worker);
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

/// Decodes `file` in workers, sharing its big arrays out among them.
///
/// The arrays arrive as typed arrays over transferred buffers and are copied into wasm
/// memory one by one, so the page never holds a second copy of the whole scene.
/// `on_progress` hears of reading and decoding (all workers together); `room(bytes)` is
/// asked, before the arrays are copied in, whether the page can hold the scene, and returns
/// a reason when it cannot.
pub async fn decode(
    file: web_sys::File,
    view: SarView,
    on_progress: impl Fn(Progress) + 'static,
    on_picture: impl Fn(Picture) + 'static,
    room: impl Fn(usize) -> Result<(), String>,
) -> Result<Scene, String> {
    let name = file.name();
    let _refill = Refill;
    mark("icelens:decode");
    let workers = decode_workers(hardware_threads(), file.size() as u64, worker_memory());
    let plan = share_out(workers);
    let together = Together::new(&name, plan.len(), on_progress, on_picture);
    let replies = try_join_all(plan.into_iter().enumerate().map(|(w, arrays)| {
        let msg = ToWorker::Decode {
            arrays,
            small: w == 0,
            picture: Some(view.key().into()),
        };
        let together = together.clone();
        one_shot(
            &name,
            msg,
            file.clone().into(),
            move |news, data| match news {
                FromWorker::Progress { stage, done, total } => {
                    together.heard(w, Progress { stage, done, total })
                }
                FromWorker::Picture { lines, samples } => {
                    together.picture(view, lines, samples, &data)
                }
                _ => {}
            },
        )
    }))
    .await?;
    mark("icelens:decoded");

    // Every array in its place: the 2 km channels from the worker that read the small parts,
    // each big array from the worker that decoded it, exactly once.
    let mut header = None;
    let mut shares = Vec::with_capacity(replies.len());
    for (reply, data) in replies {
        let FromWorker::Scene { header: h, arrays } = reply else {
            return Err(format!("{name}: a worker answered {reply:?}"));
        };
        let data: js_sys::Array = data.unchecked_into();
        shares.push(Share {
            coarse: h.is_some(),
            big: arrays,
            arrays: data.iter().collect::<Vec<JsValue>>(),
        });
        header = header.or(h);
    }
    let header = header.ok_or_else(|| format!("{name}: no worker sent the scene's header"))?;
    let slots = slots(&header).map_err(|e| format!("{name}: {e}"))?;
    let placed = place(&slots, shares).map_err(|e| format!("{name}: {e}"))?;
    let bytes: usize = slots
        .arrays
        .iter()
        .map(|(f, n)| if *f { n.saturating_mul(4) } else { *n })
        .fold(0, usize::saturating_add);
    room(bytes).map_err(|e| format!("{name}: {e}"))?;
    let mut out = Vec::with_capacity(placed.len());
    for (i, (a, (is_f32, len))) in placed.into_iter().zip(slots.arrays).enumerate() {
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
    let scene = join(Parts {
        header,
        arrays: out,
    })
    .map_err(|e| format!("{name}: {e}"))?;
    mark("icelens:scene");
    Ok(scene)
}

/// The SAR picture of a scene still being decoded, drawn by the worker that decoded HH
/// and HV: what the page shows until the scene itself arrives.
#[derive(Debug, Clone, PartialEq)]
pub struct Picture {
    pub file: String,
    pub view: SarView,
    pub lines: usize,
    pub samples: usize,
    pub rgba: Vec<u8>,
}

/// What a file's workers tell, told as one. Progress: reading until every worker has read
/// the file, then decoding, each worker counting for an equal share. The picture: passed on.
#[derive(Clone)]
struct Together {
    file: String,
    on_picture: Rc<dyn Fn(Picture)>,
    /// Per worker: 0..1 while reading, 1..2 while decoding.
    at: Rc<RefCell<Vec<f64>>>,
    tell: Rc<dyn Fn(Progress)>,
    /// Whether every worker has read the file (marked on the page's timeline once).
    read: Rc<std::cell::Cell<bool>>,
}

impl Together {
    fn new(
        file: &str,
        workers: usize,
        tell: impl Fn(Progress) + 'static,
        on_picture: impl Fn(Picture) + 'static,
    ) -> Self {
        Self {
            file: file.to_string(),
            on_picture: Rc::new(on_picture),
            at: Rc::new(RefCell::new(vec![0.0; workers])),
            tell: Rc::new(tell),
            read: Rc::default(),
        }
    }

    /// The picture a worker sent, if it is what it says (RGBA of `lines` x `samples`) and
    /// the page has room for it. A picture is only a foretaste: one that is not right is
    /// left out, and the scene comes as usual.
    fn picture(&self, view: SarView, lines: usize, samples: usize, data: &JsValue) {
        let bytes = lines.checked_mul(samples).and_then(|n| n.checked_mul(4));
        let Some(t) = data.dyn_ref::<js_sys::Uint8Array>() else {
            return;
        };
        if bytes != Some(t.length() as usize) {
            return;
        }
        let Ok(rgba) = u8_values(t) else { return };
        mark("icelens:picture-decoded");
        (self.on_picture)(Picture {
            file: self.file.clone(),
            view,
            lines,
            samples,
            rgba,
        });
    }

    fn heard(&self, worker: usize, p: Progress) {
        let part = if p.total > 0.0 {
            (p.done / p.total).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let total = {
            let mut at = self.at.borrow_mut();
            if let Some(a) = at.get_mut(worker) {
                *a = if p.stage == "reading" {
                    part
                } else {
                    1.0 + part
                };
            }
            at.clone()
        };
        let n = total.len() as f64;
        let progress = if total.iter().any(|a| *a < 1.0) {
            Progress {
                stage: "reading".into(),
                done: total.iter().map(|a| a.min(1.0)).sum(),
                total: n,
            }
        } else {
            Progress {
                stage: "decoding".into(),
                done: total.iter().map(|a| a - 1.0).sum(),
                total: n,
            }
        };
        if progress.stage == "decoding" && !self.read.replace(true) {
            mark("icelens:read");
        }
        (self.tell)(progress);
    }
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
