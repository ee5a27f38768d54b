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
    if let Some(pull) = existing {
        let number = pull.number.to_string();
        let updated: Pull = api
            .call(
                Method::PATCH,
                &["repos", owner, name, "pulls", &number],
                &[],
                Some(&content),
            )
            .await?;
        let missing: Vec<&String> = request
            .labels
            .iter()
            .filter(|l| !pull.labels.iter().any(|have| &have.name == *l))
            .collect();
        add_labels(api, owner, name, &number, &missing).await?;
        Ok(PullRequest {
            number: pull.number,
            url: updated.html_url,
            created: false,
        })
    } else {
        let body = json!({
            "title": request.title,
            "body": request.body,
            "head": request.head,
            "base": request.base,
        });
        let created: Pull = api
            .call(
                Method::POST,
                &["repos", owner, name, "pulls"],
                &[],
                Some(&body),
            )
            .await?;
        let number = created.number.to_string();
        let labels: Vec<&String> = request.labels.iter().collect();
        add_labels(api, owner, name, &number, &labels).await?;
        Ok(PullRequest {
            number: created.number,
            url: created.html_url,
            created: true,
        })
    }
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
