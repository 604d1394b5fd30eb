//! Length-prefixed JSON frames over any async byte stream.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest frame either side accepts. A snapshot of 10k jobs is about 8 MB of JSON; a
/// preview is well under 2 MB. Anything larger is a bug or an attack, refused before it is
/// buffered.
pub const MAX_FRAME_BYTES: usize = 32 * 1024 * 1024;

/// Why a frame could not be read or written. Every malformed input ends here, never in a panic.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("connection failed")]
    Io(#[from] std::io::Error),
    #[error("the peer sent a {len}-byte frame; the limit is {max}")]
    TooLarge { len: usize, max: usize },
    #[error("the stream ended in the middle of a frame")]
    Truncated,
    #[error("the peer sent a frame that is not a valid message: {0}")]
    Malformed(String),
}

/// Serialises one message to JSON bytes.
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, FrameError> {
    serde_json::to_vec(message).map_err(|e| FrameError::Malformed(e.to_string()))
}

/// Parses one message from a frame's bytes.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FrameError> {
    serde_json::from_slice(bytes).map_err(|e| FrameError::Malformed(e.to_string()))
}

/// Writes one message as a frame and flushes it.
pub async fn write_frame<W, T>(writer: &mut W, message: &T) -> Result<(), FrameError>
where
    W: AsyncWrite + Unpin,
    T: Serialize,
{
    let body = encode(message)?;
    if body.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge {
            len: body.len(),
            max: MAX_FRAME_BYTES,
        });
    }
    // One buffer, one write: a frame is never interleaved with another writer's bytes.
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    writer.write_all(&out).await?;
    writer.flush().await?;
    Ok(())
}

/// Reads one message. `Ok(None)` is a clean end of stream between frames.
pub async fn read_frame<R, T>(reader: &mut R) -> Result<Option<T>, FrameError>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    read_frame_limited(reader, MAX_FRAME_BYTES).await
}

/// [`read_frame`] with an explicit size limit (the handshake uses a small one, so an
/// unauthenticated peer cannot make the server allocate much).
pub async fn read_frame_limited<R, T>(reader: &mut R, max: usize) -> Result<Option<T>, FrameError>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = reader.read(&mut len[got..]).await?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(FrameError::Truncated)
            };
        }
        got += n;
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            FrameError::Truncated
        } else {
            FrameError::Io(e)
        }
    })?;
    decode(&body).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_back_to_back() {
        let (mut a, mut b) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            for n in 0..100u32 {
                write_frame(&mut a, &vec![n; n as usize])
                    .await
                    .expect("write");
            }
        });
        for n in 0..100u32 {
            let got: Vec<u32> = read_frame(&mut b).await.expect("read").expect("frame");
            assert_eq!(got, vec![n; n as usize]);
        }
        writer.await.expect("writer");
        let end: Option<Vec<u32>> = read_frame(&mut b).await.expect("clean end");
        assert_eq!(end, None);
    }

    #[tokio::test]
    async fn an_oversized_length_is_refused_before_reading_the_body() {
        let bytes = (u32::MAX).to_be_bytes();
        let err = read_frame::<_, serde_json::Value>(&mut &bytes[..])
            .await
            .expect_err("too large");
        assert!(matches!(err, FrameError::TooLarge { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_torn_frame_is_truncated_not_a_clean_end() {
        let mut bytes = 10u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(b"{\"a\"");
        let err = read_frame::<_, serde_json::Value>(&mut &bytes[..])
            .await
            .expect_err("truncated");
        assert!(matches!(err, FrameError::Truncated), "{err}");
        let half_len = [0u8, 0];
        let err = read_frame::<_, serde_json::Value>(&mut &half_len[..])
            .await
            .expect_err("truncated length");
        assert!(matches!(err, FrameError::Truncated), "{err}");
    }

    #[tokio::test]
    async fn garbage_is_a_malformed_error() {
        let mut bytes = 3u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(b"\xff{]");
        let err = read_frame::<_, serde_json::Value>(&mut &bytes[..])
            .await
            .expect_err("malformed");
        assert!(matches!(err, FrameError::Malformed(_)), "{err}");
    }
}
