//! Output while the real-time run goes: a progress bar with a live line on a terminal,
//! plain lines otherwise (CI logs, pipes), where a redrawn bar would be noise.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Debug)]
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    pub(crate) fn new(total: Duration) -> Progress {
        if !std::io::stdout().is_terminal() {
            return Progress { bar: None };
        }
        let bar = ProgressBar::with_draw_target(
            Some(total.as_millis() as u64),
            ProgressDrawTarget::stdout(),
        );
        if let Ok(style) = ProgressStyle::with_template("{elapsed:>3} [{bar:16}] {wide_msg}") {
            bar.set_style(style.progress_chars("=> "));
        }
        Progress { bar: Some(bar) }
    }

    /// Moves the bar and replaces the live line (terminal only).
    pub(crate) fn update(&self, elapsed: Duration, live: String) {
        if let Some(bar) = &self.bar {
            bar.set_position(elapsed.as_millis() as u64);
            bar.set_message(live);
        }
    }

    /// Prints a line that stays (above the bar on a terminal).
    pub(crate) fn line(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => println!("{line}"),
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
