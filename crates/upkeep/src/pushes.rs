//! Registry push notifications for `upkeep run --receiver-addr`: the receiver
//! (`upkeep_controller::receiver`) on a small tokio runtime in a thread of its own, and a
//! std channel that wakes the run loop when a push matches one of the fleet's ChartSources.
//!
//! Why it is shaped this way:
//! - `upkeep run` is synchronous (each pass builds what it needs and blocks on it); only the
//!   receiver is async, so it gets one current-thread runtime and the loop waits on a channel
//!   with a timeout instead of sleeping: a matched push ends the wait at once.
//! - Pushes are matched against the ChartSource URLs of the last loaded fleet (the fleet is
//!   read from the repository at each pass; a source added by a commit is matched from the
//!   pass after it). Before the first pass has loaded the fleet nothing matches.
//! - Pushes coalesce: the loop drains the channel before a pass, so any number of pushes that
//!   arrived during a pass make exactly one more pass right after it (a push that lands while
//!   a pass scans may come after the scan listed the tags).
//! - The listener is bound before the thread starts, so a bad `--receiver-addr` is an error of
//!   the command, not a line in a log.

use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use upkeep_controller::controllers::{Shutdown, ShutdownTrigger};
use upkeep_controller::receiver::{OnPush, ReceiverSettings, serve_receiver};
use upkeep_registry::notification::{Pushed, matches};

/// How a wait between passes ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Woken {
    /// A push matched a source of the fleet.
    Pushed,
    /// The time was up.
    Due,
}

/// The run loop's end of the channel a matched push wakes it through.
struct Wakes(Receiver<()>);

impl Wakes {
    /// Forgets the wakes already sent; whether there were any.
    fn drain(&self) -> bool {
        self.0.try_iter().count() > 0
    }

    /// Waits up to `wait` for a wake.
    fn wait(&self, wait: Duration) -> Woken {
        match self.0.recv_timeout(wait) {
            Ok(()) => Woken::Pushed,
            Err(RecvTimeoutError::Timeout) => Woken::Due,
            // The receiver's thread ended (it said why): sleep as without one.
            Err(RecvTimeoutError::Disconnected) => {
                std::thread::sleep(wait);
                Woken::Due
            }
        }
    }
}

/// A running receiver; dropping it stops the server and its thread.
pub(crate) struct Pushes {
    urls: Arc<Mutex<Vec<String>>>,
    woken: Wakes,
    stop: ShutdownTrigger,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The address the receiver listens on.
    pub(crate) addr: std::net::SocketAddr,
}

impl Pushes {
    /// Binds `addr`, reads the secret file and starts the receiver.
    pub(crate) fn start(addr: std::net::SocketAddr, secret_file: &Path) -> Result<Self, String> {
        let settings = ReceiverSettings::from_secret_file(secret_file)
            .map_err(|e| format!("--receiver-secret-file: {e}"))?;
        let listener = std::net::TcpListener::bind(addr)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| format!("--receiver-addr {addr}: {e}"))?;
        let bound = listener.local_addr().unwrap_or(addr);
        let urls: Arc<Mutex<Vec<String>>> = Arc::default();
        let (wake, woken) = std::sync::mpsc::channel();
        let on_push: OnPush = {
            let urls = Arc::clone(&urls);
            Arc::new(move |pushed: &[Pushed]| {
                let matched = matching(&lock(&urls), pushed);
                eprintln!("{}", pushed_line(pushed, matched));
                if matched > 0 {
                    let _ = wake.send(());
                }
                matched
            })
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("starting the receiver: {e}"))?;
        let (stop, shutdown) = Shutdown::new();
        let thread = std::thread::Builder::new()
            .name("receiver".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => serve_receiver(l, settings, on_push, shutdown.signal()).await,
                        Err(e) => eprintln!("error: the receiver stopped: {e}"),
                    }
                });
            })
            .map_err(|e| format!("starting the receiver: {e}"))?;
        Ok(Pushes {
            urls,
            woken: Wakes(woken),
            stop,
            thread: Some(thread),
            addr: bound,
        })
    }

    /// The ChartSource URLs pushes are matched against from now on.
    pub(crate) fn set_sources(&self, urls: Vec<String>) {
        *lock(&self.urls) = urls;
    }

    /// Forgets the pushes already received (the pass about to start answers them); whether
    /// there were any.
    pub(crate) fn drain(&self) -> bool {
        self.woken.drain()
    }

    /// Waits up to `wait` for a matched push.
    pub(crate) fn wait(&self, wait: Duration) -> Woken {
        self.woken.wait(wait)
    }
}

impl Drop for Pushes {
    fn drop(&mut self) {
        self.stop.trigger();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How many of the sources `urls` one of `pushed` concerns.
pub(crate) fn matching(urls: &[String], pushed: &[Pushed]) -> usize {
    urls.iter()
        .filter(|u| pushed.iter().any(|p| matches(u, p)))
        .count()
}

/// The line `upkeep run` prints for an accepted notification: what was pushed (repository
/// and tag are not secret) and how many of the fleet's sources it concerns.
fn pushed_line(pushed: &[Pushed], matched: usize) -> String {
    let what: Vec<String> = pushed
        .iter()
        .map(|p| {
            let host = p
                .registry
                .as_deref()
                .map_or(String::new(), |h| format!("{h}/"));
            let tag = p.tag.as_deref().map_or(String::new(), |t| format!(":{t}"));
            format!("{host}{}{tag}", p.repository)
        })
        .collect();
    let matched = match matched {
        0 => "no ChartSource of the fleet matches".to_owned(),
        1 => "1 ChartSource matches: a pass follows".to_owned(),
        n => format!("{n} ChartSources match: a pass follows"),
    };
    format!("registry push: {} ({matched})", what.join(", "))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pushed(registry: Option<&str>, repository: &str) -> Pushed {
        Pushed {
            registry: registry.map(str::to_owned),
            repository: repository.to_owned(),
            tag: Some("1.2.3".into()),
            digest: None,
        }
    }

    /// Pushes during a pass: the wait after it ends at once (one more pass), that pass drains
    /// the rest, and the wait after it is a wait again; a receiver that ended wakes nothing.
    #[test]
    fn pushes_during_a_pass_make_exactly_one_more_pass() {
        let (wake, woken) = std::sync::mpsc::channel();
        let wakes = Wakes(woken);
        for _ in 0..3 {
            wake.send(()).expect("send");
        }
        assert_eq!(
            wakes.wait(Duration::from_secs(60)),
            Woken::Pushed,
            "three pushes during a pass: the next pass starts at once"
        );
        assert!(wakes.drain(), "that pass answers the other two");
        assert_eq!(
            wakes.wait(Duration::from_millis(10)),
            Woken::Due,
            "and after it there is nothing left to wake the loop"
        );
        drop(wake);
        assert_eq!(
            wakes.wait(Duration::from_millis(10)),
            Woken::Due,
            "a receiver that ended is no push (the wait sleeps instead)"
        );
    }

    #[test]
    fn a_push_counts_the_sources_over_its_repository() {
        let urls = vec![
            "oci://127.0.0.1:5000/charts/podinfo".to_owned(),
            "oci://127.0.0.1:5000/charts/other".to_owned(),
            "oci://ghcr.io/org/charts/podinfo".to_owned(),
        ];
        let cases = [
            (
                vec![pushed(Some("127.0.0.1:5000"), "charts/podinfo")],
                1,
                "the repository of one source",
            ),
            (
                vec![
                    pushed(Some("127.0.0.1:5000"), "charts/podinfo"),
                    pushed(Some("127.0.0.1:5000"), "charts/podinfo"),
                ],
                1,
                "two pushes to one repository: still one source",
            ),
            (
                vec![pushed(Some("127.0.0.1:5000"), "charts/unrelated")],
                0,
                "an unrelated repository matches nothing",
            ),
            (vec![], 0, "no push, no source"),
        ];
        for (pushes, want, why) in cases {
            assert_eq!(matching(&urls, &pushes), want, "{why}");
        }
    }
}
