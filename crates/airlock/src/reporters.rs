//! Draws the library's progress reports with indicatif on stderr, or stays silent.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use airlock_core::report::{Reporter, TaskId, Unit};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct TerminalReporter {
    bars: Option<MultiProgress>,
    tasks: Mutex<HashMap<u64, ProgressBar>>,
    next: AtomicU64,
}

impl TerminalReporter {
    /// Progress bars only when stderr is a terminal and the user did not ask for quiet.
    pub fn new(quiet: bool) -> TerminalReporter {
        let draw = !quiet && std::io::stderr().is_terminal();
        TerminalReporter {
            bars: draw.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            tasks: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
        }
    }
}

impl Reporter for TerminalReporter {
    fn start(&self, label: &str, total: Option<u64>, unit: Unit) -> TaskId {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        if let Some(bars) = &self.bars {
            let template = match (total, unit) {
                (Some(_), Unit::Items) => "{msg:24} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
                (Some(_), Unit::Bytes) => {
                    "{msg:24} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
                }
                (None, Unit::Items) => "{spinner} {msg:24} {pos}",
                (None, Unit::Bytes) => "{spinner} {msg:24} {bytes} {bytes_per_sec}",
            };
            let bar = match total {
                Some(total) => ProgressBar::new(total),
                None => ProgressBar::no_length(),
            };
            let style = ProgressStyle::with_template(template)
                .expect("valid template")
                .progress_chars("=> ");
            let bar = bars.add(bar.with_style(style).with_message(label.to_string()));
            self.tasks.lock().expect("tasks").insert(id, bar);
        }
        TaskId(id)
    }

    fn advance(&self, task: TaskId, amount: u64) {
        if let Some(bar) = self.tasks.lock().expect("tasks").get(&task.0) {
            bar.inc(amount);
        }
    }

    fn finish(&self, task: TaskId) {
        if let Some(bar) = self.tasks.lock().expect("tasks").remove(&task.0) {
            bar.finish_and_clear();
        }
    }

    fn warn(&self, message: &str) {
        let line = format!("warning: {message}");
        match &self.bars {
            Some(bars) => {
                let _ = bars.println(line);
            }
            None => eprintln!("{line}"),
        }
    }
}
