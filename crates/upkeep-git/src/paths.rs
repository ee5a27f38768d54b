//! Keeping writes inside the repository's work tree.
//!
//! A relative path is checked component by component against what is on disk *now*: `..`,
//! absolute paths and `.git` are refused outright, and every existing component that is a
//! symlink must resolve to a place inside the work tree (a dangling symlink is refused too,
//! since writing through it would create its target wherever it points). Checking each
//! component, not just the final path, catches `inside-link/../../etc` style tricks and links
//! to links.

use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

use crate::GitError;

/// The absolute path for `relative` inside `root` (canonical), or why it would escape.
pub(crate) fn inside(root: &Path, relative: &str) -> Result<PathBuf, GitError> {
    let escapes = |reason: &str| GitError::PathEscapes {
        path: relative.to_owned(),
        reason: reason.to_owned(),
    };
    let path = Path::new(relative);
    if relative.is_empty() {
        return Err(escapes("empty path"));
    }
    let mut current = root.to_path_buf();
    let mut any = false;
    for component in path.components() {
        match component {
            Component::CurDir => continue,
            Component::ParentDir => return Err(escapes("contains `..`")),
            Component::RootDir | Component::Prefix(_) => return Err(escapes("absolute path")),
            Component::Normal(name) => {
                if name.eq_ignore_ascii_case(".git") {
                    return Err(escapes("inside `.git`"));
                }
                current.push(name);
                any = true;
            }
        }
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = std::fs::canonicalize(&current)
                    .map_err(|_| escapes("through a symlink that points nowhere"))?;
                if !target.starts_with(root) {
                    return Err(escapes(&format!(
                        "through a symlink to {}",
                        target.display()
                    )));
                }
            }
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(source) => {
                return Err(GitError::Io {
                    what: format!("inspecting {}", current.display()),
                    source,
                });
            }
        }
    }
    if any {
        Ok(current)
    } else {
        Err(escapes("names the repository root"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_checked_component_by_component() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        let root = std::fs::canonicalize(dir.path()).expect("canonical");
        std::fs::create_dir(root.join("apps")).expect("mkdir");
        std::os::unix::fs::symlink(outside.path(), root.join("out")).expect("symlink");
        std::os::unix::fs::symlink(root.join("apps"), root.join("in")).expect("symlink");
        std::os::unix::fs::symlink(root.join("out"), root.join("apps/via")).expect("symlink");
        std::os::unix::fs::symlink("/nonexistent/x", root.join("dangling")).expect("symlink");
        let cases = [
            ("apps/a.yaml", true, "plain nested path"),
            (
                "./apps/new/dir/b.yaml",
                true,
                "`.` and new directories are fine",
            ),
            ("in/c.yaml", true, "a symlink that stays inside"),
            ("../x.yaml", false, "`..` leaves the work tree"),
            (
                "apps/../../x",
                false,
                "`..` anywhere is refused, even if it would stay inside",
            ),
            ("/etc/passwd", false, "absolute path"),
            ("out/x.yaml", false, "symlink to a directory outside"),
            (
                "in/via/x.yaml",
                false,
                "symlink inside leading to a symlink outside",
            ),
            (
                "dangling",
                false,
                "writing through a dangling symlink creates its target",
            ),
            (".git/config", false, "the repository's own metadata"),
            ("", false, "empty path"),
            (".", false, "the root itself is not a file"),
        ];
        for (path, ok, reason) in cases {
            let got = inside(&root, path);
            assert_eq!(got.is_ok(), ok, "{path:?}: {reason}: {got:?}");
            if let Ok(p) = got {
                assert!(p.starts_with(&root), "{path:?}: {reason}");
            }
        }
    }
}
