//! The console's state and how server messages change it. No I/O here: the run loop feeds
//! messages and keys in, and sends out whatever commands come back.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, VecDeque};

use loopsmith_protocol::control::{
    BackendRow, ClientMsg, LogLevel, LogLine, Outcome, PreviewFrames, ServerMsg, Snapshot, Spend,
    UserRow,
};
use loopsmith_protocol::{Job, JobId, JobState, UserKey};

use crate::forms::{GenerateForm, StyleEditor};
use crate::graphics::Graphics;
pub use crate::model::{
    Action, Confirm, Conn, JobView, Net, Player, PreviewState, Screen, StateFilter, Tone,
};

/// Log lines kept on the Logs screen.
pub const MAX_LOG_LINES: usize = 5000;
/// Longest side of the preview frames asked for: a 256-column terminal shows them 1:1.
pub const PREVIEW_SIDE: u32 = 160;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Submit,
    Preview(JobId),
    Other,
}

#[derive(Debug)]
pub struct App {
    pub screen: Screen,
    pub conn: Conn,
    /// Where the console attaches, for the header ("socket loopsmith-data/control.sock").
    pub target: String,
    pub jobs: BTreeMap<JobId, JobView>,
    pub users: BTreeMap<UserKey, UserRow>,
    pub backends: Vec<BackendRow>,
    pub queue_len: u64,
    pub spend: Option<Spend>,
    pub logs: VecDeque<LogLine>,
    pub log_level: LogLevel,
    /// Lines scrolled up from the newest; 0 follows the tail.
    pub log_scroll: usize,
    /// Jobs the Jobs screen lists, newest first, after filtering.
    pub visible: Vec<JobId>,
    pub job_filter: String,
    pub filter_editing: bool,
    pub state_filter: StateFilter,
    pub job_selected: usize,
    pub job_details: bool,
    /// First listed row, kept between frames so the list scrolls like a pager.
    pub job_offset: Cell<usize>,
    pub user_selected: usize,
    /// First listed user, kept between frames like `job_offset`.
    pub user_offset: Cell<usize>,
    pub backend_selected: usize,
    pub generate: GenerateForm,
    pub style_editor: Option<StyleEditor>,
    pub preview: PreviewState,
    pub confirm: Option<Confirm>,
    pub help: bool,
    /// How pictures are drawn; half-blocks unless the run loop found the terminal can do more.
    pub graphics: Graphics,
    pub status: Option<(String, Tone)>,
    pub now_ms: u64,
    /// Set when anything changed since the last draw.
    pub dirty: bool,
    pending: HashMap<u64, Pending>,
    next_req: u64,
}

impl App {
    pub fn new(target: impl Into<String>) -> Self {
        App {
            screen: Screen::Dashboard,
            conn: Conn::Connecting { attempt: 1 },
            target: target.into(),
            jobs: BTreeMap::new(),
            users: BTreeMap::new(),
            backends: Vec::new(),
            queue_len: 0,
            spend: None,
            logs: VecDeque::new(),
            log_level: LogLevel::Info,
            log_scroll: 0,
            visible: Vec::new(),
            job_filter: String::new(),
            filter_editing: false,
            state_filter: StateFilter::All,
            job_selected: 0,
            job_details: false,
            job_offset: Cell::new(0),
            user_selected: 0,
            user_offset: Cell::new(0),
            backend_selected: 0,
            generate: GenerateForm::default(),
            style_editor: None,
            preview: PreviewState::Empty,
            confirm: None,
            help: false,
            graphics: Graphics::HALF_BLOCKS,
            status: None,
            now_ms: 0,
            dirty: true,
            pending: HashMap::new(),
            next_req: 1,
        }
    }

    pub fn connected(&self) -> bool {
        matches!(self.conn, Conn::Connected { .. })
    }

    pub fn operator(&self) -> Option<&UserKey> {
        match &self.conn {
            Conn::Connected { operator, .. } => Some(operator),
            _ => None,
        }
    }

    pub fn set_status(&mut self, text: impl Into<String>, tone: Tone) {
        self.status = Some((text.into(), tone));
        self.dirty = true;
    }

    /// A request id for a command, remembered so its reply is understood.
    fn request(&mut self, kind: PendingKind) -> u64 {
        let req = self.next_req;
        self.next_req += 1;
        self.pending.insert(
            req,
            match kind {
                PendingKind::Submit => Pending::Submit,
                PendingKind::Preview(job) => Pending::Preview(job),
                PendingKind::Other => Pending::Other,
            },
        );
        req
    }

    /// Builds a command, or says plainly why it cannot go out now.
    pub(crate) fn command(
        &mut self,
        kind: PendingKind,
        make: impl FnOnce(u64) -> ClientMsg,
    ) -> Vec<Action> {
        if !self.connected() {
            self.set_status(
                "not connected to the engine; the command was not sent",
                Tone::Bad,
            );
            return Vec::new();
        }
        let req = self.request(kind);
        vec![Action::Send(make(req))]
    }

    /// Whether a dialog or the help is drawn over the screen. Pictures in pixels would sit on
    /// top of it, so the preview falls back to half-blocks meanwhile.
    pub fn overlay_open(&self) -> bool {
        self.help || self.confirm.is_some() || self.style_editor.is_some()
    }

    pub fn selected_job(&self) -> Option<&JobView> {
        self.visible
            .get(self.job_selected)
            .and_then(|id| self.jobs.get(id))
    }

    pub fn selected_user(&self) -> Option<&UserRow> {
        self.users.values().nth(self.user_selected)
    }

    pub fn selected_backend(&self) -> Option<&BackendRow> {
        self.backends.get(self.backend_selected)
    }

    /// Log lines at or above the chosen level, oldest first.
    pub fn shown_logs(&self) -> impl DoubleEndedIterator<Item = &LogLine> {
        let level = self.log_level;
        self.logs.iter().filter(move |l| l.level >= level)
    }

    /// Recomputes the Jobs list after jobs or filters changed, keeping the selected job
    /// selected when it is still listed.
    pub fn refresh_visible(&mut self) {
        let keep = self.visible.get(self.job_selected).copied();
        let needle = self.job_filter.to_lowercase();
        self.visible = self
            .jobs
            .values()
            .rev()
            .filter(|v| self.state_filter.keeps(&v.job.state))
            .filter(|v| needle.is_empty() || matches_filter(&v.job, &needle))
            .map(|v| v.job.id)
            .collect();
        self.job_selected = keep
            .and_then(|id| self.visible.iter().position(|v| *v == id))
            .unwrap_or_else(|| self.job_selected.min(self.visible.len().saturating_sub(1)));
        self.dirty = true;
    }

    /// Applies what the client task reports.
    pub fn on_net(&mut self, net: Net) -> Vec<Action> {
        self.dirty = true;
        match net {
            Net::Connecting { attempt } => {
                self.conn = Conn::Connecting { attempt };
                Vec::new()
            }
            Net::Connected { server, operator } => {
                self.conn = Conn::Connected { server, operator };
                self.set_status("connected", Tone::Good);
                Vec::new()
            }
            Net::Disconnected {
                reason,
                retry_in_ms,
            } => {
                self.conn = Conn::Disconnected {
                    reason,
                    retry_in_ms,
                };
                // Replies to what was in flight will never come.
                self.pending.clear();
                if let PreviewState::Loading(job) = self.preview {
                    self.preview = PreviewState::Failed {
                        job,
                        reason: "the connection dropped while loading".into(),
                    };
                }
                Vec::new()
            }
            Net::Message(message) => self.on_message(*message),
        }
    }

    pub fn on_message(&mut self, message: ServerMsg) -> Vec<Action> {
        self.dirty = true;
        match message {
            ServerMsg::Welcome {
                server, operator, ..
            } => self.conn = Conn::Connected { server, operator },
            ServerMsg::Refused { reason } => self.set_status(reason, Tone::Bad),
            ServerMsg::Snapshot(snapshot) => self.apply_snapshot(*snapshot),
            ServerMsg::Job(job) => {
                let id = job.id;
                let entry = self.jobs.entry(id).or_insert_with(|| JobView {
                    job: (*job).clone(),
                    position: None,
                    eta_ms: None,
                });
                entry.job = *job;
                if entry.job.state.is_terminal() || !matches!(entry.job.state, JobState::Queued) {
                    entry.position = None;
                }
                if entry.job.state.is_terminal() {
                    entry.eta_ms = None;
                }
                let done = matches!(entry.job.state, JobState::Done { .. });
                self.refresh_visible();
                // The operator's own sticker plays beside the form as soon as it is done.
                if done && self.generate.last_job == Some(id) {
                    return self.fetch_preview(id, false);
                }
            }
            ServerMsg::Event(event) => {
                if let Some(view) = self.jobs.get_mut(&event.job) {
                    let kind_changed = view.job.state.name() != event.state.name();
                    view.job.state = event.state;
                    view.position = event.position;
                    view.eta_ms = event.eta_ms;
                    if kind_changed {
                        self.refresh_visible();
                    }
                }
            }
            ServerMsg::Backends {
                backends,
                queue_len,
                spend,
            } => {
                self.backends = backends;
                self.queue_len = queue_len;
                self.spend = spend;
                self.backend_selected = self
                    .backend_selected
                    .min(self.backends.len().saturating_sub(1));
            }
            ServerMsg::User(row) => {
                self.users.insert(row.key.clone(), row);
            }
            ServerMsg::Log(line) => self.push_log(line),
            ServerMsg::Reply { req, outcome } => self.on_reply(req, outcome),
            ServerMsg::Preview { req, preview } => {
                self.pending.remove(&req);
                self.load_preview(preview);
            }
            ServerMsg::ProtocolError { message } => {
                self.set_status(format!("server: {message}"), Tone::Bad)
            }
        }
        Vec::new()
    }

    fn apply_snapshot(&mut self, snapshot: Snapshot) {
        self.jobs = snapshot
            .jobs
            .into_iter()
            .map(|job| {
                (
                    job.id,
                    JobView {
                        job,
                        position: None,
                        eta_ms: None,
                    },
                )
            })
            .collect();
        self.users = snapshot
            .users
            .into_iter()
            .map(|u| (u.key.clone(), u))
            .collect();
        self.backends = snapshot.backends;
        self.queue_len = snapshot.queue_len;
        self.spend = snapshot.spend;
        self.logs = snapshot.logs.into_iter().collect();
        while self.logs.len() > MAX_LOG_LINES {
            self.logs.pop_front();
        }
        if snapshot.now_ms > 0 && self.now_ms == 0 {
            self.now_ms = snapshot.now_ms;
        }
        self.user_selected = self.user_selected.min(self.users.len().saturating_sub(1));
        self.refresh_visible();
    }

    fn push_log(&mut self, line: LogLine) {
        if self.logs.len() == MAX_LOG_LINES {
            self.logs.pop_front();
        }
        let shown = line.level >= self.log_level;
        self.logs.push_back(line);
        // Scrolled back, the view stays on the same lines as new ones arrive.
        if self.log_scroll > 0 && shown {
            self.log_scroll += 1;
        }
    }

    fn on_reply(&mut self, req: u64, outcome: Outcome) {
        let pending = self.pending.remove(&req);
        match (pending, outcome) {
            (Some(Pending::Submit), Outcome::Ok { message, job }) => {
                self.generate.last_job = job;
                self.set_status(message, Tone::Good);
            }
            (Some(Pending::Preview(job)), Outcome::Err { message }) => {
                self.preview = PreviewState::Failed {
                    job,
                    reason: message.clone(),
                };
                self.set_status(message, Tone::Bad);
            }
            (_, Outcome::Ok { message, .. }) => self.set_status(message, Tone::Good),
            (_, Outcome::Err { message }) => self.set_status(message, Tone::Bad),
        }
    }

    fn load_preview(&mut self, preview: PreviewFrames) {
        self.preview = match preview.decode_rgb() {
            Ok(frames) if !frames.is_empty() => PreviewState::Ready(Player {
                job: preview.job,
                width: preview.width,
                height: preview.height,
                fps: preview.fps.clamp(1, 60),
                frames,
                frame: 0,
                playing: true,
            }),
            Ok(_) => PreviewState::Failed {
                job: preview.job,
                reason: "the server sent a preview without frames".into(),
            },
            Err(reason) => PreviewState::Failed {
                job: preview.job,
                reason,
            },
        };
    }

    /// Asks for the frames of a job's clip and shows the Preview screen.
    pub fn request_preview(&mut self, job: JobId) -> Vec<Action> {
        self.fetch_preview(job, true)
    }

    fn fetch_preview(&mut self, job: JobId, show: bool) -> Vec<Action> {
        let have = match &self.preview {
            PreviewState::Ready(player) => player.job == job,
            PreviewState::Loading(loading) => *loading == job,
            _ => false,
        };
        if have {
            if show {
                self.screen = Screen::Preview;
            }
            return Vec::new();
        }
        let actions = self.command(PendingKind::Preview(job), |req| ClientMsg::Preview {
            req,
            job,
            max_side: PREVIEW_SIDE,
        });
        if !actions.is_empty() {
            self.preview = PreviewState::Loading(job);
            if show {
                self.screen = Screen::Preview;
            }
        }
        actions
    }

    /// Advances the playing clip by one frame; true when it moved.
    pub fn tick_player(&mut self) -> bool {
        if let PreviewState::Ready(player) = &mut self.preview
            && player.playing
            && player.frames.len() > 1
        {
            player.frame = (player.frame + 1) % player.frames.len();
            self.dirty = true;
            return true;
        }
        false
    }

    /// Milliseconds between frames while a clip plays on screen; `None` when nothing animates,
    /// so an idle console does not wake up.
    pub fn frame_interval_ms(&self) -> Option<u64> {
        match &self.preview {
            PreviewState::Ready(p)
                if p.playing && p.frames.len() > 1 && self.screen == Screen::Preview =>
            {
                Some(1000 / u64::from(p.fps.max(1)))
            }
            _ => None,
        }
    }

    /// Called when the Generate screen's submitted job reaches a final state, so the
    /// preview follows the operator's own work.
    pub fn generated_job(&self) -> Option<&JobView> {
        self.generate.last_job.and_then(|id| self.jobs.get(&id))
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum PendingKind {
    Submit,
    Preview(JobId),
    Other,
}

fn matches_filter(job: &Job, needle: &str) -> bool {
    job.params.user_prompt.to_lowercase().contains(needle)
        || job.user.to_string().to_lowercase().contains(needle)
        || job.id.to_string() == needle
        || job.state.name() == needle
        || job
            .backend
            .as_deref()
            .is_some_and(|b| b.to_lowercase().contains(needle))
}
