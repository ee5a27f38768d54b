//! `upkeep controller`: the in-cluster shape. Connects with the in-cluster service account or
//! the kubeconfig (`KUBECONFIG`, `~/.kube/config`) and runs the reconcilers until SIGINT or
//! SIGTERM.

use std::sync::Arc;

use jiff::Timestamp;
use miette::{IntoDiagnostic, WrapErr};
use upkeep_controller::reconcile::{Context, run_schedules};

use crate::Outcome;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Reconciles MaintenanceSchedules (activeWindow, activeExclusion, nextWindows, requeued at each boundary). Install the CRDs first: `upkeep crds | kubectl apply -f -`."
)]
pub(crate) struct Args {}

pub(crate) fn run(_args: &Args) -> miette::Result<Outcome> {
    // One crypto provider for every rustls user in the process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .into_diagnostic()?;
    runtime.block_on(async {
        let client = kube::Client::try_default()
            .await
            .into_diagnostic()
            .wrap_err("connecting to the Kubernetes API (in-cluster or KUBECONFIG)")?;
        let ctx = Arc::new(Context {
            client,
            now: Arc::new(Timestamp::now),
        });
        eprintln!("upkeep controller: reconciling MaintenanceSchedules");
        run_schedules(ctx, shutdown_signal()).await;
        eprintln!("upkeep controller: stopped");
        Ok(Outcome::Success)
    })
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = async {
            match term.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}
