use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{OutputKind, Params, UserKey};

/// A job's number. Short on purpose: it travels in chat buttons' callback data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A file made for a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    pub kind: OutputKind,
    pub path: PathBuf,
    pub bytes: u64,
}

/// Where a job is in its life.
///
/// ```text
/// Queued ──► Running ──► Encoding ──► Done
///   │  ▲        │            │
///   │  └────────┴────────────┘   (re-queued after a restart)
///   └──────────┴─────────────┴──► Failed | Cancelled
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running {
        backend: String,
        /// 0.0 to 1.0.
        progress: f32,
    },
    Encoding {
        backend: String,
    },
    Done {
        artifacts: Vec<Artifact>,
    },
    Failed {
        /// One sentence fit for the requester.
        reason: String,
        /// Whether submitting the same request again may succeed.
        retryable: bool,
        /// The real error for the operator, outermost first: one entry per `source()` level.
        /// Never shown to the requester. Absent from records written before it existed (and
        /// left out when empty), so stored jobs and older peers still parse.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        chain: Vec<String>,
    },
    Cancelled {
        by: UserKey,
    },
}

impl JobState {
    pub fn name(&self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running { .. } => "running",
            JobState::Encoding { .. } => "encoding",
            JobState::Done { .. } => "done",
            JobState::Failed { .. } => "failed",
            JobState::Cancelled { .. } => "cancelled",
        }
    }

    /// Done, Failed and Cancelled are final: nothing moves a job out of them.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            JobState::Done { .. } | JobState::Failed { .. } | JobState::Cancelled { .. }
        )
    }

    /// Whether the state machine allows going from `self` to `next`.
    pub fn can_become(&self, next: &JobState) -> bool {
        use JobState::*;
        match (self, next) {
            (Queued, Running { .. } | Failed { .. } | Cancelled { .. }) => true,
            // Progress ticks, the router moving to another backend, or a restart re-queueing.
            (Running { .. }, Running { .. } | Encoding { .. } | Queued) => true,
            (Running { .. }, Failed { .. } | Cancelled { .. }) => true,
            (Encoding { .. }, Done { .. } | Failed { .. } | Cancelled { .. } | Queued) => true,
            _ => false,
        }
    }
}

/// Milliseconds since the Unix epoch for each milestone a job reached.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timings {
    pub created_ms: u64,
    pub started_ms: Option<u64>,
    pub rendered_ms: Option<u64>,
    pub finished_ms: Option<u64>,
}

/// One request's durable record: everything needed to explain and reproduce it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    pub user: UserKey,
    /// The platform event that created the job (Telegram update id, Discord interaction id).
    pub origin: Option<String>,
    pub params: Params,
    pub state: JobState,
    /// The backend that rendered it, once one did.
    pub backend: Option<String>,
    /// Times the job was started; more than one after a restart re-queued it.
    pub attempts: u32,
    pub timings: Timings,
}

/// Published on every state change and progress tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEvent {
    pub job: JobId,
    pub user: UserKey,
    pub state: JobState,
    /// 1-based place in the queue while the job is queued.
    pub position: Option<u32>,
    /// Estimated milliseconds until the job is done, when there is a basis for a guess.
    pub eta_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Platform;

    fn all_states() -> Vec<JobState> {
        vec![
            JobState::Queued,
            JobState::Running {
                backend: "local".into(),
                progress: 0.5,
            },
            JobState::Encoding {
                backend: "local".into(),
            },
            JobState::Done { artifacts: vec![] },
            JobState::Failed {
                reason: "x".into(),
                retryable: false,
                chain: vec!["local failed".into(), "out of memory".into()],
            },
            JobState::Cancelled {
                by: UserKey::new(Platform::Cli, "me"),
            },
        ]
    }

    #[test]
    fn transitions_follow_the_documented_machine() {
        let allowed = [
            ("queued", "running"),
            ("queued", "failed"),
            ("queued", "cancelled"),
            ("running", "running"),
            ("running", "encoding"),
            ("running", "queued"),
            ("running", "failed"),
            ("running", "cancelled"),
            ("encoding", "done"),
            ("encoding", "failed"),
            ("encoding", "cancelled"),
            ("encoding", "queued"),
        ];
        for from in all_states() {
            for to in all_states() {
                let expected = allowed.contains(&(from.name(), to.name()));
                assert_eq!(
                    from.can_become(&to),
                    expected,
                    "{} -> {}",
                    from.name(),
                    to.name()
                );
            }
        }
    }

    #[test]
    fn terminal_states_are_final() {
        for s in all_states() {
            let terminal = matches!(s.name(), "done" | "failed" | "cancelled");
            assert_eq!(s.is_terminal(), terminal, "{}", s.name());
        }
    }

    #[test]
    fn state_serialises_with_a_tag() {
        let json = serde_json::to_string(&JobState::Running {
            backend: "pika".into(),
            progress: 0.25,
        })
        .expect("serialises");
        assert_eq!(
            json,
            r#"{"state":"running","backend":"pika","progress":0.25}"#
        );
    }

    #[test]
    fn a_failure_recorded_before_the_chain_existed_still_parses() {
        // A record as sled holds it from before `chain`, and as an older peer sends it.
        let old = r#"{"state":"failed","reason":"Rendering failed.","retryable":true}"#;
        let state: JobState = serde_json::from_str(old).expect("parses");
        assert_eq!(
            state,
            JobState::Failed {
                reason: "Rendering failed.".into(),
                retryable: true,
                chain: Vec::new(),
            }
        );
        // An empty chain is written the old way, so older peers can read new records.
        assert_eq!(serde_json::to_string(&state).expect("serialises"), old);
    }

    #[test]
    fn a_failure_round_trips_with_its_chain() {
        let state = JobState::Failed {
            reason: "Rendering failed.".into(),
            retryable: false,
            chain: vec![
                "local failed".into(),
                "the denoiser ran out of memory".into(),
            ],
        };
        let json = serde_json::to_string(&state).expect("serialises");
        assert!(json.contains(r#""chain":["local failed","#), "{json}");
        assert_eq!(
            serde_json::from_str::<JobState>(&json).expect("parses"),
            state
        );
    }
}
