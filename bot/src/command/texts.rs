//! What the bots say. Written once for every chat platform; each sentence is short and says
//! what happened and what the person can do next.

use std::time::Duration;

use loopsmith_engine::protocol::JobState;

use super::options::OPTIONS;

/// The first reply to a request, sent at once.
pub fn queued(position: Option<u32>) -> String {
    match position {
        Some(1) | None => "Got it — your sticker is next in line.".to_string(),
        Some(n) => format!("Got it — you're number {n} in the queue."),
    }
}

/// A one-line progress report, for editing the first reply while the job runs.
pub fn progress(state: &JobState, position: Option<u32>, eta: Option<Duration>) -> String {
    let eta = eta
        .map(|d| format!(" · about {} left", human(d)))
        .unwrap_or_default();
    match state {
        JobState::Queued => match position {
            Some(n) if n > 1 => format!("Waiting — number {n} in the queue{eta}"),
            _ => format!("Waiting — next in line{eta}"),
        },
        JobState::Running { progress, .. } => format!(
            "{} {:>3}% rendering{eta}",
            bar(*progress),
            (progress * 100.0).round()
        ),
        JobState::Encoding { .. } => format!("{} making the sticker file", bar(1.0)),
        JobState::Done { .. } => "Done!".to_string(),
        JobState::Failed { reason, .. } => reason.clone(),
        JobState::Cancelled { .. } => "Cancelled.".to_string(),
    }
}

/// The final message about a job that did not produce a sticker.
pub fn failed(reason: &str, retryable: bool) -> String {
    if retryable {
        format!("Sorry, that didn't work: {reason} You can try again.")
    } else {
        format!("Sorry, that didn't work: {reason}")
    }
}

/// Ten cells, filled in proportion.
pub fn bar(fraction: f32) -> String {
    let filled = (fraction.clamp(0.0, 1.0) * 10.0).round() as usize;
    format!("{}{}", "▰".repeat(filled), "▱".repeat(10 - filled))
}

/// "12 s", "3 min", "1 h 5 min".
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{} s", s.max(1)),
        60..=3599 => format!("{} min", s.div_ceil(60)),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// /help: what to type, the options and their limits, and the styles on offer.
pub fn help(styles: &[&str]) -> String {
    let options: Vec<String> = OPTIONS
        .iter()
        .map(|(name, what)| format!("{name} — {what}"))
        .collect();
    format!(
        "Send me a description and I'll make a looping video sticker of it.\n\n\
         Examples:\n\
         a red ball bouncing on a blue background\n\
         a sleepy cat waving -style anime -ar 9:16\n\
         fireworks over a lake -motion 4 -seed 42 -neg text, blurry\n\n\
         Options:\n{}\n\n\
         Styles: {}.",
        options.join("\n"),
        styles.join(", ")
    )
}
