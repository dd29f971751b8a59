//! Descriptors and tasks before and after a piece of work: what a test checks to say
//! nothing was left behind.

#![allow(dead_code)]

use std::time::{Duration, Instant};

/// Descriptors a test may see appear meanwhile (the runtime's, the allocator's).
pub const FD_TOLERANCE: usize = 8;
/// Tasks a test may see alive meanwhile (the fixtures' accept loops).
pub const TASK_TOLERANCE: usize = 4;

pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

pub fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Open descriptors and alive tasks, now.
pub fn snapshot() -> (usize, usize) {
    (open_fds(), alive_tasks())
}

/// Waits (bounded, 15 s) until descriptors and tasks are back within tolerance of
/// `before`, and says by how much they moved.
pub async fn assert_settles(what: &str, before: (usize, usize)) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now = snapshot();
        if now.0 <= before.0 + FD_TOLERANCE && now.1 <= before.1 + TASK_TOLERANCE {
            eprintln!(
                "{what}: fds {} -> {}, tasks {} -> {}",
                before.0, now.0, before.1, now.1
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: leaked: fds {} -> {}, tasks {} -> {}",
            before.0,
            now.0,
            before.1,
            now.1
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
