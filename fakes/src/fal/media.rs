//! The fake's media host: result files served whole, chunked, dripped, stalled or redirected.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};

/// A file on the media host.
#[derive(Debug, Clone, PartialEq)]
pub enum Media {
    /// Served whole with Content-Length.
    File { bytes: Bytes, content_type: String },
    /// Served in chunks without Content-Length (so only counting catches its size).
    Chunked { bytes: Bytes, content_type: String },
    /// One chunk every `every`, forever.
    Drip { chunk: Bytes, every: Duration },
    /// The first bytes, then nothing, forever.
    Stall { first: Bytes },
    /// A 302 to this location.
    Redirect { location: String },
}

pub(super) fn serve_media(media: Option<Media>) -> Response {
    let with_type = |content_type: &str, body: Body| {
        let mut response = Response::new(body);
        if let Ok(value) = HeaderValue::from_str(content_type) {
            response.headers_mut().insert("content-type", value);
        }
        response
    };
    match media {
        None => StatusCode::NOT_FOUND.into_response(),
        Some(Media::File {
            bytes,
            content_type,
        }) => with_type(&content_type, Body::from(bytes)),
        Some(Media::Chunked {
            bytes,
            content_type,
        }) => {
            let chunks: Vec<Result<Bytes, std::io::Error>> = bytes
                .chunks(16 * 1024)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            with_type(&content_type, Body::from_stream(stream::iter(chunks)))
        }
        Some(Media::Drip { chunk, every }) => {
            let drip = stream::unfold(chunk, move |chunk| async move {
                tokio::time::sleep(every).await;
                Some((Ok::<_, std::io::Error>(chunk.clone()), chunk))
            });
            with_type("video/mp4", Body::from_stream(drip))
        }
        Some(Media::Stall { first }) => {
            let stalled = stream::iter([Ok::<_, std::io::Error>(first)]).chain(stream::pending());
            with_type("video/mp4", Body::from_stream(stalled))
        }
        Some(Media::Redirect { location }) => {
            let mut response = StatusCode::FOUND.into_response();
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert("location", value);
            }
            response
        }
    }
}
