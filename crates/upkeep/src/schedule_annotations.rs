//! `upkeep upgrade cluster NAME --to V --at T --schedule-annotations`: schedules the upgrade the
//! way `kubectl gs update cluster --release-version V --scheduled-time T` does, by writing the
//! two annotations Giant Swarm's tools read (the web UI shows "Upgrade scheduled" from them;
//! upkeep's controller carries them out as a one-cluster ClusterUpgrade).
//!
//! The values are byte-for-byte what kubectl-gs writes: the release as given, the time as Go's
//! `t.Format(time.RFC822)` of a UTC time (`01 Jan 22 01:00 UTC`, see
//! `upkeep_api::scheduled::format_time`). With `--kubeconfig` (or `--via api`) they are
//! merge-patched onto the Cluster; with `--repo` they are set in the Cluster's manifest (only
//! those lines change) and committed. A repository without a Cluster manifest for the cluster
//! (Giant Swarm's layout: the Cluster exists only in the management cluster) is an error that
//! says where the annotations can go instead.

use std::path::Path;

use jiff::tz::TimeZone;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use miette::miette;
use serde_json::json;
use upkeep_api::scheduled::{TARGET_RELEASE, TARGET_TIME, format_time, upgrade_for, upgrade_name};
use upkeep_api::{ClusterUpgrade, namespaced_name};

use crate::Outcome;
use crate::cluster_upgrade::{PushTo, commit_file, locate};
use crate::out::{out, outln};
use crate::repo_clusters::{Definition, LookupError, RepoCluster};

/// What `--schedule-annotations` needs from the command line.
pub(crate) struct Request<'a> {
    pub(crate) name: &'a str,
    pub(crate) namespace: Option<&'a str>,
    /// `--to`, as given (kubectl-gs writes `--release-version` verbatim).
    pub(crate) to: &'a str,
    /// `--at`.
    pub(crate) at: Option<&'a str>,
    /// Write into this repository; `None`: patch the Cluster through `kubeconfig`.
    pub(crate) repo: Option<&'a Path>,
    pub(crate) kubeconfig: Option<&'a Path>,
    pub(crate) push: bool,
    pub(crate) dry_run: bool,
}

/// The annotation values for `to` at `at`, or the error already printed.
pub(crate) fn values(to: &str, at: Option<&str>) -> Result<(String, String), Outcome> {
    let Some(at) = at else {
        crate::render::error_with_hint(
            "--schedule-annotations needs --at TIME: when the upgrade starts",
            Some("e.g. --at '2026-12-24 08:00' (UTC, as kubectl gs --scheduled-time)".into()),
        );
        return Err(Outcome::Invalid);
    };
    let t = crate::timearg::parse(at, &TimeZone::UTC).map_err(|e| {
        crate::render::error_with_hint(&format!("--at: {e}"), None);
        Outcome::Invalid
    })?;
    let time = format_time(t).map_err(|e| {
        crate::render::error_with_hint(
            &format!("--at: {e}"),
            Some(
                "the annotation holds a whole minute in 1969–2068, e.g. --at '2026-12-24 08:00'"
                    .into(),
            ),
        );
        Outcome::Invalid
    })?;
    Ok((to.trim().to_owned(), time))
}

/// Writes the annotations (see the module docs).
pub(crate) fn run(r: &Request<'_>) -> miette::Result<Outcome> {
    let (release, time) = match values(r.to, r.at) {
        Ok(v) => v,
        Err(o) => return Ok(o),
    };
    let done = match (r.repo, r.kubeconfig) {
        (Some(repo), _) => in_repository(r, repo, &release, &time)?,
        (None, Some(kubeconfig)) => on_cluster(r, kubeconfig, &release, &time)?,
        (None, None) => {
            crate::render::error_with_hint(
                "--schedule-annotations writes to a repository or a management cluster",
                Some("pass --repo DIR or --kubeconfig FILE".into()),
            );
            Outcome::Invalid
        }
    };
    if done == Outcome::Success && !r.dry_run {
        outln!(
            "scheduled: cluster {} → {release} at {time} ({TARGET_RELEASE}, {TARGET_TIME})",
            r.name
        );
    }
    Ok(done)
}

fn in_repository(
    r: &Request<'_>,
    repo: &Path,
    release: &str,
    time: &str,
) -> miette::Result<Outcome> {
    let clusters = match crate::fleet::ClusterFleet::load_clusters(repo)? {
        Ok(c) => c,
        Err(o) => return Ok(o),
    };
    let searched = format!("the repository {}", repo.display());
    match crate::repo_clusters::find(&clusters, r.name, r.namespace, &searched) {
        Ok(c) if c.definition == Definition::Manifest => {}
        Ok(_) | Err(LookupError::NotFound { .. }) => {
            crate::render::error_with_hint(
                &format!(
                    "{}: no Cluster manifest named {}: the scheduled-upgrade annotations belong on the Cluster object",
                    repo.display(),
                    r.name
                ),
                Some(
                    "in Giant Swarm's layout the Cluster exists only in the management cluster (the cluster App creates it): \
                     write the annotations there with --kubeconfig FILE (as kubectl gs update cluster --scheduled-time does), \
                     or drop --schedule-annotations to upgrade through the repository"
                        .into(),
                ),
            );
            return Ok(Outcome::Invalid);
        }
        Err(e) => {
            crate::render::error_with_hint(&e.message(), Some(e.hint()));
            return Ok(Outcome::Invalid);
        }
    }
    let Some((c, text)) = locate(
        repo,
        &clusters,
        r.name,
        r.namespace,
        RepoCluster::annotations_file,
    ) else {
        return Ok(Outcome::Invalid);
    };
    let rel = c.annotations_file().to_owned();
    // A new annotation goes first in the map: the time first, so the release reads first (the
    // order of kubectl-gs' patch).
    let changes = [(TARGET_TIME, Some(time)), (TARGET_RELEASE, Some(release))];
    let new = match c.set_annotations(&text, &changes) {
        Ok(n) => n,
        Err(e) => {
            crate::render::error_with_hint(&format!("{}: {e}", repo.display()), e.hint());
            return Ok(Outcome::Invalid);
        }
    };
    if new == text {
        eprintln!(
            "{rel}: cluster {} is already scheduled so; nothing to commit",
            c.display()
        );
        return Ok(Outcome::Success);
    }
    if r.dry_run {
        out!("{}", crate::app_fields::unified_diff(&rel, &text, &new));
        eprintln!("dry run: nothing written");
        return Ok(Outcome::Success);
    }
    let message = format!(
        "Schedule upgrade of cluster {} to {release} at {time}\n\nupkeep upgrade cluster --schedule-annotations: {TARGET_RELEASE}: {release}, {TARGET_TIME}: {time}\n",
        c.name()
    );
    let push = r.push.then_some(PushTo {
        branch: None,
        allow_insecure_http: false,
    });
    match commit_file(repo, &rel, &text, &new, &message, push)? {
        Ok(Some(commit)) => eprintln!("committed {} ({rel})", &commit[..12.min(commit.len())]),
        Ok(None) => eprintln!("written {rel}"),
        Err(o) => return Ok(o),
    }
    Ok(Outcome::Success)
}

fn on_cluster(
    r: &Request<'_>,
    kubeconfig: &Path,
    release: &str,
    time: &str,
) -> miette::Result<Outcome> {
    crate::management::runtime()?.block_on(async {
        let client = crate::management::client(kubeconfig).await?;
        let ar = crate::management::cluster_resource(&client).await?;
        // Found by name in every namespace without --namespace, as the other cluster commands.
        let cluster =
            match crate::management::find_cluster(&client, &ar, kubeconfig, r.name, r.namespace)
                .await?
            {
                Ok(c) => c,
                Err(o) => return Ok(o),
            };
        let ns = cluster.metadata.namespace.clone().unwrap_or_default();
        let api: Api<DynamicObject> = Api::namespaced_with(client, &ns, &ar);
        let patch =
            json!({"metadata": {"annotations": {TARGET_RELEASE: release, TARGET_TIME: time}}});
        let mut params = PatchParams {
            field_manager: Some(upkeep_controller::framework::CLI_FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        if r.dry_run {
            params = params.dry_run();
        }
        match api.patch(r.name, &params, &Patch::Merge(&patch)).await {
            Ok(_) => {
                if r.dry_run {
                    eprintln!("dry run: the API server accepted the patch; nothing written");
                }
                Ok(Outcome::Success)
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {
                crate::render::error_with_hint(
                    &format!(
                        "no Cluster {ns}/{} on the management cluster ({})",
                        r.name,
                        kubeconfig.display()
                    ),
                    Some("check the name and pass --namespace (e.g. org-<organization>)".into()),
                );
                Ok(Outcome::Invalid)
            }
            Err(e) => Err(miette!("patching Cluster {ns}/{}: {e}", r.name)),
        }
    })
}

/// `fleet` with the one-cluster upgrades the Clusters' kubectl-gs scheduled-upgrade annotations
/// ask for (what the controller makes; `upkeep status` and `plan` show them, `run` leaves them
/// to the controller). Here, not in [`crate::fleet`], so the fleet does not depend on a
/// command's module.
pub(crate) fn with_scheduled(mut fleet: crate::fleet::ClusterFleet) -> crate::fleet::ClusterFleet {
    let scheduled = upgrades(&fleet);
    fleet.upgrades.extend(scheduled);
    fleet
}

/// The ClusterUpgrades a repository's Cluster manifests ask for with scheduled-upgrade
/// annotations (what the controller would create; one already in the repository under that
/// name wins). Invalid annotations are warned about on stderr, naming the file and the fix.
pub(crate) fn upgrades(fleet: &crate::fleet::ClusterFleet) -> Vec<ClusterUpgrade> {
    let mut out = Vec::new();
    for rc in &fleet.clusters {
        let (c, file) = (&rc.object, rc.place());
        let ns = rc.namespace().to_owned();
        match c.scheduled() {
            None => {}
            Some(Err(e)) => {
                eprintln!(
                    "warning: {file}: Cluster {ns}/{}: {e}\n  hint: {}",
                    c.name,
                    e.hint()
                );
            }
            Some(Ok(s)) => {
                let name = upgrade_name(&c.name);
                let taken = fleet
                    .upgrades
                    .iter()
                    .any(|u| namespaced_name(&u.metadata) == (ns.clone(), name.clone()));
                if !taken {
                    out.push(upgrade_for(c, &s));
                }
            }
        }
    }
    out
}
