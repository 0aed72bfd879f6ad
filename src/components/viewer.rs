//! The picture: SAR and layers, zoom and pan, the swipe divider and the pixel inspector.
//!
//! Each layer is drawn once into a canvas at the scene's own resolution; zooming and panning
//! only change a CSS transform of the stack, which the browser composites on the GPU. Moving
//! around a 26-megapixel scene therefore never touches its pixels again, and stays smooth
//! while a model runs.

use std::sync::Arc;

use icelens_core::{Chart, Scene};
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::browser::js::mark;
use crate::browser::picture::{draw, export_png, LegendItem};
use crate::inference::Run;
use crate::layers::{layer_rgba, Layer};
use crate::state::AppState;
use icelens_core::render::{css_colour, highlight_rgba, palette, sar_rgba};

/// The layer shown on the other side of the swipe divider: prediction against chart.
fn counterpart(layer: Layer) -> Layer {
    match layer {
        Layer::Prediction(c) => Layer::Chart(c),
        Layer::Chart(c) | Layer::Error(c) | Layer::Confidence(c) => Layer::Prediction(c),
        Layer::None | Layer::Tiles | Layer::Attention(_) => Layer::Chart(Chart::SIC),
        Layer::Versus(c) => Layer::Prediction(c),
    }
}

fn layer_name(layer: Layer) -> String {
    match layer {
        Layer::None => "SAR".into(),
        Layer::Tiles => "Error per tile".into(),
        Layer::Versus(c) => format!("Versus {c}"),
        Layer::Chart(c) => format!("Ice chart {c}"),
        Layer::Prediction(c) => format!("Prediction {c}"),
        Layer::Error(c) => format!("Error {c}"),
        Layer::Confidence(c) => format!("Confidence {c}"),
        Layer::Attention(k) => format!("Attention block {k}"),
    }
}

/// The legend of a layer as (label, colour) pairs, for exported pictures.
fn legend_items(layer: Layer) -> Vec<LegendItem> {
    let item = |label: &str, colour: [u8; 3]| LegendItem {
        label: label.into(),
        colour: palette::hex(colour),
    };
    match layer {
        Layer::Chart(c) | Layer::Prediction(c) => c
            .classes()
            .iter()
            .enumerate()
            .map(|(i, n)| LegendItem {
                label: n.to_string(),
                colour: css_colour(c, i as u8),
            })
            .collect(),
        Layer::Error(Chart::SIC) | Layer::Tiles => {
            let [right, half, wrong] = palette::ERROR_STOPS;
            vec![
                item("right", right),
                item("half wrong", half),
                item("wrong", wrong),
            ]
        }
        Layer::Error(_) => vec![
            item("right class", palette::RIGHT),
            item("wrong class", palette::WRONG),
        ],
        Layer::Versus(_) => vec![
            item("this model right, the other wrong", palette::RIGHT),
            item("the other right, this one wrong", palette::OTHER_RIGHT),
            item("both wrong", palette::BOTH_WRONG),
        ],
        Layer::Confidence(_) => {
            let stops = palette::CONFIDENCE_STOPS;
            vec![item("low", stops[0]), item("high", stops[stops.len() - 1])]
        }
        Layer::Attention(_) => {
            let stops = palette::ATTENTION_STOPS;
            vec![item("ψ 0", stops[0]), item("ψ 1", stops[stops.len() - 1])]
        }
        Layer::None => vec![],
    }
}

fn canvas_draw(node: NodeRef<leptos::html::Canvas>, scene: &Scene, rgba: Option<Vec<u8>>) {
    if let Some(canvas) = node.get() {
        draw(
            &canvas,
            &rgba.unwrap_or_default(),
            scene.samples,
            scene.lines,
        );
    }
}

/// The picture: the SAR image of the scene on screen, the layer over it, the swipe, the
/// highlight of a condition, and the pixel inspector.
#[component]
pub fn Viewer() -> impl IntoView {
    let AppState {
        scene,
        run,
        other,
        layer,
        opacity,
        sar_view,
        view,
        highlight,
        picture_ahead,
        ..
    } = expect_context();
    let viewport = NodeRef::<leptos::html::Div>::new();
    let sar_canvas = NodeRef::<leptos::html::Canvas>::new();
    let layer_canvas = NodeRef::<leptos::html::Canvas>::new();
    let compare_canvas = NodeRef::<leptos::html::Canvas>::new();
    let highlight_canvas = NodeRef::<leptos::html::Canvas>::new();
    let ahead_canvas = NodeRef::<leptos::html::Canvas>::new();
    // Scene position under the pointer.
    let hover: RwSignal<Option<(usize, usize)>> = RwSignal::new(None);
    let drag: RwSignal<Option<(f64, f64)>> = RwSignal::new(None);
    let swiping = RwSignal::new(false);

    let measure = move || {
        if let Some(el) = viewport.get_untracked() {
            let (w, h) = (el.client_width() as f64, el.client_height() as f64);
            if w > 0.0 && h > 0.0 && view.size.get_untracked() != (w, h) {
                view.size.set((w, h));
            }
        }
    };
    let _resize = window_event_listener(leptos::ev::resize, move |_| measure());

    // A new scene (or one of another size) is shown whole.
    Effect::new(move |_| {
        let Some(s) = scene.get() else { return };
        viewport.get();
        measure();
        view.scene_size.set((s.lines, s.samples));
        view.fit();
        if let Some((zoom, (x, y))) = view.restore.get_untracked() {
            view.restore.set(None);
            view.focus(y, x, zoom);
        }
    });
    // The picture of a scene still being decoded, over everything, fitted as the scene
    // will be when it arrives.
    Effect::new(move |_| {
        let Some(canvas) = ahead_canvas.get() else {
            return;
        };
        picture_ahead.with(|p| match p {
            Some(p) => {
                draw(&canvas, &p.rgba, p.samples, p.lines);
                mark("icelens:picture-ahead");
            }
            None => draw(&canvas, &[], 0, 0),
        });
    });
    Effect::new(move |_| {
        let Some(s) = scene.get() else { return };
        if let Some(canvas) = sar_canvas.get() {
            let view = sar_view.get();
            // The picture drawn ahead for this very scene and view is this picture: it is
            // taken over rather than computed again, and no longer shown on its own.
            let ahead = picture_ahead.with_untracked(|p| {
                p.clone().filter(|p| {
                    p.file == s.file
                        && p.view == view
                        && (p.lines, p.samples) == (s.lines, s.samples)
                })
            });
            match ahead {
                Some(p) => {
                    draw(&canvas, &p.rgba, s.samples, s.lines);
                    picture_ahead.set(None);
                }
                None => draw(&canvas, &sar_rgba(&s, view), s.samples, s.lines),
            }
            mark("icelens:picture");
        }
    });
    Effect::new(move |_| {
        let Some(s) = scene.get() else { return };
        let run = run.get();
        let other = other.get();
        let rgba = layer_rgba(
            &s,
            run.as_ref().map(|r| &r.prediction),
            other.as_ref().map(|r| &r.prediction),
            layer.get(),
        );
        canvas_draw(layer_canvas, &s, rgba);
    });
    Effect::new(move |_| {
        let Some(s) = scene.get() else { return };
        let rgba = if view.swipe.get().is_some() {
            let run = run.get();
            layer_rgba(
                &s,
                run.as_ref().map(|r| &r.prediction),
                None,
                counterpart(layer.get()),
            )
        } else {
            None
        };
        canvas_draw(compare_canvas, &s, rgba);
    });
    Effect::new(move |_| {
        let Some(s) = scene.get() else { return };
        let rgba = highlight
            .get()
            .filter(|m| m.len() == s.pixels())
            .map(|m| highlight_rgba(&m));
        canvas_draw(highlight_canvas, &s, rgba);
    });

    let local = move |x: i32, y: i32| -> (f64, f64) {
        viewport
            .get_untracked()
            .map(|el| {
                let r = el.get_bounding_client_rect();
                (x as f64 - r.left(), y as f64 - r.top())
            })
            .unwrap_or((0.0, 0.0))
    };
    let on_wheel = move |ev: leptos::ev::WheelEvent| {
        ev.prevent_default();
        let (x, y) = local(ev.client_x(), ev.client_y());
        let factor = (-ev.delta_y() * 0.0015).exp();
        view.zoom_at(x, y, factor);
    };
    let on_down = move |ev: leptos::ev::PointerEvent| {
        if let Some(el) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        {
            let _ = el.set_pointer_capture(ev.pointer_id());
        }
        if ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .is_some_and(|el| el.class_list().contains("swipe-handle"))
        {
            swiping.set(true);
            return;
        }
        drag.set(Some((ev.client_x() as f64, ev.client_y() as f64)));
    };
    let on_move = move |ev: leptos::ev::PointerEvent| {
        let (x, y) = local(ev.client_x(), ev.client_y());
        if swiping.get_untracked() {
            let (w, _) = view.size.get_untracked();
            view.swipe.set(Some((x / w).clamp(0.0, 1.0)));
            return;
        }
        if let Some((px, py)) = drag.get_untracked() {
            let (cx, cy) = (ev.client_x() as f64, ev.client_y() as f64);
            view.pan_screen(cx - px, cy - py);
            drag.set(Some((cx, cy)));
        }
        let (sample, line) = view.scene_at(x, y);
        let inside = scene.with_untracked(|s| {
            s.as_ref().is_some_and(|s| {
                line >= 0.0
                    && sample >= 0.0
                    && (line as usize) < s.lines
                    && (sample as usize) < s.samples
            })
        });
        hover.set(inside.then_some((line as usize, sample as usize)));
    };
    let on_up = move |_| {
        drag.set(None);
        swiping.set(false);
    };
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        let (w, h) = view.size.get_untracked();
        let step = 0.15;
        match ev.key().as_str() {
            "ArrowLeft" => view.pan_screen(w * step, 0.0),
            "ArrowRight" => view.pan_screen(-w * step, 0.0),
            "ArrowUp" => view.pan_screen(0.0, h * step),
            "ArrowDown" => view.pan_screen(0.0, -h * step),
            "+" | "=" => view.zoom_at(w / 2.0, h / 2.0, 1.25),
            "-" | "_" => view.zoom_at(w / 2.0, h / 2.0, 0.8),
            "0" => view.fit(),
            _ => return,
        }
        ev.prevent_default();
    };

    let save_png = move || {
        let Some(s) = scene.get_untracked() else {
            return;
        };
        let (w, h) = view.size.get_untracked();
        let (x0, y0) = view.scene_at(0.0, 0.0);
        let (x1, y1) = view.scene_at(w, h);
        let (x0, y0) = (x0.max(0.0), y0.max(0.0));
        let (x1, y1) = (x1.min(s.samples as f64), y1.min(s.lines as f64));
        let alpha = opacity.get_untracked() as f64 / 100.0;
        let mut layers = vec![];
        for (node, a) in [
            (sar_canvas, 1.0),
            (layer_canvas, alpha),
            (highlight_canvas, 1.0),
        ] {
            if let Some(c) = node.get_untracked() {
                layers.push((c, a));
            }
        }
        let l = layer.get_untracked();
        let title = format!("{} · {}", s.meta.scene, layer_name(l));
        if let Err(e) = export_png(
            &format!("{}_{}.png", s.meta.scene, l.key()),
            &layers,
            (x0, y0, x1 - x0, y1 - y0),
            &title,
            &legend_items(l),
        ) {
            web_sys::console::warn_1(&e.into());
        }
    };
    let stack_style = move || {
        let (tx, ty, s) = view.transform();
        let (lines, samples) = view.scene_size.get();
        format!(
            "width: {samples}px; height: {lines}px; transform: translate({tx:.2}px, {ty:.2}px) scale({s:.5})"
        )
    };
    // The divider is a screen position; the canvases are clipped in scene pixels.
    let divider_scene_x = move || {
        let (w, _) = view.size.get();
        let (tx, _, s) = view.transform();
        view.swipe.get().map(|f| (f * w - tx) / s)
    };
    let layer_style = move || {
        let mut st = format!("opacity: {}", opacity.get() as f64 / 100.0);
        if let Some(x) = divider_scene_x() {
            let (_, samples) = view.scene_size.get();
            st += &format!("; clip-path: inset(0 {:.2}px 0 0)", samples as f64 - x);
        }
        st
    };
    let compare_style = move || match divider_scene_x() {
        Some(x) => format!(
            "opacity: {}; clip-path: inset(0 0 0 {x:.2}px)",
            opacity.get() as f64 / 100.0
        ),
        None => "display: none".into(),
    };

    view! {
        <div class="viewport" node_ref=viewport tabindex="0" data-testid="viewport"
            on:wheel=on_wheel on:pointerdown=on_down on:pointermove=on_move on:pointerup=on_up
            on:pointercancel=on_up on:pointerleave=move |_| hover.set(None) on:keydown=on_key
            class:dragging=move || drag.get().is_some()
        >
            <div class="stack" style=stack_style>
                <canvas node_ref=sar_canvas class="sar"></canvas>
                <canvas node_ref=layer_canvas class="layer" style=layer_style></canvas>
                <canvas node_ref=compare_canvas class="compare" style=compare_style></canvas>
                <canvas node_ref=highlight_canvas class="highlight"></canvas>
            </div>
            <canvas node_ref=ahead_canvas class="ahead" data-testid="picture-ahead"
                class:shown=move || picture_ahead.with(Option::is_some)></canvas>
            {move || view.swipe.get().map(|f| view! {
                <div class="swipe-line" style=format!("left: {:.2}%", f * 100.0)>
                    <div class="swipe-handle" data-testid="swipe-handle" title="Drag to compare">"⟺"</div>
                    <span class="swipe-label left">{layer_name(layer.get())}</span>
                    <span class="swipe-label right">{layer_name(counterpart(layer.get()))}</span>
                </div>
            })}
            <div class="view-tools">
                <button title="Compare with a swipe divider" class:on=move || view.swipe.get().is_some()
                    data-testid="swipe" on:click=move |_| view.swipe.update(|s| *s = if s.is_some() { None } else { Some(0.5) })>"Swipe"</button>
                <button title="Zoom in (+)" on:click=move |_| { let (w, h) = view.size.get_untracked(); view.zoom_at(w / 2.0, h / 2.0, 1.5) }>"+"</button>
                <button title="Zoom out (−)" on:click=move |_| { let (w, h) = view.size.get_untracked(); view.zoom_at(w / 2.0, h / 2.0, 1.0 / 1.5) }>"−"</button>
                <button title="Whole scene (0)" data-testid="fit" on:click=move |_| view.fit()>"Fit"</button>
                <button title="Save what is in view, with its legend, as a PNG" data-testid="export-png" on:click=move |_| save_png()>"PNG"</button>
                <span class="zoom-level" data-testid="zoom">{move || format!("{:.0} %", view.zoom.get() * 100.0)}</span>
            </div>
            <Inspector scene=scene run=run hover=hover />
        </div>
    }
}

/// What is known about the pixel under the pointer.
#[component]
fn Inspector(
    scene: Signal<Option<Arc<Scene>>>,
    run: Signal<Option<Arc<Run>>>,
    hover: RwSignal<Option<(usize, usize)>>,
) -> impl IntoView {
    move || {
        let (line, sample) = hover.get()?;
        let s = scene.get()?;
        // The hover position may still be one over the previous, larger scene.
        if line >= s.lines || sample >= s.samples {
            return None;
        }
        let i = line * s.samples + sample;
        let (lat, lon) = s.lat_lon(line as f64, sample as f64);
        let db = s
            .sar_db(line, sample)
            .map(|(hh, hv)| format!("HH {hh:.1} dB · HV {hv:.1} dB"))
            .unwrap_or_else(|| "no SAR data".into());
        let run = run.get();
        let rows: Vec<_> = Chart::ALL
            .iter()
            .map(|&c| {
                let class_name = |v: u8| {
                    c.classes()
                        .get(v as usize)
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| {
                            if v == 255 {
                                "—".into()
                            } else {
                                "mask".into()
                            }
                        })
                };
                let truth = s.chart(c).and_then(|m| m.get(i)).map(|v| class_name(*v));
                // A run of another scene (its grid differs) shows nothing rather than panic.
                let pred = run.as_ref().and_then(|r| {
                    let p = &r.prediction;
                    Some(match (c, &p.sic_value) {
                        (Chart::SIC, Some(v)) => {
                            format!("{:.0} %", v.get(i)?.clamp(0.0, 10.0) * 10.0)
                        }
                        _ => format!(
                            "{} ({:.0} %)",
                            class_name(*p.chart(c).get(i)?),
                            p.confidence[c as usize].get(i)? * 100.0
                        ),
                    })
                });
                view! {
                    <tr>
                        <td>{c.name()}</td>
                        <td>{truth.unwrap_or_else(|| "no chart".into())}</td>
                        <td>{pred.unwrap_or_else(|| "—".into())}</td>
                    </tr>
                }
            })
            .collect();
        // An attention U-Net's ψ of every expanding block at this pixel, deepest first.
        let psi = run.as_ref().and_then(|r| {
            let p = &r.prediction;
            let v: Option<Vec<String>> = (0..p.attention.len())
                .map(|k| p.attention_at(k, i).map(|v| format!("{v:.2}")))
                .collect();
            v.filter(|v| !v.is_empty())
        });
        Some(view! {
            <div class="inspector" data-testid="inspector">
                <div>{format!("line {line}, sample {sample}")}</div>
                {psi.map(|v| view! { <div data-testid="inspector-attention">{format!("attention ψ {}", v.join(" · "))}</div> })}
                <div>{format!("{:.4}° {}, {:.4}° {}", lat.abs(), if lat >= 0.0 { "N" } else { "S" }, lon.abs(), if lon >= 0.0 { "E" } else { "W" })}</div>
                <div>{db}</div>
                <table>
                    <tr><th></th><th>"chart"</th><th>"predicted"</th></tr>
                    {rows}
                </table>
            </div>
        })
    }
}
