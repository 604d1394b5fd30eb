//! Every message of the control protocol.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Job, JobEvent, JobId, Overrides, UserKey, UserStyle};

/// The TCP access token. Its `Debug` and `Display` print nothing of the value, so it can sit
/// inside any message that is logged.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Token(String);

impl Token {
    pub fn new(value: impl Into<String>) -> Self {
        Token(value.into())
    }

    /// The value, for the one place that compares it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// What the console sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    /// The first frame of every connection.
    Hello {
        protocol: u32,
        /// Who is connecting, e.g. `loopsmith-console 0.1.0`; shown in the server's log.
        client: String,
        /// The operator's name (their login); the console's submissions are made as
        /// `console:<operator>`. The server falls back to `operator` when absent or unusable.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        operator: Option<String>,
        /// Required over TCP; ignored on the Unix socket, whose file mode is the access check.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<Token>,
    },
    /// A new job, made as the console's operator.
    Submit {
        req: u64,
        prompt: String,
        #[serde(default)]
        overrides: Overrides,
    },
    Cancel {
        req: u64,
        job: JobId,
    },
    /// Submits a finished job's request again, for the same user, with the same seed.
    Retry {
        req: u64,
        job: JobId,
    },
    SetStyle {
        req: u64,
        user: UserKey,
        style: UserStyle,
    },
    SetBanned {
        req: u64,
        user: UserKey,
        banned: bool,
    },
    /// Stops (or resumes) sending new jobs to one backend; running jobs finish.
    SetBackendPaused {
        req: u64,
        backend: String,
        paused: bool,
    },
    /// Frames of a finished job's clip, scaled so the longer side is at most `max_side`.
    Preview {
        req: u64,
        job: JobId,
        max_side: u32,
    },
    /// A fresh full snapshot (after the client fell behind, or on demand).
    Refresh,
}

/// What the engine sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    Welcome {
        protocol: u32,
        /// e.g. `loopsmith 0.1.0`.
        server: String,
        /// The user the console's own submissions are made as.
        operator: UserKey,
    },
    /// The handshake failed (version, token); the server closes after sending it.
    Refused {
        reason: String,
    },
    Snapshot(Box<Snapshot>),
    /// A job's full record, sent when it first appears and whenever its state changes kind.
    Job(Box<Job>),
    /// A progress tick or queue move; cheaper than the full record.
    Event(JobEvent),
    /// Backend health, queue depth and spend; sent whenever one of them changed.
    Backends {
        backends: Vec<BackendRow>,
        queue_len: u64,
        /// `None` when this server does not track spending.
        #[serde(default)]
        spend: Option<Spend>,
    },
    User(UserRow),
    Log(LogLine),
    Reply {
        req: u64,
        outcome: Outcome,
    },
    Preview {
        req: u64,
        preview: PreviewFrames,
    },
    /// The server could not understand a frame; the connection stays open unless it says so.
    ProtocolError {
        message: String,
    },
}

/// Everything a console needs to draw every screen, sent after the handshake.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Snapshot {
    /// The most recent jobs, oldest first (the server caps how many).
    pub jobs: Vec<Job>,
    pub users: Vec<UserRow>,
    pub backends: Vec<BackendRow>,
    pub queue_len: u64,
    /// The latest log lines, oldest first.
    pub logs: Vec<LogLine>,
    /// `None` when this server does not track spending.
    pub spend: Option<Spend>,
    pub now_ms: u64,
}

/// Money spent on paid backends today (UTC), against the configured cap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spend {
    pub today_usd: f64,
    pub cap_usd: f64,
}

/// A user as the Users screen lists them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRow {
    pub key: UserKey,
    pub name: Option<String>,
    pub style: UserStyle,
    pub banned: bool,
    /// Jobs made today (UTC) and the daily quota (0 for none).
    pub quota_used: u32,
    pub quota_limit: u32,
    pub jobs_total: u64,
    /// `None` when the server does not track spending.
    pub spend_usd: Option<f64>,
}

/// Whether a backend can take work, as the Backends screen shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum BackendState {
    Ready,
    Busy {
        detail: String,
    },
    Down {
        reason: String,
    },
    /// Paused by an operator; no new jobs go to it.
    Paused,
}

impl BackendState {
    pub fn name(&self) -> &'static str {
        match self {
            BackendState::Ready => "ready",
            BackendState::Busy { .. } => "busy",
            BackendState::Down { .. } => "down",
            BackendState::Paused => "paused",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendRow {
    pub name: String,
    pub state: BackendState,
    /// Model bundle or remote model name.
    pub model: String,
    /// `cpu`, `cuda`, `fal`, ...
    pub provider: String,
    pub device: String,
    /// Jobs rendering on it now, and how many it takes at once.
    pub running: u32,
    pub capacity: u32,
    /// Whether the operator can pause it from the console.
    pub pausable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub const ALL: [LogLevel; 5] = [
        LogLevel::Trace,
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Warn,
        LogLevel::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "TRACE",
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub at_ms: u64,
    pub level: LogLevel,
    pub target: String,
    /// The message followed by its fields, `key=value`.
    pub text: String,
}

/// How a command ended. `message` is one sentence for the operator's status bar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    Ok {
        message: String,
        /// The job a submit or retry made.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        job: Option<JobId>,
    },
    Err {
        message: String,
    },
}

/// A clip's frames, small enough for a terminal: RGB, 8 bits a channel, row-major.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreviewFrames {
    pub job: JobId,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Each frame base64-encoded (`width * height * 3` bytes once decoded).
    pub frames: Vec<String>,
}

impl PreviewFrames {
    /// Builds a preview from raw RGB frames.
    pub fn from_rgb(job: JobId, width: u32, height: u32, fps: u32, frames: &[Vec<u8>]) -> Self {
        PreviewFrames {
            job,
            width,
            height,
            fps,
            frames: frames.iter().map(|f| super::base64::encode(f)).collect(),
        }
    }

    /// Decodes every frame, checking each has the size the dimensions promise.
    pub fn decode_rgb(&self) -> Result<Vec<Vec<u8>>, String> {
        let expected = (self.width as usize)
            .checked_mul(self.height as usize)
            .and_then(|n| n.checked_mul(3))
            .ok_or("preview dimensions overflow")?;
        if self.width == 0 || self.height == 0 || self.fps == 0 {
            return Err(format!(
                "empty preview: {}x{} at {} fps",
                self.width, self.height, self.fps
            ));
        }
        self.frames
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let bytes = super::base64::decode(text)
                    .ok_or_else(|| format!("preview frame {i} is not valid base64"))?;
                if bytes.len() != expected {
                    return Err(format!(
                        "preview frame {i} has {} bytes; a {}x{} RGB frame has {expected}",
                        bytes.len(),
                        self.width,
                        self.height
                    ));
                }
                Ok(bytes)
            })
            .collect()
    }
}
