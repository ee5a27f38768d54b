//! The manifest files of a commit's tree, by the same rules as the work-tree walk
//! (`upkeep_api::walk`): symlinks are followed only while they stay inside the repository, a
//! file reached through links is listed once at its real path, loops end, and what is left out
//! is a [`Skipped`] with the same reasons. `upkeep apply --push`, `upkeep run` and the
//! controller plan on a commit's tree, `upkeep apply` on the work tree; both see the same files.
//!
//! A tree cannot point outside the repository by itself — only a symlink blob's *text* can —
//! so links are resolved lexically against the tree: an absolute target, or one whose `..`
//! climbs above the root, leads out; more than 40 links in one resolution (Linux's limit) is a
//! loop.

use std::collections::BTreeSet;

use git2::{ObjectType, Oid, Tree};
use upkeep_api::walk::{SkipReason, Skipped, is_manifest_name};

use crate::{GitError, Repo, TreeFile};

const LINK: i32 = 0o120_000;
const DIR: i32 = 0o040_000;
const MAX_HOPS: u32 = 40;

/// What a path resolves to in a tree.
enum Node {
    File(Oid),
    Dir,
}

/// `base` joined with a link target, normalised; `None` when it climbs out or is absolute.
fn join(base: &[String], target: &str, rest: &[String]) -> Option<Vec<String>> {
    if target.starts_with('/') {
        return None;
    }
    let mut out: Vec<String> = base.to_vec();
    for c in target
        .split('/')
        .map(str::to_owned)
        .chain(rest.iter().cloned())
    {
        match c.as_str() {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            _ => out.push(c),
        }
    }
    Some(out)
}

impl Repo {
    /// Resolves `path` (components from the root) in `root`, through symlinks.
    fn resolve_in(
        &self,
        root: &Tree<'_>,
        path: &[String],
    ) -> Result<(Vec<String>, Node), SkipReason> {
        let mut path = path.to_vec();
        let mut hops = 0;
        'restart: loop {
            let mut tree = root.clone();
            for (i, name) in path.iter().enumerate() {
                let Some((mode, id, kind)) = tree
                    .get_name(name)
                    .map(|e| (e.filemode(), e.id(), e.kind()))
                else {
                    return Err(SkipReason::Dangling {
                        target: path.join("/"),
                    });
                };
                let last = i + 1 == path.len();
                match mode {
                    LINK => {
                        hops += 1;
                        if hops > MAX_HOPS {
                            return Err(SkipReason::LinkLoop);
                        }
                        let target = self
                            .inner
                            .find_blob(id)
                            .ok()
                            .and_then(|b| String::from_utf8(b.content().to_vec()).ok())
                            .unwrap_or_default();
                        path = join(&path[..i], &target, &path[i + 1..]).ok_or_else(|| {
                            SkipReason::LinkOutside {
                                target: target.clone(),
                            }
                        })?;
                        continue 'restart;
                    }
                    DIR => {
                        let Ok(sub) = self.inner.find_tree(id) else {
                            return Err(SkipReason::Unreadable {
                                error: format!("tree {id} is missing"),
                            });
                        };
                        if last {
                            return Ok((path, Node::Dir));
                        }
                        tree = sub;
                    }
                    0o100_644 | 0o100_755 if last => return Ok((path, Node::File(id))),
                    _ => {
                        return Err(SkipReason::NotRegular {
                            what: if kind == Some(ObjectType::Commit) {
                                "a submodule"
                            } else {
                                "not a file"
                            },
                        });
                    }
                }
            }
            return Ok((path, Node::Dir));
        }
    }

    /// The manifest files of `commit`'s tree under `under` (`""` for all), inside the
    /// repository, each once at its real path, and what was left out (see the module docs).
    pub fn manifest_files(
        &self,
        commit: Oid,
        under: &str,
    ) -> Result<(Vec<TreeFile>, Vec<Skipped>), GitError> {
        let root = self
            .inner
            .find_commit(commit)
            .and_then(|c| c.tree())
            .map_err(|e| GitError::git(format!("reading the tree of {commit}"), &e))?;
        let mut files = Vec::new();
        let mut skipped = Vec::new();
        let start: Vec<String> = under
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .map(str::to_owned)
            .collect();
        if start.iter().any(|c| c == "..") {
            skipped.push(Skipped {
                rel: under.to_owned(),
                reason: SkipReason::LinkOutside {
                    target: under.to_owned(),
                },
            });
            return Ok((files, skipped));
        }
        let start = if start.is_empty() {
            start
        } else {
            match self.resolve_in(&root, &start) {
                Ok((real, Node::Dir)) => real,
                Ok((real, Node::File(blob))) => {
                    files.push(TreeFile {
                        path: real.join("/"),
                        blob,
                    });
                    return Ok((files, skipped));
                }
                // A path that is not in this commit has no files (like an empty directory).
                Err(SkipReason::Dangling { .. }) => return Ok((files, skipped)),
                Err(reason) => {
                    skipped.push(Skipped {
                        rel: under.to_owned(),
                        reason,
                    });
                    return Ok((files, skipped));
                }
            }
        };
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut entered: BTreeSet<Vec<String>> = BTreeSet::new();
        let mut stack: Vec<(Vec<String>, String)> = vec![(start.clone(), start.join("/"))];
        while let Some((dir, shown)) = stack.pop() {
            if !entered.insert(dir.clone()) {
                continue;
            }
            // `dir` is a real path (no links in it), so the tree has it as is.
            let tree = if dir.is_empty() {
                root.clone()
            } else {
                let entry = root
                    .get_path(std::path::Path::new(&dir.join("/")))
                    .map_err(|e| GitError::git("walking the tree", &e))?;
                self.inner
                    .find_tree(entry.id())
                    .map_err(|e| GitError::git("walking the tree", &e))?
            };
            for entry in &tree {
                let Ok(name) = entry.name() else { continue };
                if name.starts_with('.') {
                    continue;
                }
                let shown_path = if shown.is_empty() {
                    name.to_owned()
                } else {
                    format!("{shown}/{name}")
                };
                let mut here = dir.clone();
                here.push(name.to_owned());
                match entry.filemode() {
                    DIR => stack.push((here, shown_path)),
                    0o100_644 | 0o100_755 if is_manifest_name(name) => {
                        let path = here.join("/");
                        if seen.insert(path.clone()) {
                            files.push(TreeFile {
                                path,
                                blob: entry.id(),
                            });
                        }
                    }
                    LINK => match self.resolve_in(&root, &here) {
                        Ok((real, Node::Dir)) => {
                            if dir.starts_with(&real) {
                                skipped.push(Skipped {
                                    rel: shown_path,
                                    reason: SkipReason::LinkLoop,
                                });
                            } else {
                                stack.push((real, shown_path));
                            }
                        }
                        Ok((real, Node::File(blob))) if is_manifest_name(name) => {
                            let path = real.join("/");
                            if seen.insert(path.clone()) {
                                files.push(TreeFile { path, blob });
                            }
                        }
                        Ok(_) => {}
                        Err(reason) => {
                            if is_manifest_name(name) || !name.contains('.') {
                                skipped.push(Skipped {
                                    rel: shown_path,
                                    reason,
                                });
                            }
                        }
                    },
                    _ => {}
                }
            }
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        skipped.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok((files, skipped))
    }
}
