//! A STAND-IN for the pull-request APIs of GitHub, GitLab and Gitea — not a real forge.
//!
//! There is no GitHub, GitLab or Gitea server on the test machines, so unlike the other
//! components of this crate this one is written here. It implements ONLY the endpoints upkeep
//! calls, with the public API shapes (paths, JSON field names, statuses, auth headers) of each
//! forge, and keeps pull requests in memory per repository:
//!
//! | flavour | base | endpoints |
//! |---|---|---|
//! | GitHub | `/` | `GET`/`POST /repos/{o}/{r}/pulls`, `PATCH /repos/{o}/{r}/pulls/{n}`, `POST /repos/{o}/{r}/issues/{n}/labels` |
//! | GitLab | `/api/v4` | `GET`/`POST /projects/{url-encoded path}/merge_requests`, `PUT …/merge_requests/{iid}` |
//! | Gitea | `/api/v1` | `GET`/`POST /repos/{o}/{r}/pulls`, `PATCH /repos/{o}/{r}/pulls/{n}`, `GET /repos/{o}/{r}/labels` |
//!
//! Where a forge is strict, the stand-in is strict too, so client bugs show: a second open pull
//! request for the same head and base is refused (GitHub 422, GitLab 409, Gitea 409); GitHub's
//! `head` filter must be `owner:branch`; a GitLab project path must be ONE URL-encoded segment;
//! Gitea pages its lists (`page`, `limit`, at most 50) and takes labels as existing ids, and its
//! `PATCH` replaces the label set. Bodies must be `application/json`. Everything else a forge
//! does (reviews, checks, webhooks, permissions beyond one token, ETags, …) is absent.
//!
//! Tests steer it through methods: create repositories and (Gitea) labels, seed pull requests,
//! close or merge one, inject one failure for the next request, and read back the pull
//! requests and a request log. It runs like the other helper servers (own thread and Tokio
//! runtime, 127.0.0.1, stopped on drop).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, Response};
use serde_json::{Value, json};

use crate::TestEnvError;
use crate::background::{Background, BoxFuture, bind_free, respond};
use crate::proxy::RequestRecord;
use crate::token::parse_query;

/// Which forge's API the stand-in speaks. (Its own enum: testenv does not depend on upkeep.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ForgeFlavor {
    Github,
    Gitlab,
    Gitea,
}

/// A failure the stand-in answers the NEXT request with (before checking anything else).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InjectedFailure {
    /// `500` with a JSON message.
    ServerError,
    /// `429` with `Retry-After: 7` (GitHub also gets `x-ratelimit-remaining: 0`).
    TooManyRequests,
    /// `403` with `x-ratelimit-remaining: 0`: GitHub's primary rate limit.
    RateLimitExhausted,
    /// `400` whose body quotes the credentials headers it received, like a misbehaving proxy;
    /// lets a test check that a client never repeats a token a server echoes.
    EchoCredentials,
}

/// State of a pull request in the stand-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandInPrState {
    Open,
    Closed,
    Merged,
}

/// A pull request (merge request on GitLab) as the stand-in stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandInPr {
    /// GitHub/Gitea number, GitLab `iid`.
    pub number: u64,
    pub head: String,
    pub base: String,
    pub title: String,
    pub body: String,
    /// Label names, in the order they were added.
    pub labels: Vec<String>,
    pub state: StandInPrState,
}

#[derive(Default)]
struct Repository {
    pulls: Vec<StandInPr>,
    /// `(id, name)`; ids are unique across the server, as on Gitea.
    labels: Vec<(u64, String)>,
    next_number: u64,
}

struct State {
    flavor: ForgeFlavor,
    token: String,
    origin: String,
    repositories: BTreeMap<String, Repository>,
    next_label_id: u64,
    failure: Option<InjectedFailure>,
    log: Vec<RequestRecord>,
}

/// A running pull-request stand-in (not a real forge; see the module docs for what it
/// implements). Dropping it stops the server.
pub struct PrStandIn {
    server: Background,
    flavor: ForgeFlavor,
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for PrStandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrStandIn")
            .field("flavor", &self.flavor)
            .field("addr", &self.server.addr())
            .finish_non_exhaustive()
    }
}

impl PrStandIn {
    /// Starts a stand-in of `flavor` that accepts exactly `token`. It has no repositories yet.
    pub fn start(flavor: ForgeFlavor, token: &str) -> Result<Self, TestEnvError> {
        if token.is_empty() {
            return Err(TestEnvError::invalid("stand-in token", token));
        }
        let listener = bind_free()?;
        let addr = listener
            .local_addr()
            .map_err(|e| TestEnvError::io("reading a listener address", e))?;
        let state = Arc::new(Mutex::new(State {
            flavor,
            token: token.to_owned(),
            origin: format!("http://{addr}"),
            repositories: BTreeMap::new(),
            next_label_id: 1,
            failure: None,
            log: Vec::new(),
        }));
        let shared = state.clone();
        let handler = Arc::new(move |req: Request<hyper::body::Incoming>| -> BoxFuture {
            let state = shared.clone();
            Box::pin(async move {
                let (parts, body) = req.into_parts();
                let body = body
                    .collect()
                    .await
                    .map(http_body_util::Collected::to_bytes)
                    .unwrap_or_default();
                let mut state = lock(&state);
                let response = state.answer(&parts, &body);
                let path = parts
                    .uri
                    .path_and_query()
                    .map_or_else(|| parts.uri.path().to_owned(), ToString::to_string);
                state.log.push(RequestRecord {
                    method: parts.method.to_string(),
                    path,
                    status: response.status().as_u16(),
                });
                response
            })
        });
        let server = Background::spawn("pr-standin", listener, handler)?;
        Ok(Self {
            server,
            flavor,
            state,
        })
    }

    /// The flavour it speaks.
    pub fn flavor(&self) -> ForgeFlavor {
        self.flavor
    }

    /// The API base URL a client is configured with: `http://127.0.0.1:P` (GitHub),
    /// `…/api/v4` (GitLab), `…/api/v1` (Gitea).
    pub fn api_base(&self) -> String {
        let origin = format!("http://{}", self.server.addr());
        match self.flavor {
            ForgeFlavor::Github => origin,
            ForgeFlavor::Gitlab => format!("{origin}/api/v4"),
            ForgeFlavor::Gitea => format!("{origin}/api/v1"),
        }
    }

    /// Creates an empty repository (`owner/name`; on GitLab any `group/…/name`). Requests for
    /// repositories that were not created answer 404.
    pub fn create_repository(&self, path: &str) {
        lock(&self.state)
            .repositories
            .entry(path.to_owned())
            .or_insert_with(|| Repository {
                next_number: 1,
                ..Repository::default()
            });
    }

    /// Creates a label in a repository (what a Gitea client must find by name) and returns its
    /// id. `None` when the repository does not exist.
    pub fn add_label(&self, repository: &str, name: &str) -> Option<u64> {
        let mut state = lock(&self.state);
        let id = state.next_label_id;
        let repo = state.repositories.get_mut(repository)?;
        if let Some((id, _)) = repo.labels.iter().find(|(_, n)| n == name) {
            return Some(*id);
        }
        repo.labels.push((id, name.to_owned()));
        state.next_label_id += 1;
        Some(id)
    }

    /// Adds an open pull request directly (as if someone else had opened it) and returns its
    /// number. `None` when the repository does not exist.
    pub fn seed_pull_request(
        &self,
        repository: &str,
        head: &str,
        base: &str,
        title: &str,
    ) -> Option<u64> {
        let mut state = lock(&self.state);
        let repo = state.repositories.get_mut(repository)?;
        Some(repo.insert(head, base, title, "", Vec::new()))
    }

    /// Answers the next request (whatever it is) with `failure`.
    pub fn fail_next(&self, failure: InjectedFailure) {
        lock(&self.state).failure = Some(failure);
    }

    /// The pull requests of a repository, in creation order (empty for an unknown one).
    pub fn pull_requests(&self, repository: &str) -> Vec<StandInPr> {
        lock(&self.state)
            .repositories
            .get(repository)
            .map(|r| r.pulls.clone())
            .unwrap_or_default()
    }

    /// Every request so far: method, path with query as sent (still percent-encoded), status.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.state).log.clone()
    }

    /// Closes a pull request without merging. `false` when there is no such pull request.
    pub fn close(&self, repository: &str, number: u64) -> bool {
        self.set_state(repository, number, StandInPrState::Closed)
    }

    /// Marks a pull request merged. `false` when there is no such pull request.
    pub fn merge(&self, repository: &str, number: u64) -> bool {
        self.set_state(repository, number, StandInPrState::Merged)
    }

    fn set_state(&self, repository: &str, number: u64, to: StandInPrState) -> bool {
        let mut state = lock(&self.state);
        match state
            .repositories
            .get_mut(repository)
            .and_then(|r| r.pulls.iter_mut().find(|p| p.number == number))
        {
            Some(pull) => {
                pull.state = to;
                true
            }
            None => false,
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panicking test thread must not take the server down with it.
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Repository {
    fn insert(
        &mut self,
        head: &str,
        base: &str,
        title: &str,
        body: &str,
        labels: Vec<String>,
    ) -> u64 {
        let number = self.next_number.max(1);
        self.next_number = number + 1;
        self.pulls.push(StandInPr {
            number,
            head: head.to_owned(),
            base: base.to_owned(),
            title: title.to_owned(),
            body: body.to_owned(),
            labels,
            state: StandInPrState::Open,
        });
        number
    }

    fn open_for(&self, head: &str, base: &str) -> Option<u64> {
        self.pulls
            .iter()
            .find(|p| p.state == StandInPrState::Open && p.head == head && p.base == base)
            .map(|p| p.number)
    }
}

type Answer = Response<Full<Bytes>>;

fn json_answer(status: u16, value: &Value) -> Answer {
    respond(status, "application/json", value.to_string())
}

fn message(status: u16, text: &str) -> Answer {
    json_answer(status, &json!({ "message": text }))
}

fn with_header(mut response: Answer, name: &'static str, value: &str) -> Answer {
    if let Ok(value) = http::HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
    response
}

/// Percent-decodes one path segment (no `+` rule: that is for queries).
fn decode_segment(segment: &str) -> String {
    parse_query(&format!("x={}", segment.replace('+', "%2B")))
        .pop()
        .map(|(_, v)| v)
        .unwrap_or_default()
}

/// A JSON request body, if it is one (the refusal is boxed: a response is large).
fn json_body(parts: &http::request::Parts, body: &[u8]) -> Result<Value, Box<Answer>> {
    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/json") {
        return Err(Box::new(message(
            415,
            "the stand-in only takes application/json bodies",
        )));
    }
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| Box::new(message(400, "Problems parsing JSON")))
}

fn string_field<'a>(body: &'a Value, field: &str) -> Option<&'a str> {
    body.get(field).and_then(Value::as_str)
}

impl State {
    fn answer(&mut self, parts: &http::request::Parts, body: &[u8]) -> Answer {
        if let Some(failure) = self.failure.take() {
            return self.injected(&failure, parts);
        }
        if !self.authorized(parts) {
            return match self.flavor {
                ForgeFlavor::Github => json_answer(
                    401,
                    &json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"}),
                ),
                ForgeFlavor::Gitlab => message(401, "401 Unauthorized"),
                ForgeFlavor::Gitea => message(401, "user does not exist or token is invalid"),
            };
        }
        let raw_path = parts.uri.path();
        let prefix = match self.flavor {
            ForgeFlavor::Github => "",
            ForgeFlavor::Gitlab => "/api/v4",
            ForgeFlavor::Gitea => "/api/v1",
        };
        let Some(rest) = raw_path.strip_prefix(prefix) else {
            return message(404, "Not Found");
        };
        let segments: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
        let query = parse_query(parts.uri.query().unwrap_or(""));
        let method = parts.method.as_str();
        match self.flavor {
            ForgeFlavor::Github => self.github(method, &segments, &query, parts, body),
            ForgeFlavor::Gitlab => self.gitlab(method, &segments, &query, parts, body),
            ForgeFlavor::Gitea => self.gitea(method, &segments, &query, parts, body),
        }
    }

    fn injected(&self, failure: &InjectedFailure, parts: &http::request::Parts) -> Answer {
        match failure {
            InjectedFailure::ServerError => {
                message(500, "Internal Server Error (injected by the stand-in)")
            }
            InjectedFailure::TooManyRequests => {
                let r = with_header(message(429, "Too Many Requests"), "retry-after", "7");
                if self.flavor == ForgeFlavor::Github {
                    with_header(r, "x-ratelimit-remaining", "0")
                } else {
                    r
                }
            }
            InjectedFailure::RateLimitExhausted => with_header(
                message(403, "API rate limit exceeded for user ID 1."),
                "x-ratelimit-remaining",
                "0",
            ),
            InjectedFailure::EchoCredentials => {
                let echoed: Vec<String> = ["authorization", "private-token"]
                    .iter()
                    .filter_map(|name| {
                        parts
                            .headers
                            .get(*name)
                            .and_then(|v| v.to_str().ok())
                            .map(|v| format!("{name}: {v}"))
                    })
                    .collect();
                message(400, &format!("bad request; you sent {}", echoed.join("; ")))
            }
        }
    }

    fn authorized(&self, parts: &http::request::Parts) -> bool {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
        };
        let authorization = header("authorization");
        let bearer = authorization.strip_prefix("Bearer ");
        let token = authorization.strip_prefix("token ");
        let t = Some(self.token.as_str());
        match self.flavor {
            ForgeFlavor::Github | ForgeFlavor::Gitea => bearer == t || token == t,
            ForgeFlavor::Gitlab => header("private-token") == self.token || bearer == t,
        }
    }

    fn repository(&mut self, path: &str) -> Option<&mut Repository> {
        self.repositories.get_mut(path)
    }

    // ---- GitHub ------------------------------------------------------------------------

    fn github(
        &mut self,
        method: &str,
        segments: &[&str],
        query: &[(String, String)],
        parts: &http::request::Parts,
        body: &[u8],
    ) -> Answer {
        if parts.headers.get(http::header::USER_AGENT).is_none() {
            return message(
                403,
                "Request forbidden by administrative rules. Please make sure your request has a User-Agent header",
            );
        }
        let origin = self.origin.clone();
        let (owner, name, tail) = match segments {
            ["repos", owner, name, tail @ ..] => {
                (decode_segment(owner), decode_segment(name), tail)
            }
            _ => return message(404, "Not Found"),
        };
        let full = format!("{owner}/{name}");
        let Some(repo) = self.repository(&full) else {
            return message(404, "Not Found");
        };
        let render = |p: &StandInPr| {
            json!({
                "number": p.number,
                "html_url": format!("{origin}/{full}/pull/{}", p.number),
                "state": if p.state == StandInPrState::Open { "open" } else { "closed" },
                "merged": p.state == StandInPrState::Merged,
                "title": p.title,
                "body": p.body,
                "head": {"ref": p.head, "label": format!("{owner}:{}", p.head)},
                "base": {"ref": p.base, "label": format!("{owner}:{}", p.base)},
                "labels": p.labels.iter().map(|l| json!({"name": l})).collect::<Vec<_>>(),
            })
        };
        match (method, tail) {
            ("GET", ["pulls"]) => {
                let get = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.as_str());
                let state = get("state").unwrap_or("open");
                // GitHub's `head` filter is `owner:branch`; anything else matches nothing here.
                let head = get("head").map(|h| {
                    h.split_once(':')
                        .filter(|(o, _)| *o == owner)
                        .map(|(_, b)| b.to_owned())
                });
                let base = get("base");
                let list: Vec<Value> = repo
                    .pulls
                    .iter()
                    .rev()
                    .filter(|p| match state {
                        "all" => true,
                        "closed" => p.state != StandInPrState::Open,
                        _ => p.state == StandInPrState::Open,
                    })
                    .filter(|p| head.as_ref().is_none_or(|h| h.as_deref() == Some(&p.head)))
                    .filter(|p| base.is_none_or(|b| b == p.base))
                    .map(render)
                    .collect();
                json_answer(200, &Value::Array(list))
            }
            ("POST", ["pulls"]) => {
                let input = match json_body(parts, body) {
                    Ok(v) => v,
                    Err(answer) => return *answer,
                };
                let (Some(title), Some(head), Some(base)) = (
                    string_field(&input, "title"),
                    string_field(&input, "head"),
                    string_field(&input, "base"),
                ) else {
                    return message(422, "Validation Failed: title, head and base are required");
                };
                let head = head.split_once(':').map_or(head, |(_, b)| b);
                if repo.open_for(head, base).is_some() {
                    return json_answer(
                        422,
                        &json!({"message": "Validation Failed", "errors": [{"resource": "PullRequest", "code": "custom", "message": format!("A pull request already exists for {owner}:{head}.")}]}),
                    );
                }
                let body_text = string_field(&input, "body").unwrap_or("");
                let number = repo.insert(head, base, title, body_text, Vec::new());
                let created = repo.pulls.iter().find(|p| p.number == number).map(render);
                json_answer(201, &created.unwrap_or(Value::Null))
            }
            ("PATCH", ["pulls", number]) => {
                let input = match json_body(parts, body) {
                    Ok(v) => v,
                    Err(answer) => return *answer,
                };
                let Some(pull) = find_pull(repo, number) else {
                    return message(404, "Not Found");
                };
                if let Some(title) = string_field(&input, "title") {
                    title.clone_into(&mut pull.title);
                }
                if let Some(text) = string_field(&input, "body") {
                    text.clone_into(&mut pull.body);
                }
                json_answer(200, &render(pull))
            }
            ("POST", ["issues", number, "labels"]) => {
                let input = match json_body(parts, body) {
                    Ok(v) => v,
                    Err(answer) => return *answer,
                };
                let Some(names) = input.get("labels").and_then(Value::as_array) else {
                    return message(422, "Validation Failed: labels must be an array");
                };
                let Some(pull) = find_pull(repo, number) else {
                    return message(404, "Not Found");
                };
                for name in names.iter().filter_map(Value::as_str) {
                    if !pull.labels.iter().any(|l| l == name) {
                        pull.labels.push(name.to_owned());
                    }
                }
                let labels: Vec<Value> = pull.labels.iter().map(|l| json!({"name": l})).collect();
                json_answer(200, &Value::Array(labels))
            }
            _ => message(404, "Not Found"),
        }
    }

    // ---- GitLab ------------------------------------------------------------------------

    fn gitlab(
        &mut self,
        method: &str,
        segments: &[&str],
        query: &[(String, String)],
        parts: &http::request::Parts,
        body: &[u8],
    ) -> Answer {
        let origin = self.origin.clone();
        // The project path must be ONE segment (`group%2Fsub%2Fname`); an unencoded path
        // splits into several and matches no route, as on GitLab.
        let (project, tail) = match segments {
            ["projects", id, tail @ ..] => (decode_segment(id), tail),
            _ => return message(404, "404 Not Found"),
        };
        let Some(repo) = self.repository(&project) else {
            return message(404, "404 Project Not Found");
        };
        let render = |p: &StandInPr| {
            json!({
                "id": p.number + 1000,
                "iid": p.number,
                "web_url": format!("{origin}/{project}/-/merge_requests/{}", p.number),
                "title": p.title,
                "description": p.body,
                "state": match p.state {
                    StandInPrState::Open => "opened",
                    StandInPrState::Closed => "closed",
                    StandInPrState::Merged => "merged",
                },
                "source_branch": p.head,
                "target_branch": p.base,
                "labels": p.labels,
            })
        };
        let split_labels = |text: &str| -> Vec<String> {
            text.split(',')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect()
        };
        match (method, tail) {
            ("GET", ["merge_requests"]) => {
                let get = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.as_str());
                let state = get("state").unwrap_or("all");
                let list: Vec<Value> = repo
                    .pulls
                    .iter()
                    .rev()
                    .filter(|p| match state {
                        "opened" => p.state == StandInPrState::Open,
                        "closed" => p.state == StandInPrState::Closed,
                        "merged" => p.state == StandInPrState::Merged,
                        _ => true,
                    })
                    .filter(|p| get("source_branch").is_none_or(|b| b == p.head))
                    .filter(|p| get("target_branch").is_none_or(|b| b == p.base))
                    .map(render)
                    .collect();
                json_answer(200, &Value::Array(list))
            }
            ("POST", ["merge_requests"]) => {
                let input = match json_body(parts, body) {
                    Ok(v) => v,
                    Err(answer) => return *answer,
                };
                let (Some(title), Some(head), Some(base)) = (
                    string_field(&input, "title"),
                    string_field(&input, "source_branch"),
                    string_field(&input, "target_branch"),
                ) else {
                    return json_answer(
                        400,
                        &json!({"error": "title, source_branch, target_branch are missing"}),
                    );
                };
                if let Some(existing) = repo.open_for(head, base) {
                    return json_answer(
                        409,
                        &json!({"message": [format!("Another open merge request already exists for this source branch: !{existing}")]}),
                    );
                }
                let labels = string_field(&input, "labels")
                    .map(split_labels)
                    .unwrap_or_default();
                let description = string_field(&input, "description").unwrap_or("");
                let number = repo.insert(head, base, title, description, labels);
                let created = repo.pulls.iter().find(|p| p.number == number).map(render);
                json_answer(201, &created.unwrap_or(Value::Null))
            }
            ("PUT", ["merge_requests", iid]) => {
                let input = match json_body(parts, body) {
                    Ok(v) => v,
                    Err(answer) => return *answer,
                };
                let Some(pull) = find_pull(repo, iid) else {
                    return message(404, "404 Not found");
                };
                if let Some(title) = string_field(&input, "title") {
                    title.clone_into(&mut pull.title);
                }
                if let Some(text) = string_field(&input, "description") {
                    text.clone_into(&mut pull.body);
                }
                if let Some(labels) = string_field(&input, "labels") {
                    pull.labels = split_labels(labels);
                }
                for label in string_field(&input, "add_labels")
                    .map(split_labels)
                    .unwrap_or_default()
                {
                    if !pull.labels.contains(&label) {
                        pull.labels.push(label);
                    }
                }
                json_answer(200, &render(pull))
            }
            _ => message(404, "404 Not Found"),
        }
    }

    // ---- Gitea -------------------------------------------------------------------------

    fn gitea(
        &mut self,
        method: &str,
        segments: &[&str],
        query: &[(String, String)],
        parts: &http::request::Parts,
        body: &[u8],
    ) -> Answer {
        const DEFAULT_LIMIT: usize = 30;
        const MAX_LIMIT: usize = 50;
        let origin = self.origin.clone();
        let (owner, name, tail) = match segments {
            ["repos", owner, name, tail @ ..] => {
                (decode_segment(owner), decode_segment(name), tail)
            }
            _ => return message(404, "404 page not found"),
        };
        let full = format!("{owner}/{name}");
        let Some(repo) = self.repositories.get_mut(&full) else {
            return message(404, "The target couldn't be found.");
        };
        let get = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.as_str());
        let page = get("page")
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        let limit = get("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|l| *l > 0)
            .unwrap_or(DEFAULT_LIMIT)
            .min(MAX_LIMIT);
        let label_json = |labels: &[(u64, String)], names: &[String]| -> Vec<Value> {
            names
                .iter()
                .filter_map(|n| labels.iter().find(|(_, l)| l == n))
                .map(|(id, n)| json!({"id": id, "name": n, "color": "00aabb"}))
                .collect()
        };
        let render = |labels: &[(u64, String)], p: &StandInPr| {
            json!({
                "id": p.number + 1000,
                "number": p.number,
                "html_url": format!("{origin}/{full}/pulls/{}", p.number),
                "state": if p.state == StandInPrState::Open { "open" } else { "closed" },
                "merged": p.state == StandInPrState::Merged,
                "title": p.title,
                "body": p.body,
                "head": {"ref": p.head, "label": p.head},
                "base": {"ref": p.base, "label": p.base},
                "labels": label_json(labels, &p.labels),
            })
        };
        let names_of =
            |labels: &[(u64, String)], ids: &[Value]| -> Result<Vec<String>, Box<Answer>> {
                ids.iter()
                    .map(|id| {
                        id.as_u64()
                            .and_then(|id| labels.iter().find(|(l, _)| *l == id))
                            .map(|(_, n)| n.clone())
                            .ok_or_else(|| {
                                Box::new(message(422, &format!("label {id} does not exist")))
                            })
                    })
                    .collect()
            };
        match (method, tail) {
            ("GET", ["labels"]) => {
                let list: Vec<Value> = repo
                    .labels
                    .iter()
                    .skip((page - 1) * limit)
                    .take(limit)
                    .map(|(id, n)| json!({"id": id, "name": n, "color": "00aabb", "description": ""}))
                    .collect();
                json_answer(200, &Value::Array(list))
            }
            ("GET", ["pulls"]) => {
                let state = get("state").unwrap_or("open");
                let list: Vec<Value> = repo
                    .pulls
                    .iter()
                    .rev()
                    .filter(|p| match state {
                        "all" => true,
                        "closed" => p.state != StandInPrState::Open,
                        _ => p.state == StandInPrState::Open,
                    })
                    .skip((page - 1) * limit)
                    .take(limit)
                    .map(|p| render(&repo.labels, p))
                    .collect();
                json_answer(200, &Value::Array(list))
            }
            ("POST", ["pulls"]) => {
                let input = match json_body(parts, body) {
                    Ok(v) => v,
                    Err(answer) => return *answer,
                };
                let (Some(title), Some(head), Some(base)) = (
                    string_field(&input, "title"),
                    string_field(&input, "head"),
                    string_field(&input, "base"),
                ) else {
                    return message(422, "title, head and base are required");
                };
                if repo.open_for(head, base).is_some() {
                    return message(409, "pull request already exists for these targets");
                }
                let ids = input
                    .get("labels")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let labels = match names_of(&repo.labels, &ids) {
                    Ok(names) => names,
                    Err(answer) => return *answer,
                };
                let text = string_field(&input, "body").unwrap_or("");
                let number = repo.insert(head, base, title, text, labels);
                let created = repo
                    .pulls
                    .iter()
                    .find(|p| p.number == number)
                    .map(|p| render(&repo.labels, p));
                json_answer(201, &created.unwrap_or(Value::Null))
            }
            ("PATCH", ["pulls", number]) => {
                let input = match json_body(parts, body) {
                    Ok(v) => v,
                    Err(answer) => return *answer,
                };
                let labels = match input.get("labels").and_then(Value::as_array) {
                    Some(ids) => match names_of(&repo.labels, ids) {
                        Ok(names) => Some(names),
                        Err(answer) => return *answer,
                    },
                    None => None,
                };
                let repo_labels = repo.labels.clone();
                let Some(pull) = find_pull(repo, number) else {
                    return message(404, "The target couldn't be found.");
                };
                if let Some(title) = string_field(&input, "title") {
                    title.clone_into(&mut pull.title);
                }
                if let Some(text) = string_field(&input, "body") {
                    text.clone_into(&mut pull.body);
                }
                // Gitea REPLACES the label set on edit.
                if let Some(labels) = labels {
                    pull.labels = labels;
                }
                json_answer(201, &render(&repo_labels, pull))
            }
            _ => message(404, "404 page not found"),
        }
    }
}

fn find_pull<'a>(repo: &'a mut Repository, number: &str) -> Option<&'a mut StandInPr> {
    let number: u64 = number.parse().ok()?;
    repo.pulls.iter_mut().find(|p| p.number == number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_decode_without_the_query_plus_rule() {
        let cases = [
            ("group%2Fsub%2Fname", "group/sub/name", "GitLab project ids"),
            ("a+b", "a+b", "a plus in a path is a plus, not a space"),
            ("plain", "plain", "nothing to decode"),
        ];
        for (input, want, reason) in cases {
            assert_eq!(decode_segment(input), want, "{input}: {reason}");
        }
    }
}
