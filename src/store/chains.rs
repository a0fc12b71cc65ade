//! Job chains, written once for both backends: a job queued with dependencies waits until
//! every one has succeeded, then is queued with the models they registered filled into its
//! parameters; if one fails or is cancelled, it fails at once with a reason naming that
//! dependency, and so on down the chain. Each backend supplies the row operations
//! ([`ChainTx`]) inside the transaction that ends the dependency, so a chain never sees a
//! job ended without its dependents settled.

use async_trait::async_trait;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{Dependency, JobStatus, StoreError};

/// Where a dependency stands, read inside the transaction.
#[derive(Debug, Clone)]
pub(crate) struct JobState {
    pub status: JobStatus,
    pub model_id: Option<Uuid>,
    pub error: Option<String>,
}

/// The rows a chain touches, inside one write transaction of a backend. The updates here
/// record no event: [`settle_dependents`] returns the events to record last, so that the
/// event lock is the last lock a transaction takes (see `postgres::events`).
#[async_trait]
pub(crate) trait ChainTx: Send {
    /// Jobs still `waiting` with a dependency on `id`, locked for the transaction.
    async fn waiting_on(&mut self, id: Uuid) -> Result<Vec<Uuid>, StoreError>;
    /// Jobs still `waiting` none of whose dependencies is waiting, queued or running,
    /// locked for the transaction.
    async fn stranded(&mut self) -> Result<Vec<Uuid>, StoreError>;
    async fn dependencies(&mut self, job: Uuid) -> Result<Vec<Dependency>, StoreError>;
    /// `None` when there is no such job.
    async fn state(&mut self, id: Uuid) -> Result<Option<JobState>, StoreError>;
    async fn params(&mut self, job: Uuid) -> Result<Value, StoreError>;
    /// `waiting` → `queued`, with its parameters as resolved.
    async fn promote(&mut self, job: Uuid, params: &Value) -> Result<(), StoreError>;
    /// `waiting` → `failed`, with the reason.
    async fn fail(&mut self, job: Uuid, reason: &str) -> Result<(), StoreError>;
}

/// What a job's dependencies allow.
#[derive(Debug, PartialEq)]
pub(crate) enum Readiness {
    /// One has not finished yet.
    Wait,
    /// Every one has succeeded: run with these parameters.
    Go(Value),
    /// One failed or was cancelled: the job never can run, for this reason; the
    /// parameter that names that one.
    Never { field: String, reason: String },
}

/// Whether a job with `params` and these dependencies may run; reads their states.
pub(crate) async fn readiness(
    tx: &mut impl ChainTx,
    params: Value,
    dependencies: &[Dependency],
) -> Result<Readiness, StoreError> {
    let mut states = Vec::with_capacity(dependencies.len());
    for dependency in dependencies {
        let state = tx.state(dependency.job).await?.ok_or_else(|| {
            StoreError::corrupt(
                format!("job {}", dependency.job),
                "named as a dependency, absent",
            )
        })?;
        states.push(state);
    }
    Ok(judge(params, dependencies, &states))
}

/// [`readiness`] on states already read.
pub(crate) fn judge(
    mut params: Value,
    dependencies: &[Dependency],
    states: &[JobState],
) -> Readiness {
    for (dependency, state) in dependencies.iter().zip(states) {
        let named = format!("job {} (its {})", dependency.job, dependency.field);
        let never = |reason: String| Readiness::Never {
            field: dependency.field.clone(),
            reason,
        };
        match state.status {
            JobStatus::Failed => {
                let why = state.error.as_deref().unwrap_or("no reason recorded");
                return never(format!("{named} failed: {why}"));
            }
            JobStatus::Cancelled => return never(format!("{named} was cancelled")),
            _ => {}
        }
    }
    for (dependency, state) in dependencies.iter().zip(states) {
        if state.status != JobStatus::Succeeded {
            return Readiness::Wait;
        }
        if dependency.takes_model {
            let Some(model) = state.model_id else {
                return Readiness::Never {
                    field: dependency.field.clone(),
                    reason: format!(
                        "job {} (its {}) succeeded without registering a model",
                        dependency.job, dependency.field
                    ),
                };
            };
            params[&dependency.field] = json!(model);
        }
    }
    Readiness::Go(params)
}

/// After job `id` ended: queue each job waiting on it whose dependencies have now all
/// succeeded, and fail (transitively) each one that never can run. Returns the status
/// events to record, in order, after every row is written.
pub(crate) async fn settle_dependents(
    tx: &mut impl ChainTx,
    id: Uuid,
) -> Result<Vec<(Uuid, Value)>, StoreError> {
    let mut events = Vec::new();
    let mut ended = vec![id];
    while let Some(done) = ended.pop() {
        for job in tx.waiting_on(done).await? {
            settle(tx, job, &mut events, &mut ended).await?;
        }
    }
    Ok(events)
}

/// Jobs left waiting although none of their dependencies is still to finish (a worker of a
/// version before chains ended one, or a row was mended by hand): settled as the end of
/// their last dependency would have settled them, what waits on them included.
pub(crate) async fn settle_stranded(
    tx: &mut impl ChainTx,
) -> Result<Vec<(Uuid, Value)>, StoreError> {
    let mut events = Vec::new();
    for job in tx.stranded().await? {
        let mut ended = Vec::new();
        settle(tx, job, &mut events, &mut ended).await?;
        for done in ended {
            events.extend(settle_dependents(tx, done).await?);
        }
    }
    Ok(events)
}

/// Queue or fail one waiting job as its dependencies now allow; a failed one is added to
/// `ended`, for what waits on it.
async fn settle(
    tx: &mut impl ChainTx,
    job: Uuid,
    events: &mut Vec<(Uuid, Value)>,
    ended: &mut Vec<Uuid>,
) -> Result<(), StoreError> {
    let dependencies = tx.dependencies(job).await?;
    let params = tx.params(job).await?;
    match readiness(tx, params, &dependencies).await? {
        Readiness::Wait => {}
        Readiness::Go(params) => {
            tx.promote(job, &params).await?;
            events.push((job, json!({"status": "queued"})));
        }
        Readiness::Never { reason, .. } => {
            tx.fail(job, &reason).await?;
            events.push((job, json!({"status": "failed", "error": reason})));
            ended.push(job);
        }
    }
    Ok(())
}

/// The status a new job starts in, and its parameters (models of succeeded dependencies
/// filled in); refused when a dependency already failed or was cancelled.
pub(crate) async fn admit(
    tx: &mut impl ChainTx,
    job: Uuid,
    params: Value,
    dependencies: &[Dependency],
) -> Result<(JobStatus, Value), StoreError> {
    match readiness(tx, params.clone(), dependencies).await? {
        Readiness::Wait => Ok((JobStatus::Waiting, params)),
        Readiness::Go(params) => Ok((JobStatus::Queued, params)),
        Readiness::Never { field, reason } => {
            Err(StoreError::DependencyEnded { job, field, reason })
        }
    }
}

/// The event a new job is recorded with.
pub(crate) fn admitted_event(status: JobStatus, dependencies: &[Dependency]) -> Value {
    let mut data = json!({"status": status.as_str()});
    if status == JobStatus::Waiting {
        let ids: Vec<Uuid> = dependencies.iter().map(|d| d.job).collect();
        data["depends_on"] = json!(ids);
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(job: Uuid, field: &str, takes_model: bool) -> Dependency {
        Dependency {
            job,
            field: field.into(),
            takes_model,
        }
    }

    fn state(status: JobStatus, model_id: Option<Uuid>) -> JobState {
        JobState {
            status,
            model_id,
            error: Some("split test is unreadable".into()),
        }
    }

    #[test]
    fn a_job_waits_runs_with_models_filled_in_or_never_runs() {
        let (train, features, model) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let deps = [
            on(features, "features", false),
            on(train, "from_model", true),
        ];
        let params = json!({"from_model": train, "features": features});
        let running = [
            state(JobStatus::Succeeded, None),
            state(JobStatus::Running, None),
        ];
        assert_eq!(judge(params.clone(), &deps, &running), Readiness::Wait);

        let done = [
            state(JobStatus::Succeeded, None),
            state(JobStatus::Succeeded, Some(model)),
        ];
        let Readiness::Go(resolved) = judge(params.clone(), &deps, &done) else {
            panic!("every dependency succeeded");
        };
        assert_eq!(resolved, json!({"from_model": model, "features": features}));

        let failed = [
            state(JobStatus::Failed, None),
            state(JobStatus::Running, None),
        ];
        let Readiness::Never { field, reason } = judge(params.clone(), &deps, &failed) else {
            panic!("a dependency failed");
        };
        assert_eq!(field, "features");
        assert!(reason.contains(&features.to_string()), "{reason}");
        assert!(
            reason.contains("features") && reason.contains("unreadable"),
            "{reason}"
        );

        let cancelled = [
            state(JobStatus::Running, None),
            state(JobStatus::Cancelled, None),
        ];
        let Readiness::Never { reason, .. } = judge(params.clone(), &deps, &cancelled) else {
            panic!("a dependency was cancelled");
        };
        assert!(
            reason.ends_with("(its from_model) was cancelled"),
            "{reason}"
        );

        let no_model = [
            state(JobStatus::Succeeded, None),
            state(JobStatus::Succeeded, None),
        ];
        assert!(matches!(
            judge(params, &deps, &no_model),
            Readiness::Never { .. }
        ));
    }
}
