//! The one entry point from a rendered clip to the files a job asked for.

use std::path::Path;

use loopsmith_protocol::{Artifact, OutputKind, Params};

use crate::backend::Clip;
use crate::media::discord::{self, DiscordStickerOptions};
use crate::media::mp4::{self, AnimationLimits};
use crate::media::sticker::{self, StickerOptions, TELEGRAM_EMOJI, TELEGRAM_STICKER};
use crate::media::{Encoder, Frames, MediaError, looping};

/// Makes every platform's file from one clip, each inside its platform's limits.
#[derive(Debug, Default, Clone, Copy)]
pub struct MediaEncoder;

impl Encoder for MediaEncoder {
    fn encode(
        &self,
        clip: &Clip,
        params: &Params,
        dir: &Path,
    ) -> Result<Vec<Artifact>, MediaError> {
        let mut frames = Frames::from_clip(clip);
        frames.validate()?;
        if params.seamless_loop {
            frames = looping::seamless(&frames);
        }
        let mut kinds = params.outputs.clone();
        kinds.sort();
        kinds.dedup();
        // Independent encoders run side by side: libvpx keeps two cores busy only part of the
        // time, and the APNG/GIF and H.264 encoders are single-threaded.
        let results: Vec<Result<Artifact, MediaError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = kinds
                .iter()
                .map(|&kind| {
                    let frames = &frames;
                    scope.spawn(move || make(kind, frames, params, dir))
                })
                .collect();
            handles
                .into_iter()
                .zip(&kinds)
                .map(|(handle, kind)| {
                    handle.join().unwrap_or_else(|_| {
                        Err(MediaError::Encoder {
                            codec: "media",
                            message: format!("the {kind} encoder panicked"),
                        })
                    })
                })
                .collect()
        });
        results.into_iter().collect()
    }
}

fn make(
    kind: OutputKind,
    frames: &Frames,
    params: &Params,
    dir: &Path,
) -> Result<Artifact, MediaError> {
    let sticker_options = StickerOptions {
        fit: params.fit,
        timing: params.timing,
    };
    let discord_options = DiscordStickerOptions {
        fit: params.fit,
        timing: params.timing,
    };
    let (name, bytes) = match kind {
        OutputKind::WebmSticker => (
            "sticker.webm",
            sticker::encode_sticker(frames, &TELEGRAM_STICKER, sticker_options)?.bytes,
        ),
        OutputKind::WebmEmoji => (
            "emoji.webm",
            sticker::encode_sticker(frames, &TELEGRAM_EMOJI, sticker_options)?.bytes,
        ),
        OutputKind::Mp4 => (
            "clip.mp4",
            mp4::encode_animation(frames, &AnimationLimits::TELEGRAM)?,
        ),
        OutputKind::Apng => (
            "sticker.png",
            discord::encode_apng(frames, &discord_options)?,
        ),
        OutputKind::Gif => (
            "sticker.gif",
            discord::encode_gif(frames, &discord_options)?,
        ),
    };
    let path = dir.join(name);
    // Written under a temporary name and renamed, so a crash never leaves half a sticker
    // under the real name.
    let partial = dir.join(format!(".{name}.partial"));
    let io = |source| MediaError::Io {
        path: path.display().to_string(),
        source,
    };
    std::fs::write(&partial, &bytes).map_err(io)?;
    std::fs::rename(&partial, &path).map_err(io)?;
    Ok(Artifact {
        kind,
        path,
        bytes: bytes.len() as u64,
    })
}
