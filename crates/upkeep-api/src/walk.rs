//! The manifest files of a repository, found without ever leaving it.
//!
//! upkeep reads and rewrites files in repositories other people (or tools) wrote, so the walk
//! is the first line of the repository boundary (DESIGN.md, "Writing is the dangerous part"):
//!
//! - **Symlinks stay inside.** A symlink (to a file or a directory, relative or absolute) is
//!   followed only when its fully resolved target is inside the repository root; a link that
//!   leads out, dangles, or loops is skipped with a located warning. A file reached through a
//!   link is listed once, at its *real* path, which is where an edit is written: the link
//!   itself is never replaced by a regular file.
//! - **Loops end.** A directory is entered at most once (by its resolved path), so `ln -s .
//!   l1; ln -s . l2` lists every file once and the walk ends; a link to one of its own
//!   ancestors is reported as a loop.
//! - **Bad files are skipped, not fatal.** Unreadable directories and files, files that are
//!   not regular (FIFOs would block a read forever), files over [`MAX_MANIFEST_BYTES`] and
//!   files that are not UTF-8 are each one [`Skipped`] entry with the reason, and the rest of
//!   the repository is read as usual: one bad file holds only what is in it.
//! - **Same rules everywhere.** Loading manifests, planning fields and writing them all go
//!   through [`walk`] and [`read_text`]; the Git-tree walk of upkeep-git follows the same
//!   rules over a commit's tree.
//!
//! Hidden entries (`.git`, `.github`, …) are not entered, and only `*.yaml`/`*.yml` files (and
//! symlinks named so) are listed.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io::{ErrorKind, Read};
use std::path::{Component, Path, PathBuf};

/// Manifests larger than this are skipped: no GitOps manifest is near it, and reading one
/// costs memory proportional to its size.
pub const MAX_MANIFEST_BYTES: u64 = 8 * 1024 * 1024;

/// A manifest file inside the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkedFile {
    /// The real path from the root, `/`-separated: where the file's bytes live and where an
    /// edit is written.
    pub rel: String,
    /// The absolute real path.
    pub path: PathBuf,
}

/// Why a file or directory was left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// A symlink whose target resolves outside the repository.
    LinkOutside { target: String },
    /// A symlink that points nowhere.
    Dangling { target: String },
    /// A symlink chain that never ends, or a directory link to one of its own ancestors.
    LinkLoop,
    /// Not a regular file or directory (a FIFO, socket or device).
    NotRegular { what: &'static str },
    /// Could not be read (permissions, I/O).
    Unreadable { error: String },
    /// Larger than [`MAX_MANIFEST_BYTES`].
    TooLarge { size: u64 },
    /// Not UTF-8 (`utf16` when it starts with a UTF-16 byte-order mark).
    NotUtf8 { line: usize, utf16: bool },
}

impl SkipReason {
    /// A stable name for the reason (metric label, JSON).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::LinkOutside { .. } => "LinkOutside",
            Self::Dangling { .. } => "DanglingLink",
            Self::LinkLoop => "LinkLoop",
            Self::NotRegular { .. } => "NotRegular",
            Self::Unreadable { .. } => "Unreadable",
            Self::TooLarge { .. } => "TooLarge",
            Self::NotUtf8 { .. } => "NotUtf8",
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Self::LinkOutside { .. } => Some(
                "upkeep never reads or writes outside the repository; copy the file into it or point the link inside",
            ),
            Self::Dangling { .. } => Some("remove the link or create its target"),
            Self::LinkLoop => Some("remove the link that points back at a directory above it"),
            Self::NotRegular { .. } => {
                Some("upkeep reads only regular files (not FIFOs, sockets or devices)")
            }
            Self::TooLarge { .. } => Some(
                "upkeep does not read manifests this large and leaves the file alone; split it into smaller files",
            ),
            Self::Unreadable { .. } => Some("check the file's permissions"),
            Self::NotUtf8 { utf16: true, .. } => Some("save the file as UTF-8 (it is UTF-16)"),
            Self::NotUtf8 { .. } => Some("save the file as UTF-8"),
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LinkOutside { target } => {
                write!(f, "symlink to {target}, outside the repository")
            }
            Self::Dangling { target } => write!(f, "symlink to {target}, which does not exist"),
            Self::LinkLoop => f.write_str("symlink loop"),
            Self::NotRegular { what } => write!(f, "not a regular file ({what})"),
            Self::Unreadable { error } => write!(f, "cannot read: {error}"),
            Self::TooLarge { size } => write!(
                f,
                "file is larger than {} MiB ({size} bytes)",
                MAX_MANIFEST_BYTES >> 20
            ),
            Self::NotUtf8 { line, utf16: true } => {
                write!(f, "not UTF-8 (a UTF-16 byte-order mark, line {line})")
            }
            Self::NotUtf8 { line, .. } => write!(f, "not UTF-8 (line {line})"),
        }
    }
}

/// A file or directory the walk left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The path as found (through the links that led to it), from the root, `/`-separated.
    pub rel: String,
    pub reason: SkipReason,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rel, self.reason)
    }
}

/// What [`walk`] found.
#[derive(Debug, Clone, Default)]
pub struct Walk {
    /// Manifest files, sorted by real path, each once.
    pub files: Vec<WalkedFile>,
    pub skipped: Vec<Skipped>,
    /// How many symlinks the walk met (followed or not). Without any, the files under a
    /// directory are exactly the listed files whose path starts with it.
    pub links: usize,
    /// Temporary files an upkeep killed mid-write left beside a manifest
    /// (`.<name>.upkeep-write-<pid>-<n>`): a writer holding the repository's lock removes them.
    pub leftovers: Vec<PathBuf>,
}

/// Whether `name` is one of upkeep's temporary write files.
pub fn is_leftover(name: &str) -> bool {
    name.starts_with('.') && name.contains(".upkeep-write-")
}

/// Whether a file name is a manifest name: `*.yaml`, `*.yml`, or exactly `Kustomization` (the
/// files Flux's image automation reads: kustomize accepts that name for its file).
pub fn is_manifest_name(name: &str) -> bool {
    name == "Kustomization"
        || Path::new(name)
            .extension()
            .is_some_and(|x| x == "yaml" || x == "yml")
}

/// `path` as a `/`-separated path from `root` (both absolute and resolved).
fn rel_of(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// Resolves `path` (which must be inside `root`, both absolute) through every symlink: the
/// real path when it stays inside `root`, else why not.
fn resolve(root: &Path, path: &Path) -> Result<PathBuf, SkipReason> {
    match fs::canonicalize(path) {
        Ok(real) if real.starts_with(root) => Ok(real),
        Ok(real) => Err(SkipReason::LinkOutside {
            target: real.display().to_string(),
        }),
        Err(e) => {
            let target = fs::read_link(path)
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            // ELOOP has no stable ErrorKind; its raw code is 40 on Linux.
            if e.raw_os_error() == Some(40) {
                Err(SkipReason::LinkLoop)
            } else if e.kind() == ErrorKind::NotFound {
                Err(SkipReason::Dangling { target })
            } else {
                Err(SkipReason::Unreadable {
                    error: e.to_string(),
                })
            }
        }
    }
}

/// The directory `under` (relative to `root`, `""` or `.` for the root itself) resolved
/// inside `root`, or why it cannot be walked.
pub fn resolve_under(root: &Path, under: &str) -> Result<PathBuf, SkipReason> {
    let mut p = root.to_path_buf();
    for c in Path::new(under).components() {
        match c {
            Component::CurDir => {}
            Component::Normal(n) => p.push(n),
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(SkipReason::LinkOutside {
                    target: under.to_owned(),
                });
            }
        }
    }
    resolve(root, &p)
}

/// Every manifest file under `root/under`, inside `root` (which must exist; it is resolved
/// first). An `under` that is missing or leads outside is one [`Skipped`] entry.
pub fn walk(root: &Path, under: &str) -> Walk {
    let mut out = Walk::default();
    let root = match fs::canonicalize(root) {
        Ok(r) => r,
        Err(e) => {
            out.skipped.push(Skipped {
                rel: root.display().to_string(),
                reason: SkipReason::Unreadable {
                    error: e.to_string(),
                },
            });
            return out;
        }
    };
    let start = match resolve_under(&root, under) {
        Ok(s) => s,
        Err(reason) => {
            out.skipped.push(Skipped {
                rel: under.to_owned(),
                reason,
            });
            return out;
        }
    };
    if start.is_file() {
        // A path naming one file.
        out.files.push(WalkedFile {
            rel: rel_of(&root, &start),
            path: start,
        });
        return out;
    }
    // Hash sets of the paths' bytes: ordered `PathBuf` sets compare component by component,
    // which was a visible part of walking 10,000 files.
    let mut seen_files: HashSet<OsString> = HashSet::new();
    let mut entered: HashSet<OsString> = HashSet::new();
    // (real directory, the path it was reached by, for messages)
    let mut stack: Vec<(PathBuf, String)> = vec![(start.clone(), rel_of(&root, &start))];
    while let Some((dir, shown)) = stack.pop() {
        if !entered.insert(dir.clone().into_os_string()) {
            continue;
        }
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                out.skipped.push(Skipped {
                    rel: shown,
                    reason: SkipReason::Unreadable {
                        error: e.to_string(),
                    },
                });
                continue;
            }
        };
        let mut names: Vec<_> = entries.filter_map(Result::ok).collect();
        names.sort_by_key(fs::DirEntry::file_name);
        for entry in names {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                if is_leftover(&name) && entry.file_type().is_ok_and(|t| t.is_file()) {
                    out.leftovers.push(entry.path());
                }
                continue;
            }
            let path = entry.path();
            let shown_path = if shown.is_empty() {
                name.clone()
            } else {
                format!("{shown}/{name}")
            };
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            let skip = |reason| Skipped {
                rel: shown_path.clone(),
                reason,
            };
            if file_type.is_symlink() {
                out.links += 1;
                match resolve(&root, &path) {
                    Ok(real) if real.is_dir() => {
                        if dir.starts_with(&real) {
                            out.skipped.push(skip(SkipReason::LinkLoop));
                        } else if !entered.contains(real.as_os_str()) {
                            stack.push((real, shown_path));
                        }
                    }
                    Ok(real) if is_manifest_name(&name) => {
                        if real.is_file() {
                            if seen_files.insert(real.clone().into_os_string()) {
                                out.files.push(WalkedFile {
                                    rel: rel_of(&root, &real),
                                    path: real,
                                });
                            }
                        } else {
                            out.skipped.push(skip(SkipReason::NotRegular {
                                what: kind_of(&real),
                            }));
                        }
                    }
                    Ok(_) => {}
                    Err(reason) => {
                        // A link that leads nowhere usable is worth a word only when it could
                        // have been a manifest or a directory of them.
                        if is_manifest_name(&name) || Path::new(&name).extension().is_none() {
                            out.skipped.push(skip(reason));
                        }
                    }
                }
            } else if file_type.is_dir() {
                stack.push((path, shown_path));
            } else if is_manifest_name(&name) {
                if file_type.is_file() {
                    if seen_files.insert(path.clone().into_os_string()) {
                        out.files.push(WalkedFile {
                            rel: rel_of(&root, &path),
                            path,
                        });
                    }
                } else {
                    out.skipped.push(skip(SkipReason::NotRegular {
                        what: kind_of(&path),
                    }));
                }
            }
        }
    }
    out.files.sort_by(|a, b| a.rel.cmp(&b.rel));
    out.skipped.sort_by(|a, b| a.rel.cmp(&b.rel));
    out.skipped.dedup();
    out
}

fn kind_of(path: &Path) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    match fs::metadata(path).map(|m| m.file_type()) {
        Ok(t) if t.is_fifo() => "a FIFO",
        Ok(t) if t.is_socket() => "a socket",
        Ok(t) if t.is_block_device() || t.is_char_device() => "a device",
        Ok(t) if t.is_dir() => "a directory",
        _ => "not a file",
    }
}

/// [`read_text`] for a file [`walk`] just listed (so known to be a regular file): one `stat`
/// fewer per file, which is what most of a large repository's scan costs.
pub fn read_walked(path: &Path) -> Result<(String, Stamp), SkipReason> {
    let unreadable = |e: std::io::Error| SkipReason::Unreadable {
        error: e.to_string(),
    };
    let file = fs::File::open(path).map_err(unreadable)?;
    let stamp = Stamp::of(&file.metadata().map_err(unreadable)?);
    read_open(path, file).map(|text| (text, stamp))
}

/// What identifies one version of a file on disk (as Git's index does): inode, size and
/// change times. Every write upkeep makes replaces the file (a new inode), and any other write
/// changes the size or the times, so an unchanged stamp means unchanged bytes — a text read
/// earlier can be used again without reading the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    pub fn of(meta: &fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// The stamp of the file at `path` now.
    pub fn now(path: &Path) -> Option<Self> {
        fs::metadata(path).ok().map(|m| Self::of(&m))
    }
}

fn read_open(path: &Path, file: fs::File) -> Result<String, SkipReason> {
    let unreadable = |e: std::io::Error| SkipReason::Unreadable {
        error: e.to_string(),
    };
    let meta = file.metadata().map_err(unreadable)?;
    if !meta.is_file() {
        return Err(SkipReason::NotRegular {
            what: kind_of(path),
        });
    }
    if meta.len() > MAX_MANIFEST_BYTES {
        return Err(SkipReason::TooLarge { size: meta.len() });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(SkipReason::TooLarge {
            size: bytes.len() as u64,
        });
    }
    text_of(bytes)
}

/// The text of a walked file: a regular file of at most [`MAX_MANIFEST_BYTES`], UTF-8.
pub fn read_text(path: &Path) -> Result<String, SkipReason> {
    let unreadable = |e: std::io::Error| SkipReason::Unreadable {
        error: e.to_string(),
    };
    // Look before opening: opening a FIFO for reading blocks until someone writes to it.
    if !fs::metadata(path).map_err(unreadable)?.is_file() {
        return Err(SkipReason::NotRegular {
            what: kind_of(path),
        });
    }
    let file = fs::File::open(path).map_err(unreadable)?;
    read_open(path, file)
}

/// `bytes` as UTF-8 text, or where it is not.
pub fn text_of(bytes: Vec<u8>) -> Result<String, SkipReason> {
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let at = e.utf8_error().valid_up_to();
        SkipReason::NotUtf8 {
            line: bytes[..at].split(|&b| b == b'\n').count(),
            utf16: bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn write(p: &Path, s: &str) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, s).unwrap();
    }

    #[test]
    fn the_walk_never_leaves_the_root_and_always_ends() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        write(&outside.path().join("v2.yaml"), "a: 1\n");
        let root = fs::canonicalize(tmp.path()).unwrap();
        write(&root.join("apps/dev/a.yaml"), "a: 1\n");
        write(&root.join("apps/dev/sub/b.yml"), "b: 1\n");
        write(&root.join("apps/dev/readme.md"), "not yaml\n");
        write(&root.join("apps/prod/c.yaml"), "c: 1\n");
        write(&root.join("shared/s.yaml"), "s: 1\n");
        write(&root.join(".github/w.yaml"), "w: 1\n");
        let dev = root.join("apps/dev");
        symlink(outside.path(), dev.join("extdir")).unwrap();
        symlink(outside.path().join("v2.yaml"), dev.join("extfile.yaml")).unwrap();
        symlink(".", dev.join("l1")).unwrap();
        symlink(".", dev.join("l2")).unwrap();
        symlink("..", dev.join("up")).unwrap();
        symlink("../../shared", dev.join("shared")).unwrap();
        symlink("a.yaml", dev.join("alias.yaml")).unwrap();
        symlink("../../shared/s.yaml", dev.join("s-link.yaml")).unwrap();
        symlink("/nonexistent/x.yaml", dev.join("dangling.yaml")).unwrap();
        symlink("self.yaml", dev.join("self.yaml")).unwrap();
        write(&dev.join(".a.yaml.upkeep-write-123-0"), "a: 2\n");
        nix_mkfifo(&dev.join("pipe.yaml"));

        let w = walk(&root, "apps/dev");
        assert_eq!(
            w.leftovers,
            [dev.join(".a.yaml.upkeep-write-123-0")],
            "a killed writer's temporary file is found, not listed as a manifest"
        );
        let files: Vec<&str> = w.files.iter().map(|f| f.rel.as_str()).collect();
        // (expectation, reason)
        let want_files = [
            ("apps/dev/a.yaml", "a plain file"),
            ("apps/dev/sub/b.yml", "a nested .yml file"),
            (
                "shared/s.yaml",
                "reached through two links inside the root, listed once",
            ),
        ];
        for (f, reason) in want_files {
            assert!(files.contains(&f), "{f}: {reason}; got {files:?}");
        }
        assert_eq!(
            files.len(),
            want_files.len(),
            "each real file once: {files:?}"
        );
        let skipped: Vec<(String, &str)> = w
            .skipped
            .iter()
            .map(|s| (s.rel.clone(), s.reason.kind()))
            .collect();
        let want_skipped = [
            (
                "apps/dev/extdir",
                "LinkOutside",
                "directory link out of the root",
            ),
            (
                "apps/dev/extfile.yaml",
                "LinkOutside",
                "file link out of the root",
            ),
            ("apps/dev/l1", "LinkLoop", "a link to its own directory"),
            ("apps/dev/l2", "LinkLoop", "a second such link"),
            (
                "apps/dev/up",
                "LinkLoop",
                "a link to an ancestor would walk the tree again",
            ),
            ("apps/dev/dangling.yaml", "DanglingLink", "points nowhere"),
            ("apps/dev/self.yaml", "LinkLoop", "a link to itself"),
            (
                "apps/dev/pipe.yaml",
                "NotRegular",
                "a FIFO would block a read",
            ),
        ];
        for (p, kind, reason) in want_skipped {
            assert!(
                skipped.iter().any(|(r, k)| r == p && *k == kind),
                "{p} {kind}: {reason}; got {skipped:?}"
            );
        }
    }

    fn nix_mkfifo(p: &Path) {
        let status = std::process::Command::new("mkfifo")
            .arg(p)
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[test]
    fn under_paths_that_leave_the_root_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(tmp.path()).unwrap();
        fs::create_dir_all(root.join("apps")).unwrap();
        symlink(outside.path(), root.join("apps/out")).unwrap();
        let cases = [
            ("..", "a parent directory"),
            ("apps/../..", "`..` inside"),
            ("/etc", "an absolute path"),
            ("apps/out", "a link out of the root"),
        ];
        for (under, reason) in cases {
            let w = walk(&root, under);
            assert!(w.files.is_empty(), "{under}: {reason}");
            assert_eq!(w.skipped.len(), 1, "{under}: {reason}: {:?}", w.skipped);
        }
    }

    #[test]
    fn unreadable_and_bad_files_are_reasons_not_failures() {
        let tmp = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(tmp.path()).unwrap();
        let utf16 = root.join("u16.yaml");
        fs::write(&utf16, [0xff, 0xfe, b'a', 0, b':', 0]).unwrap();
        let latin1 = root.join("l1.yaml");
        fs::write(&latin1, b"a: 1\nb: caf\xe9\n").unwrap();
        let big = root.join("big.yaml");
        let f = fs::File::create(&big).unwrap();
        f.set_len(MAX_MANIFEST_BYTES + 1).unwrap();
        // (path, expected reason kind, line for NotUtf8, reason)
        let cases = [
            (&utf16, "NotUtf8", Some(1), "UTF-16 with a BOM"),
            (&latin1, "NotUtf8", Some(2), "Latin-1 on line 2"),
            (&big, "TooLarge", None, "over the manifest limit"),
        ];
        for (p, kind, line, reason) in cases {
            let got = read_text(p).unwrap_err();
            assert_eq!(got.kind(), kind, "{reason}");
            if let (Some(l), SkipReason::NotUtf8 { line: got_line, .. }) = (line, &got) {
                assert_eq!(*got_line, l, "{reason}");
            }
        }
        let secret = root.join("secret.yaml");
        fs::write(&secret, "a: 1\n").unwrap();
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o000)).unwrap();
        // Root reads anything; the check only means something for other users.
        if fs::read(&secret).is_err() {
            assert_eq!(read_text(&secret).unwrap_err().kind(), "Unreadable");
        }
    }
}
