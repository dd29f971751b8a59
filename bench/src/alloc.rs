//! The counting global allocator, allocation tracing (`--trace-allocs`), the resident set
//! size, and marks of time and allocations between the phases of a connection.

use std::alloc::{GlobalAlloc, Layout, System};
use std::backtrace::Backtrace;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Instant;

use crate::util::Result;

// ---------------------------------------------------------------------------------------
// Counting allocator: every call into the allocator (alloc, alloc_zeroed, realloc) is one
// allocation; bytes allocated minus bytes freed is the live heap.

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static ALLOC_BYTES: AtomicU64 = AtomicU64::new(0);
static FREED_BYTES: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        trace_alloc(layout.size());
        ALLOCS.fetch_add(1, Relaxed);
        ALLOC_BYTES.fetch_add(layout.size() as u64, Relaxed);
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        trace_alloc(layout.size());
        ALLOCS.fetch_add(1, Relaxed);
        ALLOC_BYTES.fetch_add(layout.size() as u64, Relaxed);
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        FREED_BYTES.fetch_add(layout.size() as u64, Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        trace_alloc(new_size);
        ALLOCS.fetch_add(1, Relaxed);
        ALLOC_BYTES.fetch_add(new_size as u64, Relaxed);
        FREED_BYTES.fetch_add(layout.size() as u64, Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made so far, by every thread of the process.
pub fn allocs() -> u64 {
    ALLOCS.load(Relaxed)
}

/// Bytes allocated and not yet freed.
pub fn live_heap() -> i64 {
    ALLOC_BYTES.load(Relaxed) as i64 - FREED_BYTES.load(Relaxed) as i64
}

/// The process's resident set size (`VmRSS`), in KiB.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// Allocation tracing (`--trace-allocs`): a backtrace per allocation, tagged with the phase.

/// One traced allocation: its phase, its size, where it was made.
pub type Trace = (usize, usize, Backtrace);

static TRACE: AtomicBool = AtomicBool::new(false);
static PHASE: AtomicUsize = AtomicUsize::new(0);
static TRACES: Mutex<Vec<Trace>> = Mutex::new(Vec::new());
thread_local! {
    static IN_TRACE: Cell<bool> = const { Cell::new(false) };
}

fn trace_alloc(size: usize) {
    if !TRACE.load(Relaxed) {
        return;
    }
    let _ = IN_TRACE.try_with(|g| {
        if g.get() {
            return;
        }
        g.set(true);
        let bt = Backtrace::force_capture();
        if let Ok(mut v) = TRACES.lock() {
            v.push((PHASE.load(Relaxed), size, bt));
        }
        g.set(false);
    });
}

/// Traces every allocation from now on, from phase 0.
pub fn start_tracing() {
    PHASE.store(0, Relaxed);
    TRACE.store(true, Relaxed);
}

pub fn stop_tracing() {
    TRACE.store(false, Relaxed);
}

/// Tags the allocations from now on with `phase`.
pub fn set_phase(phase: usize) {
    PHASE.store(phase, Relaxed);
}

/// The allocations traced so far; the list starts empty again.
pub fn take_traces() -> Result<Vec<Trace>> {
    Ok(std::mem::take(&mut *TRACES.lock().map_err(|_| "poisoned")?))
}

/// The first frames of a backtrace that belong to a library, not to std or the allocator.
pub fn summarize(bt: &Backtrace) -> String {
    let text = bt.to_string();
    let mut frames = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let Some((_, name)) = line.split_once(": ") else {
            continue;
        };
        if line.starts_with("at ") {
            continue;
        }
        let skip = [
            "std::",
            "core::",
            "alloc::",
            "__rust",
            "<alloc::",
            "<core::",
            "<std::",
            "tower_tunnel_bench::alloc::trace_alloc",
            "<tower_tunnel_bench::alloc::Counting",
            "__rdl",
            "__rg_",
        ];
        if skip.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let mut name = name.to_string();
        if let Some(i) = name.rfind("::h") {
            if name.len() - i == 19 {
                name.truncate(i);
            }
        }
        frames.push(name);
        if frames.len() == 4 {
            break;
        }
    }
    frames.join("  <-  ")
}

// ---------------------------------------------------------------------------------------
// Marks between phases

/// Time and allocation marks between phases; each mark also moves traced allocations on to
/// the next phase.
pub struct Marks {
    on: bool,
    pub at: Vec<(Instant, u64)>,
}

impl Marks {
    pub fn off() -> Marks {
        Marks {
            on: false,
            at: Vec::new(),
        }
    }

    pub fn start() -> Marks {
        let mut at = Vec::with_capacity(8);
        at.push((Instant::now(), allocs()));
        Marks { on: true, at }
    }

    pub fn mark(&mut self) {
        PHASE.fetch_add(1, Relaxed);
        if self.on {
            self.at.push((Instant::now(), allocs()));
        }
    }
}
