//! Replacing a file's bytes without ever leaving a half-written file, changing its mode or
//! owner, or replacing a symlink.
//!
//! The new bytes go to a temporary file in the same directory (so the rename cannot cross a
//! file system), which gets the old file's permission bits and owner *before* it is renamed
//! over the old file: at every instant the path holds either the whole old file or the whole
//! new one, with the same mode. `std::fs::write` on a temporary file would create it with
//! `0666 & !umask`, which turned a `0600` file into a world-readable `0644` one.
//!
//! Only an existing regular file is replaced: a symlink at the path is an error (callers
//! resolve links to their real path first, inside the repository), as is anything else.

use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temporary name next to `path`, unique to this process and call.
pub(crate) fn temp_path(path: &Path, what: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.upkeep-{what}-{}-{n}", std::process::id()))
}

/// Replaces the contents of the regular file at `path` with `contents`, keeping its mode and
/// owner; returns the new file's metadata (for the index's stat data).
pub(crate) fn replace_file(path: &Path, contents: &[u8]) -> io::Result<fs::Metadata> {
    let old = fs::symlink_metadata(path)?;
    if !old.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (upkeep never replaces a symlink or a special file)",
        ));
    }
    let tmp = temp_path(path, "write");
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        // The mode the file was created with went through the umask; set the old one exactly.
        file.set_permissions(fs::Permissions::from_mode(old.mode() & 0o7777))?;
        let mine = file.metadata()?;
        if mine.uid() != old.uid() || mine.gid() != old.gid() {
            std::os::unix::fs::fchown(&file, Some(old.uid()), Some(old.gid())).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot keep the file's owner {}:{} ({e}); run upkeep as that user",
                        old.uid(),
                        old.gid()
                    ),
                )
            })?;
            // chown clears set-user-ID bits; put the mode back once more.
            file.set_permissions(fs::Permissions::from_mode(old.mode() & 0o7777))?;
        }
        file.write_all(contents)?;
        file.flush()?;
        drop(file);
        crate::failpoint("rename");
        fs::rename(&tmp, path)?;
        fs::symlink_metadata(path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes a small file durably and atomically (temp, fsync, rename, fsync of the directory):
/// for the journal, which recovery trusts after a crash.
pub(crate) fn write_durably(path: &Path, contents: &[u8]) -> io::Result<()> {
    let tmp = temp_path(path, "journal");
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_kept_and_links_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        // (mode, reason)
        let cases = [
            (
                0o600,
                "a private file stays private (not 0644 from the umask)",
            ),
            (0o755, "an executable stays executable"),
            (0o640, "group bits kept"),
            (0o444, "a read-only file is replaced, still read-only"),
        ];
        for (mode, reason) in cases {
            let p = dir.path().join(format!("f{mode:o}.yaml"));
            fs::write(&p, "a: 1\n").expect("write");
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).expect("chmod");
            let meta = replace_file(&p, b"a: 2\n").expect(reason);
            assert_eq!(meta.mode() & 0o7777, mode, "{reason}");
            assert_eq!(fs::read(&p).expect("read"), b"a: 2\n", "{reason}");
        }
        let target = dir.path().join("target.yaml");
        fs::write(&target, "a: 1\n").expect("write");
        let link = dir.path().join("link.yaml");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        assert!(
            replace_file(&link, b"x").is_err(),
            "a symlink is never replaced"
        );
        assert!(
            fs::symlink_metadata(&link)
                .expect("lstat")
                .file_type()
                .is_symlink(),
            "the link is still a link"
        );
        assert_eq!(fs::read(&target).expect("read"), b"a: 1\n");
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .expect("ls")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains(".upkeep-"))
            .collect();
        assert!(
            leftovers.is_empty(),
            "no temporary file left: {leftovers:?}"
        );
    }
}
