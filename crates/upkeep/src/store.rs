//! The embedded store as the commands use it: where it lives, opening it with a clear error,
//! and the change table `upkeep history` and quickstart print.

use crate::Outcome;
use crate::render::{Table, local};
use jiff::tz::TimeZone;
use std::path::Path;
use std::path::PathBuf;
use upkeep_store::Change;
use upkeep_store::Store;

/// The store at `path`, or at the default place (`$XDG_STATE_HOME/upkeep/state.redb`).
pub(crate) fn open_store(path: Option<&Path>) -> Result<Store, Outcome> {
    let path = path.map_or_else(default_store_path, Path::to_path_buf);
    if let Some(parent) = path.parent()
        && let Err(e) = std::fs::create_dir_all(parent)
    {
        crate::render::error_with_hint(
            &format!("creating {}: {e}", parent.display()),
            Some("choose another place with --store or UPKEEP_STORE".into()),
        );
        return Err(Outcome::Invalid);
    }
    Store::open(&path).map_err(|e| {
        crate::render::error_with_hint(&e.to_string(), e.hint());
        Outcome::Invalid
    })
}

/// The store at `path` (or the default place) when one exists; `Ok(None)` when there is none —
/// for commands that only read what `upkeep run` and `upkeep apply` recorded, and must not
/// create a store as a side effect.
pub(crate) fn open_existing_store(path: Option<&Path>) -> Result<Option<Store>, Outcome> {
    let path = path.map_or_else(default_store_path, Path::to_path_buf);
    if !path.exists() {
        return Ok(None);
    }
    open_store(Some(&path)).map(Some)
}

fn default_store_path() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("upkeep/state.redb")
}

/// The changes as a table, one row each.
pub(crate) fn table(changes: &[Change]) -> String {
    let mut t = Table::new(&[
        "WHEN",
        "FILE",
        "OBJECT",
        "CHANGE",
        "POLICY",
        "COMMIT",
        "PULL REQUEST",
    ]);
    for c in changes {
        let c = &c.change;
        t.row(vec![
            local(c.at, &TimeZone::UTC),
            c.file.clone(),
            c.object.to_string(),
            format!("{} → {}", c.old, c.new),
            c.policy.clone(),
            c.commit
                .as_deref()
                .map_or_else(|| "-".to_owned(), |s| s[..s.len().min(12)].to_owned()),
            c.pull_request.clone().unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    t.render("")
}
