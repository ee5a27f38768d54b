//! One upkeep at a time per work tree.
//!
//! Two `upkeep apply` (or `run`) on one checkout would plan on the same `HEAD`, both commit,
//! and one commit would be lost; they would also race on the index and on temporary refs. So
//! every writer first takes an exclusive lock on a file: `<git dir>/upkeep.lock` for a
//! checkout (shared by every user of it), or a file under the system's temporary directory
//! keyed by the directory's real path for a plain directory (nothing is written into it).
//!
//! The lock is `flock(2)` (through `std::fs::File::lock`), which the kernel releases when the
//! process ends however it ends: a `kill -9` leaves no stale lock to clean up, and a later run
//! never has to guess whether a lock file's owner is still alive. The file holds the holder's
//! pid and start time only for the message a waiting process prints.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::GitError;

/// An exclusive lock on a work tree; released on drop (or when the process dies).
#[derive(Debug)]
pub struct WorkTreeLock {
    _file: File,
    path: PathBuf,
}

impl WorkTreeLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The lock file for a plain directory (no Git): outside it, keyed by its real path.
pub fn lock_path_for_dir(dir: &Path) -> PathBuf {
    use std::hash::{Hash as _, Hasher as _};
    let real = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut h = std::collections::hash_map::DefaultHasher::new();
    real.hash(&mut h);
    std::env::temp_dir().join(format!("upkeep-{:016x}.lock", h.finish()))
}

/// Takes the exclusive lock at `path`, waiting up to `wait` for another holder; `on_wait` is
/// called once, with the holder's description, when the lock is busy.
pub fn lock_file(
    path: &Path,
    wait: Duration,
    on_wait: &mut dyn FnMut(&str),
) -> Result<WorkTreeLock, GitError> {
    let io = |what: &str, source| GitError::Io {
        what: format!("{what} {}", path.display()),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| io("opening the lock file", e))?;
    let started = Instant::now();
    let mut told = false;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let _ = file.rewind();
                let holder = holder.trim().to_owned();
                if !told {
                    on_wait(&holder);
                    told = true;
                }
                if started.elapsed() >= wait {
                    return Err(GitError::Locked {
                        path: path.display().to_string(),
                        holder,
                        waited: wait,
                    });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(TryLockError::Error(e)) => return Err(io("locking", e)),
        }
    }
    let me = format!(
        "upkeep pid {} since {}",
        std::process::id(),
        jiff::Timestamp::now()
    );
    let _ = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(me.as_bytes()));
    Ok(WorkTreeLock {
        _file: file,
        path: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_waits_then_gives_up_and_a_dead_holder_frees_the_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("upkeep.lock");
        let first = lock_file(&path, Duration::ZERO, &mut |_| {}).expect("first");
        let mut seen = String::new();
        let err = lock_file(&path, Duration::from_millis(120), &mut |h| {
            seen = h.to_owned();
        })
        .expect_err("busy");
        assert!(matches!(err, GitError::Locked { .. }), "{err}");
        assert!(
            seen.contains(&format!("pid {}", std::process::id())),
            "the waiter is told who holds it: {seen:?}"
        );
        drop(first);
        lock_file(&path, Duration::ZERO, &mut |_| {}).expect("free again after drop");
    }
}
