//! What a child process writes to a pipe, collected by a thread as it arrives: tests and
//! benchmarks read a running process's log (a controller's, `upkeep run`'s) without blocking on
//! it, and the pipe never fills up and stalls the process.

use std::io::Read;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

/// The text read so far from one pipe (lossy UTF-8); clones share it.
#[derive(Debug, Clone, Default)]
pub struct Captured(Arc<Mutex<String>>);

impl Captured {
    /// Reads `from` on a thread of its own until end of file (the process closed the pipe or
    /// exited); the handle finishes then.
    pub fn start(mut from: impl Read + Send + 'static) -> (Self, JoinHandle<()>) {
        let captured = Captured::default();
        let into = captured.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 {
                    break;
                }
                into.with_mut(|text| text.push_str(&String::from_utf8_lossy(&buf[..n])));
            }
        });
        (captured, reader)
    }

    /// Everything read so far.
    pub fn text(&self) -> String {
        self.with(str::to_owned)
    }

    /// `f` of the text read so far, without copying it.
    pub fn with<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        f(&self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn with_mut(&self, f: impl FnOnce(&mut String)) {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

#[cfg(test)]
mod tests {
    use super::Captured;

    #[test]
    fn reads_everything_until_the_writer_closes() {
        let (captured, reader) = Captured::start(&b"line one\nline \xff two\n"[..]);
        reader.join().expect("reader");
        assert_eq!(captured.text(), "line one\nline \u{fffd} two\n");
        assert_eq!(captured.with(|t| t.lines().count()), 2);
    }
}
