//! Everything that can go wrong with a Pika job. `Display` is for the log (the chain says
//! what happened, never the key); [`PikaError::user_message`] is the sentence the person who
//! asked reads.

use std::time::Duration;

use crate::backend::{BackendError, Explained};
use crate::media::MediaError;
use crate::store::StoreError;

use super::download::DownloadError;
use super::retry::Call;

#[derive(Debug, thiserror::Error)]
pub enum PikaError {
    #[error("FAL_KEY is not set")]
    NoKey,
    #[error("the job was cancelled")]
    Cancelled,
    #[error("{} failed after {attempts} attempt(s)", call.describe())]
    Transport {
        call: Call,
        attempts: u32,
        #[source]
        source: reqwest::Error,
    },
    #[error("fal answered {status} after {attempts} attempt(s) while {}: {detail}", call.describe())]
    Http {
        call: Call,
        status: u16,
        attempts: u32,
        /// fal's `error_type` (`X-Fal-Error-Type` or the body's field), when given.
        error_type: Option<String>,
        detail: String,
    },
    #[error("fal did not start the job within the {secs} s start timeout")]
    StartTimeout { secs: u64 },
    #[error("Pika rejected the request: {detail}")]
    Rejected { detail: String },
    #[error("fal's answer while {} was not understood: {problem}", call.describe())]
    BadAnswer { call: Call, problem: String },
    #[error("fal gave a {what} on another host than {base} ({url}); the key is not sent there")]
    ForeignUrl {
        what: &'static str,
        url: String,
        base: String,
    },
    #[error("the result could not be downloaded")]
    Download(#[from] DownloadError),
    #[error("the result video could not be decoded")]
    Decode(#[source] MediaError),
    #[error("the result video has no frames")]
    EmptyVideo,
    #[error("the job passed its {} s deadline", .0.as_secs())]
    Deadline(Duration),
    #[error("the job's records could not be read or written")]
    Store(#[from] StoreError),
    /// A cap of the spend ledger would be passed; nothing was submitted or charged.
    #[error("{0}")]
    OverBudget(String),
    /// Inputs Pika does not accept; the text is for the requester.
    #[error("{0}")]
    Input(String),
    #[error("the Pika backend could not be set up: {0}")]
    Setup(String),
}

impl PikaError {
    /// One short sentence for the person who asked.
    pub fn user_message(&self) -> String {
        match self {
            PikaError::NoKey | PikaError::Setup(_) => {
                "Pika is not set up on this server.".to_string()
            }
            PikaError::Cancelled => "The job was cancelled.".to_string(),
            PikaError::Transport {
                call: Call::Submit,
                source,
                ..
            } if !source.is_connect() => "The connection to fal broke after the request was sent; \
                 it was not sent again, so it cannot be paid for twice. Please try again."
                .to_string(),
            PikaError::Transport { .. } => {
                "fal, where Pika runs, could not be reached; please try again later.".to_string()
            }
            PikaError::Http {
                status: 401 | 403, ..
            } => "fal refused this server's key; the operator needs to check FAL_KEY.".to_string(),
            PikaError::Http { status, .. } if *status == 429 || *status >= 500 => format!(
                "fal, where Pika runs, is having trouble (it answered {status}); please try again later."
            ),
            PikaError::Http { status, detail, .. } => {
                format!("fal refused the request ({status}: {detail}).")
            }
            PikaError::StartTimeout { secs } => format!(
                "fal's queue was too busy to start the job within {secs} seconds; nothing was charged."
            ),
            PikaError::Rejected { detail } => format!("Pika could not make this: {detail}."),
            PikaError::BadAnswer { .. } | PikaError::ForeignUrl { .. } => {
                "fal sent an answer we could not use; please try again.".to_string()
            }
            PikaError::Download(e) => format!("The finished video could not be fetched: {e}."),
            PikaError::Decode(_) | PikaError::EmptyVideo => {
                "The video Pika made could not be read; please try again.".to_string()
            }
            PikaError::Deadline(d) => format!(
                "Pika took longer than {} seconds, so the job was cancelled.",
                d.as_secs()
            ),
            PikaError::Store(_) => "Something went wrong on our side; please try again.".into(),
            PikaError::OverBudget(why) => format!("No paid render is possible: {why}."),
            PikaError::Input(reason) => reason.clone(),
        }
    }

    /// The engine's view of this error: whether another backend may try, and what the
    /// requester is told.
    pub fn into_backend_error(self) -> BackendError {
        let backend = "pika".to_string();
        match self {
            PikaError::Cancelled => BackendError::Cancelled,
            PikaError::NoKey => BackendError::Unavailable {
                backend,
                reason: "pika: FAL_KEY is not set".into(),
            },
            // Nothing was attempted; the local backend may still take the job.
            PikaError::OverBudget(why) => BackendError::Unavailable {
                backend,
                reason: why,
            },
            // The request itself is the problem; the local model would refuse or fail it too,
            // or (for inputs) cannot take it at all.
            PikaError::Rejected { .. } | PikaError::Input(_) => BackendError::Refused {
                backend,
                reason: self.user_message(),
            },
            other => BackendError::Failed {
                backend,
                retry_elsewhere: true,
                source: Box::new(Explained {
                    message: other.user_message(),
                    source: Box::new(other),
                }),
            },
        }
    }
}

/// Reads fal's error body: `detail` as a list of `{loc, msg}` (validation errors) or as a
/// string (infrastructure errors and endpoints not yet migrated), plus `error_type`. Anything
/// else (an nginx page, say) gives no detail rather than its markup.
pub fn error_detail(body: &[u8]) -> (String, Option<String>) {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return ("no details given".to_string(), None);
    };
    let error_type = json.get("error_type").and_then(|v| v.as_str()).map(clean);
    let detail = match json.get("detail") {
        Some(serde_json::Value::String(s)) => clean(s),
        Some(serde_json::Value::Array(items)) => {
            let parts: Vec<String> = items.iter().map(field_error).collect();
            if parts.is_empty() {
                "no details given".to_string()
            } else {
                clean(&parts.join("; "))
            }
        }
        Some(other) => clean(&other.to_string()),
        None => "no details given".to_string(),
    };
    (detail, error_type)
}

/// `{"loc":["body","duration"],"msg":"…"}` → `duration: …`; the `body` prefix says nothing to
/// a person.
fn field_error(item: &serde_json::Value) -> String {
    let msg = item
        .get("msg")
        .and_then(|m| m.as_str())
        .unwrap_or("invalid");
    let loc: Vec<String> = item
        .get("loc")
        .and_then(|l| l.as_array())
        .map(|parts| {
            parts
                .iter()
                .filter(|p| p.as_str() != Some("body"))
                .map(|p| match p {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    if loc.is_empty() {
        msg.to_string()
    } else {
        format!("{}: {msg}", loc.join("."))
    }
}

/// One line, printable, at most 300 characters: it ends up in a chat message.
fn clean(text: &str) -> String {
    const MAX: usize = 300;
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = one_line.trim().trim_end_matches('.').trim();
    if trimmed.is_empty() {
        return "no details given".to_string();
    }
    if trimmed.chars().count() > MAX {
        let cut: String = trimmed.chars().take(MAX).collect();
        format!("{cut}…")
    } else {
        trimmed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_reads_both_shapes_and_ignores_markup() {
        let array = br#"{"detail":[{"loc":["body","duration"],"msg":"value is not a valid enumeration member","type":"type_error.enum"},{"loc":["body","transitions",0,"prompt"],"msg":"field required","type":"value_error.missing"}]}"#;
        assert_eq!(
            error_detail(array).0,
            "duration: value is not a valid enumeration member; transitions.0.prompt: field required"
        );
        let string = br#"{"detail":"Request timed out","error_type":"request_timeout"}"#;
        assert_eq!(
            error_detail(string),
            (
                "Request timed out".to_string(),
                Some("request_timeout".to_string())
            )
        );
        assert_eq!(
            error_detail(b"<html>502 Bad Gateway nginx</html>").0,
            "no details given"
        );
        let long = format!(r#"{{"detail":"{}\n"}}"#, "x".repeat(1000));
        assert!(error_detail(long.as_bytes()).0.chars().count() <= 301);
    }

    proptest::proptest! {
        #[test]
        fn any_error_body_gives_one_short_printable_line(body in proptest::collection::vec(proptest::num::u8::ANY, 0..2000)) {
            let (detail, kind) = error_detail(&body);
            proptest::prop_assert!(detail.chars().count() <= 301);
            proptest::prop_assert!(!detail.chars().any(char::is_control));
            proptest::prop_assert!(kind.is_none_or(|k| !k.chars().any(char::is_control)));
        }

        #[test]
        fn any_json_detail_shape_is_read_without_panicking(detail in detail_strategy()) {
            let body = serde_json::json!({"detail": detail}).to_string();
            let (text, _) = error_detail(body.as_bytes());
            proptest::prop_assert!(!text.is_empty());
        }
    }

    fn detail_strategy() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            any::<String>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            Just(serde_json::Value::Null),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                proptest::collection::hash_map("[a-z]{1,4}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
