//! A tracing layer that keeps the latest log lines and streams new ones to attached consoles.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use loopsmith_protocol::control::{LogLevel, LogLine};
use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// Lines kept for a console that attaches later.
const KEEP: usize = 2000;
const BROADCAST: usize = 4096;

/// The log lines a console sees: the latest [`KEEP`] and every new one.
#[derive(Debug, Clone)]
pub struct LogTap {
    inner: Arc<TapInner>,
}

#[derive(Debug)]
struct TapInner {
    recent: Mutex<VecDeque<LogLine>>,
    tx: broadcast::Sender<LogLine>,
}

impl Default for LogTap {
    fn default() -> Self {
        LogTap {
            inner: Arc::new(TapInner {
                recent: Mutex::new(VecDeque::with_capacity(KEEP)),
                tx: broadcast::channel(BROADCAST).0,
            }),
        }
    }
}

impl LogTap {
    pub fn new() -> Self {
        LogTap::default()
    }

    /// The layer to install in the process's subscriber.
    pub fn layer(&self) -> LogTapLayer {
        LogTapLayer { tap: self.clone() }
    }

    pub fn push(&self, line: LogLine) {
        {
            let mut recent = self
                .inner
                .recent
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if recent.len() == KEEP {
                recent.pop_front();
            }
            recent.push_back(line.clone());
        }
        // Nobody attached is fine.
        let _ = self.inner.tx.send(line);
    }

    /// The kept lines, oldest first, and a receiver for every later one, taken together so no
    /// line falls between them.
    pub fn subscribe(&self) -> (Vec<LogLine>, broadcast::Receiver<LogLine>) {
        let recent = self
            .inner
            .recent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let rx = self.inner.tx.subscribe();
        (recent.iter().cloned().collect(), rx)
    }
}

/// Feeds a [`LogTap`] from `tracing`. Span fields (`job`, `user`) are appended to each line,
/// as the fmt layer does, so a console line says which job it is about.
#[derive(Debug)]
pub struct LogTapLayer {
    tap: LogTap,
}

/// A span's fields, formatted once when the span is made.
struct SpanFields(String);

#[derive(Default)]
struct Collect {
    message: String,
    fields: String,
}

impl Visit for Collect {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

fn level(level: &Level) -> LogLevel {
    match *level {
        Level::TRACE => LogLevel::Trace,
        Level::DEBUG => LogLevel::Debug,
        Level::INFO => LogLevel::Info,
        Level::WARN => LogLevel::Warn,
        Level::ERROR => LogLevel::Error,
    }
}

impl<S> tracing_subscriber::Layer<S> for LogTapLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut collect = Collect::default();
        attrs.record(&mut collect);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(collect.fields));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut collect = Collect::default();
        values.record(&mut collect);
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<SpanFields>()
        {
            fields.0.push_str(&collect.fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut collect = Collect::default();
        event.record(&mut collect);
        let mut text = collect.message;
        text.push_str(&collect.fields);
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<SpanFields>() {
                    text.push_str(&fields.0);
                }
            }
        }
        self.tap.push(LogLine {
            at_ms: crate::now_ms(),
            level: level(event.metadata().level()),
            target: event.metadata().target().to_string(),
            text,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn events_become_lines_with_their_span_fields() {
        let tap = LogTap::new();
        let (_, mut rx) = tap.subscribe();
        let subscriber = tracing_subscriber::registry().with(tap.layer());
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("job", job = 7, user = "telegram:1");
            let _entered = span.enter();
            tracing::warn!(attempt = 2, "slow render");
        });
        let line = rx.try_recv().expect("a line was broadcast");
        assert_eq!(line.level, LogLevel::Warn);
        assert_eq!(line.text, "slow render attempt=2 job=7 user=telegram:1");
        let (recent, _) = tap.subscribe();
        assert_eq!(recent, vec![line]);
    }

    #[test]
    fn only_the_latest_lines_are_kept() {
        let tap = LogTap::new();
        for n in 0..KEEP + 5 {
            tap.push(LogLine {
                at_ms: n as u64,
                level: LogLevel::Info,
                target: "t".into(),
                text: n.to_string(),
            });
        }
        let (recent, _) = tap.subscribe();
        assert_eq!(recent.len(), KEEP);
        assert_eq!(recent[0].at_ms, 5);
    }
}
