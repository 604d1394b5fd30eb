//! What a console may ask of the engine, and the rows it is answered with.

use loopsmith_protocol::control::{ClientMsg, Outcome, ServerMsg, UserRow};
use loopsmith_protocol::{Job, JobId, JobState, Overrides, ParamDefaults, UserKey};
use tracing::info;

use super::session::status;
use super::{Shared, preview};
use crate::Backend as _;
use crate::request::GenerationRequest;
use crate::{Engine, Error};

fn reply(req: u64, result: Result<(String, Option<JobId>), String>) -> ServerMsg {
    ServerMsg::Reply {
        req,
        outcome: match result {
            Ok((message, job)) => Outcome::Ok { message, job },
            Err(message) => Outcome::Err { message },
        },
    }
}

pub(super) async fn execute(
    shared: &Shared,
    operator: &UserKey,
    command: ClientMsg,
) -> Vec<ServerMsg> {
    let engine = &shared.engine;
    match command {
        ClientMsg::Hello { .. } => vec![ServerMsg::ProtocolError {
            message: "hello was already received on this connection".into(),
        }],
        ClientMsg::Refresh => Vec::new(),
        ClientMsg::Submit {
            req,
            prompt,
            overrides,
        } => {
            let mut request = GenerationRequest::new(operator.clone(), prompt);
            request.overrides = overrides;
            vec![reply(req, submit(engine, request).await)]
        }
        ClientMsg::Cancel { req, job } => {
            let result = engine
                .cancel(job, operator)
                .await
                .map(|()| (format!("job {job}: cancel requested"), Some(job)))
                .map_err(|e| e.to_string());
            if result.is_ok() {
                info!(job = %job, by = %operator, "cancel from the console");
            }
            vec![reply(req, result)]
        }
        ClientMsg::Retry { req, job } => {
            let result = match engine.job(job).await {
                Ok(Some(old)) if old.state.is_terminal() => {
                    let submitted = if old.params.image.is_some() {
                        // The picture is in the store, not in a request: the same resolved
                        // parameters go again, picture and seed included.
                        engine
                            .resubmit(old.user.clone(), None, old.params.clone())
                            .await
                            .map(|s| (String::new(), Some(s.job)))
                            .map_err(|e| e.to_string())
                    } else {
                        submit(engine, retry_request(&old)).await
                    };
                    submitted.map(|(_, new)| {
                        (
                            format!("job {job} retried as job {}", new.map_or(0, |j| j.0)),
                            new,
                        )
                    })
                }
                Ok(Some(old)) => Err(format!(
                    "job {job} is still {}; only a finished job can be retried",
                    old.state.name()
                )),
                Ok(None) => Err(Error::NoSuchJob(job).to_string()),
                Err(e) => Err(e.to_string()),
            };
            vec![reply(req, result)]
        }
        ClientMsg::SetStyle { req, user, style } => {
            let result = engine.set_style(&user, style).await;
            user_update(engine, req, &user, result, "style saved").await
        }
        ClientMsg::SetBanned { req, user, banned } => {
            let result = engine.set_banned(&user, banned).await;
            if result.is_ok() {
                info!(user = %user, banned, by = %operator, "ban changed from the console");
            }
            let done = if banned { "banned" } else { "unbanned" };
            user_update(engine, req, &user, result, done).await
        }
        ClientMsg::SetBackendPaused {
            req,
            backend,
            paused,
        } => {
            let Some(found) = shared.backends.iter().find(|b| b.name() == backend) else {
                let names: Vec<&str> = shared.backends.iter().map(|b| b.name()).collect();
                return vec![reply(
                    req,
                    Err(format!(
                        "there is no backend called {backend}; this server has {}",
                        if names.is_empty() {
                            "none the console can pause".to_string()
                        } else {
                            names.join(", ")
                        }
                    )),
                )];
            };
            found.set_paused(paused);
            info!(backend = %backend, paused, by = %operator, "backend pause changed from the console");
            let verb = if paused { "paused" } else { "resumed" };
            vec![
                reply(req, Ok((format!("{backend} {verb}"), None))),
                status(shared),
            ]
        }
        ClientMsg::Preview { req, job, max_side } => match engine.job(job).await {
            Ok(Some(Job {
                state: JobState::Done { artifacts },
                ..
            })) => {
                let decoded =
                    tokio::task::spawn_blocking(move || preview(job, &artifacts, max_side)).await;
                match decoded {
                    Ok(Ok(preview)) => vec![ServerMsg::Preview { req, preview }],
                    Ok(Err(problem)) => vec![reply(req, Err(problem))],
                    Err(e) => vec![reply(req, Err(format!("the preview decoder failed: {e}")))],
                }
            }
            Ok(Some(other)) => vec![reply(
                req,
                Err(format!(
                    "job {job} is {}; a preview exists once it is done",
                    other.state.name()
                )),
            )],
            Ok(None) => vec![reply(req, Err(Error::NoSuchJob(job).to_string()))],
            Err(e) => vec![reply(req, Err(e.to_string()))],
        },
    }
}

async fn submit(
    engine: &Engine,
    request: GenerationRequest,
) -> Result<(String, Option<JobId>), String> {
    let submitted = engine.submit(request).await.map_err(|e| e.to_string())?;
    let place = submitted
        .position
        .map(|p| format!(" at position {p}"))
        .unwrap_or_default();
    // Events reach the console through the engine-wide broadcast; this stream is not needed.
    Ok((
        format!("job {} queued{place}", submitted.job),
        Some(submitted.job),
    ))
}

/// The same request again, for the same user: the prompt as they typed it and every resolved
/// option pinned, the seed included, so the retry renders what the original was meant to.
fn retry_request(job: &Job) -> GenerationRequest {
    let p = &job.params;
    let mut request = GenerationRequest::new(job.user.clone(), p.user_prompt.clone());
    request.overrides = Overrides {
        params: ParamDefaults {
            negative_prompt: Some(p.negative_prompt.clone()).filter(|n| !n.is_empty()),
            duration_secs: Some(p.duration_secs),
            fps: Some(p.fps),
            aspect: Some(p.aspect),
            motion: Some(p.motion),
            guidance: p.guidance,
        },
        seed: Some(p.seed),
        style: Some(p.style.clone()),
        outputs: Some(p.outputs.clone()),
        backend: Some(p.backend),
        fit: Some(p.fit),
        timing: Some(p.timing),
        seamless_loop: Some(p.seamless_loop),
    };
    request
}

async fn user_update(
    engine: &Engine,
    req: u64,
    user: &UserKey,
    result: Result<(), Error>,
    done: &str,
) -> Vec<ServerMsg> {
    match result {
        Ok(()) => {
            let mut out = vec![reply(req, Ok((format!("{user}: {done}"), None)))];
            if let Ok(row) = user_row(engine, user, None).await {
                out.push(ServerMsg::User(row));
            }
            out
        }
        Err(e) => vec![reply(req, Err(e.to_string()))],
    }
}

pub(super) async fn user_row(
    engine: &Engine,
    key: &UserKey,
    jobs_total: Option<u64>,
) -> Result<UserRow, Error> {
    let profile = engine.user(key).await?;
    let quota_used = engine.quota_used_today(key).await?;
    let jobs_total = match jobs_total {
        Some(n) => n,
        None => engine
            .jobs()
            .await?
            .iter()
            .filter(|j| &j.user == key)
            .count() as u64,
    };
    Ok(UserRow {
        key: profile.key,
        name: profile.name,
        style: profile.style,
        banned: profile.banned,
        quota_used,
        quota_limit: engine.daily_quota(),
        jobs_total,
        // Spending is not tracked per user by this engine yet.
        spend_usd: None,
    })
}
