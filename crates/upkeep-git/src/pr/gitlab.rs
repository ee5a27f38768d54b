//! GitLab REST API v4: merge requests of a project addressed by its URL-encoded full path
//! (`group%2Fsub%2Fname`), numbered by `iid`. Labels travel as a comma-separated string:
//! `labels` on create, `add_labels` on update (additive, so existing labels stay).

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::http::Api;
use super::{PrError, PrRequest, PullRequest};

#[derive(Deserialize)]
struct MergeRequest {
    iid: u64,
    web_url: String,
    source_branch: String,
    target_branch: String,
}

pub(super) async fn ensure(
    api: &Api,
    project: &str,
    request: &PrRequest,
) -> Result<PullRequest, PrError> {
    if project.split('/').filter(|s| !s.is_empty()).count() < 2 {
        return Err(PrError::InvalidRequest {
            field: "repository",
            value: project.to_owned(),
            reason: "a GitLab project path is `group[/subgroup…]/name`".to_owned(),
        });
    }
    let open: Vec<MergeRequest> = api
        .call(
            Method::GET,
            &["projects", project, "merge_requests"],
            &[
                ("state", "opened"),
                ("source_branch", &request.head),
                ("target_branch", &request.base),
                ("per_page", "100"),
            ],
            None,
        )
        .await?;
    let existing = open
        .into_iter()
        .find(|m| m.source_branch == request.head && m.target_branch == request.base);
    let labels = request.labels.join(",");
    let mut update = json!({"title": request.title, "description": request.body});
    let mut create = json!({
        "source_branch": request.head,
        "target_branch": request.base,
        "title": request.title,
        "description": request.body,
    });
    if !labels.is_empty() {
        update["add_labels"] = json!(labels);
        create["labels"] = json!(labels);
    }
    api.update_or_open(
        &["projects", project, "merge_requests"],
        existing.map(|mr| (Method::PUT, mr.iid, &update)),
        &create,
        |m: MergeRequest| (m.iid, m.web_url),
    )
    .await
}
