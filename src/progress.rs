//! A progress line for long passes over many rows (retention).

/// A progress line for long passes over many rows (retention): logged at most every few
/// seconds, and only once a pass has run that long.
pub(crate) struct Progress {
    what: &'static str,
    every: std::time::Duration,
    started: std::time::Instant,
    last: std::time::Instant,
}

impl Progress {
    pub(crate) fn new(what: &'static str) -> Progress {
        Self::every(what, std::time::Duration::from_secs(5))
    }

    fn every(what: &'static str, every: std::time::Duration) -> Progress {
        let now = std::time::Instant::now();
        Progress {
            what,
            every,
            started: now,
            last: now,
        }
    }

    /// Logs `done` so far if the last line is old enough.
    pub(crate) fn report(&mut self, done: u64) {
        if self.last.elapsed() >= self.every {
            self.last = std::time::Instant::now();
            tracing::info!(
                done,
                elapsed_s = self.started.elapsed().as_secs(),
                "{} so far",
                self.what
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Progress;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// Collects what a `tracing` subscriber writes.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(work: impl FnOnce()) -> String {
        let lines = Lines::default();
        let sink = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, work);
        String::from_utf8(lines.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn a_long_pass_logs_its_progress_and_a_short_one_stays_quiet() {
        let out = logged(|| {
            let mut p = Progress::every("retention: old events deleted", Duration::ZERO);
            p.report(5000);
            p.report(10000);
        });
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(
            lines[0].contains("retention: old events deleted so far"),
            "{out}"
        );
        assert!(
            lines[0].contains("done=5000") && lines[1].contains("done=10000"),
            "{out}"
        );
        let quiet = logged(|| Progress::new("retention: old events deleted").report(5000));
        assert_eq!(quiet, "");
    }
}
