//! The plain types the console's state is made of.

use loopsmith_protocol::control::{ClientMsg, ServerMsg};
use loopsmith_protocol::{Job, JobId, JobState, UserKey};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Dashboard,
    Jobs,
    Preview,
    Generate,
    Users,
    Backends,
    Logs,
}

impl Screen {
    pub const ALL: [Screen; 7] = [
        Screen::Dashboard,
        Screen::Jobs,
        Screen::Preview,
        Screen::Generate,
        Screen::Users,
        Screen::Backends,
        Screen::Logs,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Screen::Dashboard => "Dashboard",
            Screen::Jobs => "Jobs",
            Screen::Preview => "Preview",
            Screen::Generate => "Generate",
            Screen::Users => "Users",
            Screen::Backends => "Backends",
            Screen::Logs => "Logs",
        }
    }

    pub fn index(self) -> usize {
        Screen::ALL.iter().position(|s| *s == self).unwrap_or(0)
    }
}

/// Where the link to the engine stands; drawn in the header on every screen.
#[derive(Debug, Clone, PartialEq)]
pub enum Conn {
    Connecting { attempt: u32 },
    Connected { server: String, operator: UserKey },
    Disconnected { reason: String, retry_in_ms: u64 },
}

/// What the client task tells the app.
#[derive(Debug, Clone, PartialEq)]
pub enum Net {
    Connecting { attempt: u32 },
    Connected { server: String, operator: UserKey },
    Message(Box<ServerMsg>),
    Disconnected { reason: String, retry_in_ms: u64 },
}

/// What the app asks of the run loop.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Send(ClientMsg),
    Quit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Info,
    Good,
    Bad,
}

/// A job as the console tracks it: the record plus the live figures events carry.
#[derive(Debug, Clone, PartialEq)]
pub struct JobView {
    pub job: Job,
    pub position: Option<u32>,
    pub eta_ms: Option<u64>,
}

impl JobView {
    pub fn progress(&self) -> f32 {
        match &self.job.state {
            JobState::Running { progress, .. } => progress.clamp(0.0, 1.0),
            JobState::Encoding { .. } | JobState::Done { .. } => 1.0,
            _ => 0.0,
        }
    }
}

/// Which jobs the Jobs screen lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StateFilter {
    #[default]
    All,
    Active,
    Done,
    Failed,
}

impl StateFilter {
    pub fn next(self) -> Self {
        match self {
            StateFilter::All => StateFilter::Active,
            StateFilter::Active => StateFilter::Done,
            StateFilter::Done => StateFilter::Failed,
            StateFilter::Failed => StateFilter::All,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            StateFilter::All => "all",
            StateFilter::Active => "active",
            StateFilter::Done => "done",
            StateFilter::Failed => "failed/cancelled",
        }
    }

    pub(crate) fn keeps(self, state: &JobState) -> bool {
        match self {
            StateFilter::All => true,
            StateFilter::Active => !state.is_terminal(),
            StateFilter::Done => matches!(state, JobState::Done { .. }),
            StateFilter::Failed => {
                matches!(state, JobState::Failed { .. } | JobState::Cancelled { .. })
            }
        }
    }
}

/// The clip playing on the Preview screen.
#[derive(Debug, Clone, PartialEq)]
pub struct Player {
    pub job: JobId,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub frames: Vec<Vec<u8>>,
    pub frame: usize,
    pub playing: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PreviewState {
    Empty,
    Loading(JobId),
    Ready(Player),
    Failed { job: JobId, reason: String },
}

/// A yes/no question before a command that is hard to undo.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirm {
    pub question: String,
    pub command: ClientMsg,
}
