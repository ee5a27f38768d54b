//! Gitea (and Forgejo) REST API v1. Two things differ from GitHub:
//! - The pull-request list cannot be filtered by branch, so open pull requests are paged
//!   through (`page`/`limit`) and matched on `head.ref` and `base.ref`.
//! - Labels are ids, and `PATCH …/pulls/{index}` REPLACES the label set. Names are mapped to
//!   ids through the repository's labels (a missing one is [`PrError::UnknownLabel`]), and an
//!   update sends the union of the labels already on it and the wanted ones.

use std::collections::BTreeSet;

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::http::Api;
use super::{PrError, PrRequest, PullRequest, owner_and_name};

/// Items per page; Gitea's default maximum (`MAX_RESPONSE_ITEMS`) is 50.
const PAGE_SIZE: usize = 50;
/// Stop paging after this many pages: a server that ignores `page` would loop forever.
const MAX_PAGES: usize = 200;

#[derive(Deserialize)]
struct Pull {
    number: u64,
    html_url: String,
    head: Ref,
    base: Ref,
    #[serde(default)]
    labels: Option<Vec<Label>>,
}

#[derive(Deserialize)]
struct Ref {
    #[serde(rename = "ref")]
    name: String,
}

#[derive(Deserialize)]
struct Label {
    id: u64,
    name: String,
}

pub(super) async fn ensure(
    api: &Api,
    repository: &str,
    request: &PrRequest,
) -> Result<PullRequest, PrError> {
    let (owner, name) = owner_and_name(repository)?;
    let wanted = label_ids(api, owner, name, repository, &request.labels).await?;
    let existing = find_open(api, owner, name, request).await?;
    let update = existing.map(|pull| {
        let mut body = json!({"title": request.title, "body": request.body});
        if !wanted.is_empty() {
            let mut ids: BTreeSet<u64> = pull.labels.iter().flatten().map(|l| l.id).collect();
            ids.extend(wanted.iter().copied());
            body["labels"] = json!(ids);
        }
        (pull.number, body)
    });
    let create = json!({
        "head": request.head,
        "base": request.base,
        "title": request.title,
        "body": request.body,
        "labels": wanted,
    });
    api.update_or_open(
        &["repos", owner, name, "pulls"],
        update.as_ref().map(|(n, body)| (Method::PATCH, *n, body)),
        &create,
        |p: Pull| (p.number, p.html_url),
    )
    .await
}

async fn find_open(
    api: &Api,
    owner: &str,
    name: &str,
    request: &PrRequest,
) -> Result<Option<Pull>, PrError> {
    let limit = PAGE_SIZE.to_string();
    for page in 1..=MAX_PAGES {
        let page_text = page.to_string();
        let pulls: Vec<Pull> = api
            .call(
                Method::GET,
                &["repos", owner, name, "pulls"],
                &[("state", "open"), ("page", &page_text), ("limit", &limit)],
                None,
            )
            .await?;
        let count = pulls.len();
        if let Some(found) = pulls
            .into_iter()
            .find(|p| p.head.name == request.head && p.base.name == request.base)
        {
            return Ok(Some(found));
        }
        // A server may cap `limit` below ours, so only an empty page is the end for sure.
        if count == 0 {
            return Ok(None);
        }
    }
    Err(PrError::BadResponse {
        server: api.server().to_owned(),
        method: "GET".to_owned(),
        path: format!("/repos/{owner}/{name}/pulls"),
        message: format!("still returning open pull requests after {MAX_PAGES} pages"),
    })
}

/// The ids of `names`, in order; an unknown name is an error naming it.
async fn label_ids(
    api: &Api,
    owner: &str,
    name: &str,
    repository: &str,
    names: &[String],
) -> Result<Vec<u64>, PrError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let limit = PAGE_SIZE.to_string();
    let mut known: Vec<Label> = Vec::new();
    for page in 1..=MAX_PAGES {
        let page_text = page.to_string();
        let labels: Vec<Label> = api
            .call(
                Method::GET,
                &["repos", owner, name, "labels"],
                &[("page", &page_text), ("limit", &limit)],
                None,
            )
            .await?;
        if labels.is_empty() {
            break;
        }
        known.extend(labels);
        if names.iter().all(|n| known.iter().any(|l| &l.name == n)) {
            break;
        }
    }
    names
        .iter()
        .map(|wanted| {
            known
                .iter()
                .find(|l| &l.name == wanted)
                .map(|l| l.id)
                .ok_or_else(|| PrError::UnknownLabel {
                    server: api.server().to_owned(),
                    repository: repository.to_owned(),
                    label: wanted.clone(),
                })
        })
        .collect()
}
