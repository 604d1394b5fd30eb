//! The fake's wire format: status bodies as fal writes them, and JSON answers.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use super::{Outcome, Request, Step};

pub(super) fn logs_wanted(uri: &Uri) -> bool {
    uri.query()
        .unwrap_or("")
        .split('&')
        .any(|p| p == "logs=1" || p == "logs=true")
}

/// The request's next step as a status body (and its code: 202 while waiting, 200 once
/// COMPLETED), moving the walk on. Polls list every log line so far (`cumulative`); stream
/// events carry only the new ones.
pub(super) fn next_status(
    request: &mut Request,
    base: &str,
    id: &str,
    with_logs: bool,
    cumulative: bool,
) -> (u16, Value) {
    let step = request
        .walk
        .get(request.step)
        .or(request.walk.last())
        .cloned()
        .unwrap_or(Step::Completed);
    request.step = (request.step + 1).min(request.walk.len().saturating_sub(1));
    let mut body = match &step {
        Step::Queued(position) => json!({"status": "IN_QUEUE", "queue_position": position}),
        Step::Running(lines) => {
            request.logs.extend(lines.iter().cloned());
            let shown = if cumulative {
                &request.logs[..]
            } else {
                &lines[..]
            };
            json!({"status": "IN_PROGRESS", "logs": logs(shown, with_logs)})
        }
        Step::Completed => {
            request.completed = true;
            let shown: &[String] = if cumulative { &request.logs } else { &[] };
            let mut done = json!({
                "status": "COMPLETED",
                "logs": logs(shown, with_logs),
                "metrics": {"inference_time": 41.7},
            });
            if let Outcome::Error { status, body } = &request.outcome {
                done["error"] = json!(format!("Invalid status code: {status}"));
                if let Some(t) = body.get("error_type") {
                    done["error_type"] = t.clone();
                }
            }
            done
        }
    };
    body["request_id"] = json!(id);
    merge(&mut body, &urls(base, &request.app, id));
    let code = if step == Step::Completed { 200 } else { 202 };
    (code, body)
}

pub(super) fn urls(base: &str, app: &str, id: &str) -> Value {
    let response_url = format!("{base}/{app}/requests/{id}");
    json!({
        "response_url": response_url,
        "status_url": format!("{response_url}/status"),
        "cancel_url": format!("{response_url}/cancel"),
    })
}

pub(super) fn logs(lines: &[String], with_logs: bool) -> Value {
    if !with_logs {
        return Value::Null;
    }
    Value::Array(
        lines
            .iter()
            .map(|m| json!({"message": m, "level": "INFO", "source": "USER", "timestamp": "2026-05-01T12:00:03.123Z"}))
            .collect(),
    )
}

pub(super) fn merge(target: &mut Value, extra: &Value) {
    if let (Some(t), Some(e)) = (target.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            t.insert(k.clone(), v.clone());
        }
    }
}

pub(super) fn json_response(status: u16, body: Value, headers: &[(String, String)]) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}
