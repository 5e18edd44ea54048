//! Progress for long operations: an indicatif spinner on a terminal, plain lines otherwise.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::backend::Progress;

pub struct Spinner {
    bar: ProgressBar,
}

impl Spinner {
    pub fn new(what: &str) -> Self {
        let bar = ProgressBar::new_spinner();
        bar.set_style(ProgressStyle::with_template("{spinner} [{elapsed}] {msg}").expect("static template"));
        bar.enable_steady_tick(Duration::from_millis(120));
        bar.set_message(what.to_string());
        Spinner { bar }
    }

    /// Runs `f` (which prints to stdout) with the spinner out of the way.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    pub fn finish(&self, message: &str) {
        self.bar.finish_with_message(message.to_string());
    }
}

impl Progress for Spinner {
    fn step(&self, message: &str) {
        // Keep a record of each step above the spinner (also when stderr is not a terminal).
        if self.bar.is_hidden() {
            eprintln!("{message}");
        } else {
            self.bar.println(format!("  {message}"));
        }
        self.bar.set_message(message.to_string());
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if !self.bar.is_finished() {
            self.bar.finish_and_clear();
        }
    }
}
