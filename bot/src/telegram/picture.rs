//! A photo (or an image sent as a file) with a caption, in a private chat: image-to-video.
//! The picture is fetched with getFile and checked — size before the download, then type and
//! dimensions from its bytes — before the engine sees it.

use futures_util::StreamExt;
use loopsmith_engine::image_input::{self, ImageError, MAX_IMAGE_BYTES};
use loopsmith_engine::protocol::UserKey;
use teloxide::net::Download;
use teloxide::prelude::*;
use teloxide::types::FileMeta;
use tracing::{info, warn};

use super::App;
use super::handlers::{prompt, say};
use crate::command::texts;

/// The picture a message carries: the largest size of a photo, or a document sent with an
/// image type (users do that to skip Telegram's recompression). Other documents: `None`.
pub(crate) fn picture_of(msg: &Message) -> Option<FileMeta> {
    if let Some(sizes) = msg.photo() {
        return sizes
            .iter()
            .max_by_key(|p| p.width as u64 * p.height as u64)
            .map(|p| p.file.clone());
    }
    msg.document()
        .filter(|d| {
            d.mime_type
                .as_ref()
                .is_some_and(|m| m.type_().as_str() == "image")
        })
        .map(|d| d.file.clone())
}

pub(crate) async fn animate(
    app: &std::sync::Arc<App>,
    msg: &Message,
    file: FileMeta,
    user: UserKey,
    origin: String,
) {
    let chat = msg.chat.id;
    if !app.engine.takes_image() {
        say(
            app,
            chat,
            &loopsmith_engine::Error::NoImageBackend.to_string(),
        )
        .await;
        return;
    }
    let caption = msg.caption().unwrap_or_default();
    if caption.trim().is_empty() {
        say(app, chat, &texts::picture_needs_caption()).await;
        return;
    }
    // Telegram states the size up front; a picture too large is refused before downloading.
    if file.size as usize > MAX_IMAGE_BYTES {
        let e = ImageError::TooLarge {
            mib: file.size as f64 / (1024.0 * 1024.0),
        };
        info!(user = %user, error = %e, "picture refused");
        say(app, chat, &e.to_string()).await;
        return;
    }
    let bytes = match fetch(app, &file).await {
        Ok(bytes) => bytes,
        Err(Fetch::TooLarge(len)) => {
            let e = ImageError::TooLarge {
                mib: len as f64 / (1024.0 * 1024.0),
            };
            say(app, chat, &e.to_string()).await;
            return;
        }
        Err(Fetch::Failed(why)) => {
            warn!(user = %user, error = %why, "could not fetch the picture");
            say(app, chat, &texts::picture_unreachable()).await;
            return;
        }
    };
    let image = match image_input::inspect(bytes) {
        Ok(image) => image,
        Err(e) => {
            info!(user = %user, error = %e, "picture refused");
            say(app, chat, &e.to_string()).await;
            return;
        }
    };
    info!(
        user = %user,
        mime = %image.info.mime,
        width = image.info.width,
        height = image.info.height,
        bytes = image.info.bytes,
        "animating a picture"
    );
    prompt(app, chat, Some(msg.id), user, origin, caption, Some(image)).await;
}

enum Fetch {
    /// The download ran past the cap (Telegram's stated size was wrong).
    TooLarge(usize),
    Failed(String),
}

/// getFile, then the download, stopped as soon as it passes the cap.
async fn fetch(app: &App, meta: &FileMeta) -> Result<Vec<u8>, Fetch> {
    let file = app
        .bot
        .get_file(meta.id.clone())
        .await
        .map_err(|e| Fetch::Failed(app.redactor.chain(&e)))?;
    let mut stream = app.bot.download_file_stream(&file.path);
    let mut bytes = Vec::with_capacity(meta.size as usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Fetch::Failed(app.redactor.chain(&e)))?;
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_IMAGE_BYTES {
            return Err(Fetch::TooLarge(bytes.len()));
        }
    }
    Ok(bytes)
}
