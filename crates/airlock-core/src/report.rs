//! How long operations tell the outside world what they are doing. The library never prints:
//! it calls a [`Reporter`], and the binary draws progress bars or stays quiet.

use std::sync::atomic::{AtomicU64, Ordering};

/// Identifies one running task of a reporter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TaskId(pub u64);

/// What a task counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Items,
    Bytes,
}

pub trait Reporter: Send + Sync {
    /// A task with `total` units of work (if known) starts.
    fn start(&self, label: &str, total: Option<u64>, unit: Unit) -> TaskId;
    fn advance(&self, task: TaskId, amount: u64);
    fn finish(&self, task: TaskId);
    /// Something the operator should read even when the command succeeds.
    fn warn(&self, message: &str);
}

/// Discards everything; for tests and library callers that do not care.
#[derive(Debug, Default)]
pub struct NullReporter {
    next: AtomicU64,
}

impl Reporter for NullReporter {
    fn start(&self, _: &str, _: Option<u64>, _: Unit) -> TaskId {
        TaskId(self.next.fetch_add(1, Ordering::Relaxed))
    }
    fn advance(&self, _: TaskId, _: u64) {}
    fn finish(&self, _: TaskId) {}
    fn warn(&self, _: &str) {}
}
