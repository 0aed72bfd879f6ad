//! The planner's memory figure against what the forward pass really allocates: a whole scene
//! is run in one piece only when `forward_peak_bytes` says it fits, so it must not count low.
//! One test in this file: the allocator's counters are process-wide.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::reference;
use icelens_core::checkpoint::load_state_dict;
use icelens_model::cpu::Feature;
use icelens_model::{forward_peak_bytes, UNet};

/// The system allocator, counting the bytes held now and the most held since the last reset.
struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = HELD.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
            PEAK.fetch_max(now, Ordering::SeqCst);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            let now = HELD.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
            PEAK.fetch_max(now, Ordering::SeqCst);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        HELD.fetch_sub(layout.size(), Ordering::SeqCst);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            HELD.fetch_sub(layout.size(), Ordering::SeqCst);
            let now = HELD.fetch_add(new_size, Ordering::SeqCst) + new_size;
            PEAK.fetch_max(now, Ordering::SeqCst);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn net(dir: &str, file: &str) -> UNet {
    let bytes = reference(&format!("{dir}{file}"));
    UNet::from_state_dict(&load_state_dict(file, &bytes).unwrap()).unwrap()
}

/// Bytes the forward pass of `net` on an `h x w` input holds at most, the input included.
fn measured_peak(net: &UNet, h: usize, w: usize) -> usize {
    let before = HELD.load(Ordering::SeqCst);
    let x = Feature {
        c: net.arch.in_channels,
        h,
        w,
        data: (0..net.arch.in_channels * h * w)
            .map(|i| ((i % 977) as f32 * 0.013).sin())
            .collect(),
    };
    PEAK.store(HELD.load(Ordering::SeqCst), Ordering::SeqCst);
    let out = net.forward_with_attention(&x);
    let peak = PEAK.load(Ordering::SeqCst);
    drop((out, x));
    peak - before
}

#[test]
fn the_memory_figure_bounds_the_forward_pass_closely() {
    // The figure is the maps the pass holds plus a fixed margin for the convolution bands'
    // scratch; at these sizes that scratch is a few megabytes (4 MB a thread).
    const BANDS: u128 = 64 << 20;
    const SCRATCH_HERE: u128 = 24 << 20;
    for (dir, file) in [
        ("", "pizza_marinara.pt"),
        ("attention/", "unet_attention_4lvl.pt"),
    ] {
        let net = net(dir, file);
        // Odd sizes: pooling floors, and the upsampled maps are padded.
        for (h, w) in [(1030, 770), (517, 1283)] {
            let measured = measured_peak(&net, h, w) as u128;
            let maps = forward_peak_bytes(&net.arch, h, w) - BANDS;
            // A map the figure forgot grows with the scene; on a whole scene the fixed
            // margin would no longer hide it.
            assert!(
                measured <= maps + SCRATCH_HERE,
                "{file} {h}x{w}: the forward pass held {measured} B, the figure counts {maps} B of maps"
            );
            // Not far above either: a figure too high sends scenes that fit to tiles.
            assert!(
                maps <= measured + measured / 8,
                "{file} {h}x{w}: the figure counts {maps} B of maps against {measured} B held"
            );
        }
    }
}
