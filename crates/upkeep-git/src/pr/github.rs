//! GitHub (and GitHub Enterprise) REST API: pull requests live under `/repos/{o}/{r}/pulls`,
//! and labels are an issue property, so they are added through
//! `/repos/{o}/{r}/issues/{n}/labels` after the pull request exists. Adding labels is additive
//! on GitHub, which is exactly "make sure these are on it".

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::http::Api;
use super::{PrError, PrRequest, PullRequest, owner_and_name};

#[derive(Deserialize)]
struct Pull {
    number: u64,
    html_url: String,
    head: Ref,
    base: Ref,
    #[serde(default)]
    labels: Vec<Label>,
}

#[derive(Deserialize)]
struct Ref {
    #[serde(rename = "ref")]
    name: String,
}

#[derive(Deserialize)]
struct Label {
    name: String,
}

pub(super) async fn ensure(
    api: &Api,
    repository: &str,
    request: &PrRequest,
) -> Result<PullRequest, PrError> {
    let (owner, name) = owner_and_name(repository)?;
    let head_filter = format!("{owner}:{}", request.head);
    let open: Vec<Pull> = api
        .call(
            Method::GET,
            &["repos", owner, name, "pulls"],
            &[
                ("state", "open"),
                ("head", &head_filter),
                ("base", &request.base),
                ("per_page", "100"),
            ],
            None,
        )
        .await?;
    let existing = open
        .into_iter()
        .find(|p| p.head.name == request.head && p.base.name == request.base);
    let content = json!({"title": request.title, "body": request.body});
    let create = json!({
        "title": request.title,
        "body": request.body,
        "head": request.head,
        "base": request.base,
    });
    // Labels are added after the write: only the missing ones on an open pull request.
    let labels: Vec<&String> = request
        .labels
        .iter()
        .filter(|l| {
            existing
                .as_ref()
                .is_none_or(|pull| !pull.labels.iter().any(|have| &have.name == *l))
        })
        .collect();
    let pull = api
        .update_or_open(
            &["repos", owner, name, "pulls"],
            existing.map(|pull| (Method::PATCH, pull.number, &content)),
            &create,
            |p: Pull| (p.number, p.html_url),
        )
        .await?;
    add_labels(api, owner, name, &pull.number.to_string(), &labels).await?;
    Ok(pull)
}

async fn add_labels(
    api: &Api,
    owner: &str,
    name: &str,
    number: &str,
    labels: &[&String],
) -> Result<(), PrError> {
    if labels.is_empty() {
        return Ok(());
    }
    let _: Vec<Label> = api
        .call(
            Method::POST,
            &["repos", owner, name, "issues", number, "labels"],
            &[],
            Some(&json!({ "labels": labels })),
        )
        .await?;
    Ok(())
}
