//! The real Alertmanager: Debian's `prometheus-alertmanager` on a free 127.0.0.1 port, with a
//! minimal configuration (one receiver that sends nowhere), storage in a tempdir and clustering
//! off (`--cluster.listen-address=` empty), so it opens exactly one port and keeps no state
//! beyond its test.
//!
//! Process handling (watchdog, free port with retry, readiness on `/-/ready` against a deadline)
//! is shared with the other process-backed components in [`crate::process`]. The methods here
//! read what a test needs to assert on through the same public v2 API any client uses:
//! silences, and alerts with their `status.silencedBy`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::TestEnvError;
use crate::process::{
    Launch, Watched, find_binary, server_tempdir, start_on_free_port, tail, write,
};

/// The whole configuration: every alert goes to a receiver without integrations.
const CONFIG: &str =
    "route:\n  receiver: blackhole\n  group_wait: 1s\nreceivers:\n  - name: blackhole\n";

/// A running Alertmanager; dropping it stops the process and deletes its storage.
#[derive(Debug)]
pub struct Alertmanager {
    base_url: String,
    log_path: PathBuf,
    client: reqwest::Client,
    _process: Watched,
    // Dropped last: the storage and log live here.
    dir: tempfile::TempDir,
}

impl Alertmanager {
    /// Starts Alertmanager and waits until `GET /-/ready` answers 200.
    pub async fn start() -> Result<Self, TestEnvError> {
        crate::install_crypto_provider();
        let binary = find_binary(
            "UPKEEP_TESTENV_ALERTMANAGER",
            &[
                "/usr/bin/prometheus-alertmanager",
                "/usr/local/bin/alertmanager",
            ],
            "prometheus-alertmanager",
            "prometheus-alertmanager",
        )?;
        let dir = server_tempdir("upkeep-alertmanager-", "Alertmanager")?;
        let root = dir.path().to_path_buf();
        let storage = root.join("data");
        std::fs::create_dir_all(&storage)
            .map_err(|e| TestEnvError::io("creating the Alertmanager storage dir", e))?;
        let config_path = root.join("alertmanager.yml");
        write(&config_path, CONFIG.as_bytes())?;

        let client = crate::http_client(None, Duration::from_secs(10))?;
        let log_path = root.join("alertmanager.log");
        let launch = Launch {
            component: "prometheus-alertmanager",
            log_path: &log_path,
            client: &client,
            scheme: "http",
            probe_path: "/-/ready",
            ready: |status| status == 200,
        };
        let started = start_on_free_port(&launch, |host, attempt| {
            let args = [
                format!("--config.file={}", config_path.display()),
                format!("--storage.path={}", storage.display()),
                format!("--web.listen-address={host}"),
                "--cluster.listen-address=".to_owned(),
                "--log.level=info".to_owned(),
            ];
            Watched::spawn(
                &binary,
                &args.map(OsString::from),
                &log_path,
                &format!("start attempt {attempt} on {host}"),
            )
        })
        .await?;
        Ok(Self {
            base_url: started.base_url,
            log_path,
            client,
            _process: started.process,
            dir,
        })
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> &str {
        &self.base_url
    }

    /// The tempdir holding configuration, storage and the log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last 40 lines of Alertmanager's log.
    pub fn log_tail(&self) -> String {
        tail(&self.log_path, 40)
    }

    async fn get_json(&self, path: &str) -> Result<Value, TestEnvError> {
        let what = format!("GET {}{path}", self.base_url);
        let response = self
            .client
            .get(format!("{}{path}", self.base_url))
            .send()
            .await
            .map_err(|e| TestEnvError::http(what.clone(), e))?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|e| TestEnvError::http(what.clone(), e))?;
        if status != 200 {
            return Err(TestEnvError::Status { what, status, body });
        }
        serde_json::from_str(&body).map_err(|_| TestEnvError::invalid(what, body))
    }

    async fn get_list(&self, path: &str) -> Result<Vec<Value>, TestEnvError> {
        match self.get_json(path).await? {
            Value::Array(items) => Ok(items),
            other => Err(TestEnvError::invalid(
                format!("answer of GET {path}"),
                other.to_string(),
            )),
        }
    }

    /// Every silence (`GET /api/v2/silences`), including expired ones, as Alertmanager returns
    /// them (`id`, `status.state`, `matchers`, `createdBy`, …).
    pub async fn silences(&self) -> Result<Vec<Value>, TestEnvError> {
        self.get_list("/api/v2/silences").await
    }

    /// The ids of silences whose `status.state` is `active`.
    pub async fn active_silence_ids(&self) -> Result<Vec<String>, TestEnvError> {
        Ok(self
            .silences()
            .await?
            .iter()
            .filter(|s| s["status"]["state"] == "active")
            .filter_map(|s| s["id"].as_str().map(str::to_owned))
            .collect())
    }

    /// Every alert (`GET /api/v2/alerts`, silenced and inhibited included), each with
    /// `status.state` and `status.silencedBy`.
    pub async fn alerts(&self) -> Result<Vec<Value>, TestEnvError> {
        self.get_list("/api/v2/alerts?silenced=true&inhibited=true&active=true")
            .await
    }

    /// The `status.silencedBy` ids of the alert with exactly `labels`, or `None` when there is
    /// no such alert.
    pub async fn silenced_by(
        &self,
        labels: &[(&str, &str)],
    ) -> Result<Option<Vec<String>>, TestEnvError> {
        let wanted: serde_json::Map<String, Value> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        Ok(self
            .alerts()
            .await?
            .iter()
            .find(|a| a["labels"].as_object() == Some(&wanted))
            .map(|a| {
                a["status"]["silencedBy"]
                    .as_array()
                    .map(|ids| {
                        ids.iter()
                            .filter_map(|id| id.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default()
            }))
    }

    /// Fires one alert with `labels` (`POST /api/v2/alerts`), active for the next hour.
    pub async fn post_alert(&self, labels: &[(&str, &str)]) -> Result<(), TestEnvError> {
        let what = format!("POST {}/api/v2/alerts", self.base_url);
        let labels: serde_json::Map<String, Value> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        let now = jiff::Timestamp::now();
        let ends = now + jiff::SignedDuration::from_hours(1);
        let body = json!([{
            "labels": labels,
            "annotations": { "summary": "posted by upkeep-testenv" },
            "startsAt": now.to_string(),
            "endsAt": ends.to_string(),
        }]);
        let response = self
            .client
            .post(format!("{}/api/v2/alerts", self.base_url))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| TestEnvError::http(what.clone(), e))?;
        let status = response.status().as_u16();
        if status != 200 {
            let body = response.text().await.unwrap_or_default();
            return Err(TestEnvError::Status { what, status, body });
        }
        Ok(())
    }
}
