//! Runs of `upkeep run`/`apply` and the errors each one met.
//!
//! A run is begun (id handed out, start time written) before any work so a run that dies
//! midway is still visible as "started, never finished". Errors are appended as they happen,
//! each in its own small transaction under `(run, seq)`, so the ones recorded before a crash
//! survive it; `finish_run` writes the outcome once (a second finish is refused rather than
//! silently rewriting history). Error texts are redacted ([`upkeep_core::redact`]) before they
//! are written: they quote URLs and servers' answers.

use jiff::Timestamp;
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use upkeep_core::redact::redact;

use crate::{NEXT_RUN_KEY, Store, StoreError};

const RUNS: TableDefinition<u64, &[u8]> = TableDefinition::new("runs");
const RUN_ERRORS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("run_errors");

pub(crate) fn create_tables(txn: &WriteTransaction) -> Result<(), redb::TableError> {
    txn.open_table(RUNS)?;
    txn.open_table(RUN_ERRORS).map(drop)
}

/// The id of a run; later runs have larger ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RunId(pub u64);

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// Everything that was due was done.
    Succeeded,
    /// Some work was done, some failed (see the run's errors).
    PartiallyFailed,
    /// Nothing could be done.
    Failed,
    /// Stopped before the end (signal, deadline).
    Aborted,
}

/// One error met during a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunError {
    pub at: Timestamp,
    pub message: String,
}

/// A run and its errors.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub id: RunId,
    pub started: Timestamp,
    #[serde(default)]
    pub finished: Option<Timestamp>,
    #[serde(default)]
    pub outcome: Option<Outcome>,
    /// The summary error text the run finished with.
    #[serde(default)]
    pub error: Option<String>,
    /// Errors recorded during the run, oldest first (not stored in the run record itself).
    #[serde(skip)]
    pub errors: Vec<RunError>,
}

impl Store {
    /// Records the start of a run and returns its id.
    pub fn begin_run(&self, started: Timestamp) -> Result<RunId, StoreError> {
        let txn = self.write()?;
        let id = self.next_id(&txn, NEXT_RUN_KEY, 1)?;
        let run = Run {
            id: RunId(id),
            started,
            finished: None,
            outcome: None,
            error: None,
            errors: Vec::new(),
        };
        self.put_run(&txn, &run)?;
        txn.commit().map_err(|e| self.err(e))?;
        Ok(RunId(id))
    }

    /// Appends an error to a run that has not finished yet.
    pub fn record_run_error(
        &self,
        run: RunId,
        at: Timestamp,
        message: &str,
    ) -> Result<(), StoreError> {
        let txn = self.write()?;
        self.unfinished_run(&txn, run)?;
        {
            let mut errors = txn.open_table(RUN_ERRORS).map_err(|e| self.err(e))?;
            let seq = errors
                .range((run.0, 0)..=(run.0, u64::MAX))
                .map_err(|e| self.err(e))?
                .next_back()
                .transpose()
                .map_err(|e| self.err(e))?
                .map_or(0, |(k, _)| k.value().1 + 1);
            let bytes = self.encode(
                &RunError {
                    at,
                    message: redact(message).into_owned(),
                },
                "run error",
            )?;
            errors
                .insert((run.0, seq), bytes.as_slice())
                .map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))
    }

    /// Records how a run ended. A run finishes once.
    pub fn finish_run(
        &self,
        run: RunId,
        finished: Timestamp,
        outcome: Outcome,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let txn = self.write()?;
        let mut record = self.unfinished_run(&txn, run)?;
        record.finished = Some(finished);
        record.outcome = Some(outcome);
        record.error = error.map(|e| redact(e).into_owned());
        self.put_run(&txn, &record)?;
        txn.commit().map_err(|e| self.err(e))
    }

    /// One run with its errors.
    pub fn run(&self, id: RunId) -> Result<Option<Run>, StoreError> {
        let txn = self.read()?;
        let runs = txn.open_table(RUNS).map_err(|e| self.err(e))?;
        let errors = txn.open_table(RUN_ERRORS).map_err(|e| self.err(e))?;
        let Some(bytes) = runs.get(id.0).map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        let mut run = self.decode_run(id.0, bytes.value())?;
        run.errors = self.errors_of(&errors, id.0)?;
        Ok(Some(run))
    }

    /// The newest `limit` runs with their errors, newest first.
    pub fn runs(&self, limit: usize) -> Result<Vec<Run>, StoreError> {
        let txn = self.read()?;
        let runs = txn.open_table(RUNS).map_err(|e| self.err(e))?;
        let errors = txn.open_table(RUN_ERRORS).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for entry in runs.iter().map_err(|e| self.err(e))?.rev().take(limit) {
            let (k, v) = entry.map_err(|e| self.err(e))?;
            let mut run = self.decode_run(k.value(), v.value())?;
            run.errors = self.errors_of(&errors, k.value())?;
            out.push(run);
        }
        Ok(out)
    }

    fn unfinished_run(&self, txn: &WriteTransaction, run: RunId) -> Result<Run, StoreError> {
        let runs = txn.open_table(RUNS).map_err(|e| self.err(e))?;
        let Some(bytes) = runs.get(run.0).map_err(|e| self.err(e))? else {
            return Err(StoreError::UnknownRun {
                path: self.path.clone(),
                id: run.0,
            });
        };
        let record = self.decode_run(run.0, bytes.value())?;
        if record.outcome.is_some() {
            return Err(StoreError::RunAlreadyFinished {
                path: self.path.clone(),
                id: run.0,
            });
        }
        Ok(record)
    }

    fn put_run(&self, txn: &WriteTransaction, run: &Run) -> Result<(), StoreError> {
        let bytes = self.encode(run, "run")?;
        let mut runs = txn.open_table(RUNS).map_err(|e| self.err(e))?;
        runs.insert(run.id.0, bytes.as_slice())
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn errors_of(
        &self,
        table: &impl ReadableTable<(u64, u64), &'static [u8]>,
        run: u64,
    ) -> Result<Vec<RunError>, StoreError> {
        let mut out = Vec::new();
        for entry in table
            .range((run, 0)..=(run, u64::MAX))
            .map_err(|e| self.err(e))?
        {
            let (k, v) = entry.map_err(|e| self.err(e))?;
            out.push(
                serde_json::from_slice(v.value()).map_err(|e| StoreError::Corrupt {
                    path: self.path.clone(),
                    detail: format!("error {} of run {run} cannot be decoded: {e}", k.value().1),
                })?,
            );
        }
        Ok(out)
    }

    fn decode_run(&self, id: u64, bytes: &[u8]) -> Result<Run, StoreError> {
        serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
            path: self.path.clone(),
            detail: format!("run {id} cannot be decoded: {e}"),
        })
    }

    fn encode(&self, value: &impl Serialize, what: &str) -> Result<Vec<u8>, StoreError> {
        serde_json::to_vec(value).map_err(|e| StoreError::Database {
            path: self.path.clone(),
            detail: format!("{what} cannot be encoded: {e}"),
        })
    }
}
