//! One process-wide allocator setting, made first thing in `main`, before any thread exists.
//!
//! Why: glibc's malloc gives threads that allocate at the same time arenas of their own (up to
//! eight per core), and memory freed into one arena serves only the threads using that arena.
//! The controller's reconciles run on whichever tokio worker is free, so each worker's arena
//! grows to the largest reconcile it ever ran, and their free memory is never shared: with
//! 20,000 clusters in one campaign the controller peaked at 170 MiB RSS for a heap of about
//! 100 MB. One arena for the process brought the same run to 122 MiB (bench/README.md,
//! "Cluster upgrades"); the threads still keep their own small caches (glibc's tcache), so
//! small allocations do not contend on the arena's lock.
//!
//! An operator's own choice wins: with `MALLOC_ARENA_MAX` or a `glibc.malloc.arena_max`
//! tunable in `GLIBC_TUNABLES` in the environment, glibc's reading of it is left alone (that is
//! also how the benchmark measures the default for comparison). On other C libraries (musl)
//! this does nothing.

/// Whether the environment already sets glibc's arena limit.
fn chosen_by_operator(var: impl Fn(&str) -> Option<String>) -> bool {
    var("MALLOC_ARENA_MAX").is_some()
        || var("GLIBC_TUNABLES").is_some_and(|t| t.contains("glibc.malloc.arena_max"))
}

/// Limits glibc's malloc to one arena unless the environment says otherwise (see the module
/// docs). Call before any thread starts.
pub(crate) fn one_arena() {
    if chosen_by_operator(|name| std::env::var(name).ok()) {
        return;
    }
    set_one_arena();
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_one_arena() {
    // SAFETY: `mallopt` sets one of glibc's allocator parameters from two integers; it reads
    // and writes no memory of ours and is thread-safe (glibc takes its own lock). Arenas made
    // after it obey the new limit; called before any thread exists, only the main arena does.
    #[allow(unsafe_code)]
    let _changed = unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    // 0 is glibc's "not changed": the process works the same, only with more memory.
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_one_arena() {}

#[cfg(test)]
mod tests {
    use super::chosen_by_operator;

    /// Environment variables set, whether the operator chose, why.
    type Case = (&'static [(&'static str, &'static str)], bool, &'static str);

    #[test]
    fn an_operators_arena_setting_wins() {
        let cases: [Case; 5] = [
            (&[], false, "nothing set: upkeep sets one arena"),
            (&[("MALLOC_ARENA_MAX", "4")], true, "the classic variable"),
            (
                &[("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")],
                true,
                "the tunable",
            ),
            (
                &[("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0")],
                false,
                "another tunable leaves the arenas to upkeep",
            ),
            (
                &[("MALLOC_ARENA_MAX", ""), ("GLIBC_TUNABLES", "")],
                true,
                "set, even empty: glibc reads it, so upkeep does not",
            ),
        ];
        for (env, want, why) in cases {
            let var = |name: &str| {
                env.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            };
            assert_eq!(chosen_by_operator(var), want, "{why}");
        }
    }
}
