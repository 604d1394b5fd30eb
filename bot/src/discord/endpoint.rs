//! Interactions over HTTP instead of the gateway: Discord posts each interaction to the
//! app's Interactions Endpoint URL, which an HTTPS proxy forwards to
//! `discord.interactions_listen`. Every request is verified with the application's public key
//! (Ed25519 over timestamp + body; 401 when it does not verify, as Discord requires). A PING
//! is answered inline; anything else gets 202 at once and the handlers answer it through the
//! REST callback, as they do for gateway interactions, so files can go in that answer too.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serenity::all::{Http, Interaction};
use serenity::interactions_endpoint::Verifier;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::{App, DiscordError, handlers};

const SIGNATURE: &str = "x-signature-ed25519";
const TIMESTAMP: &str = "x-signature-timestamp";
/// Interactions are small; resolved users, members and attachments stay well under this.
const MAX_BODY: usize = 1024 * 1024;

/// A verifier for the application's public key, given as 64 hex characters.
pub(crate) fn verifier(public_key: &str) -> Result<Verifier, DiscordError> {
    let bad =
        || DiscordError::Endpoint("discord.public_key is not a valid Ed25519 public key".into());
    let hex = public_key.trim();
    if hex.len() != 64 {
        return Err(bad());
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = hex
            .get(2 * i..2 * i + 2)
            .and_then(|pair| u8::from_str_radix(pair, 16).ok())
            .ok_or_else(bad)?;
    }
    Verifier::try_new(key).map_err(|_| bad())
}

#[derive(Clone)]
struct Endpoint {
    app: Arc<App>,
    http: Arc<Http>,
    verifier: Verifier,
}

/// Binds `listen` and serves interactions until `stop`.
pub(crate) async fn listen(
    listen: SocketAddr,
    app: Arc<App>,
    http: Arc<Http>,
    verifier: Verifier,
    stop: CancellationToken,
) -> Result<(SocketAddr, JoinHandle<()>), DiscordError> {
    let tcp = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| DiscordError::Endpoint(format!("cannot listen on {listen}: {e}")))?;
    let addr = tcp
        .local_addr()
        .map_err(|e| DiscordError::Endpoint(format!("cannot listen on {listen}: {e}")))?;
    let state = Endpoint {
        app,
        http,
        verifier,
    };
    // Any path: the proxy in front decides which URL Discord is given.
    let router = Router::new()
        .route("/", post(receive))
        .route("/{*path}", post(receive))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state);
    let task = tokio::spawn(async move {
        let served = axum::serve(tcp, router)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "the interactions endpoint stopped");
        }
    });
    info!(%addr, "Discord interactions endpoint listening");
    Ok((addr, task))
}

async fn receive(State(endpoint): State<Endpoint>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let verified = match (header(SIGNATURE), header(TIMESTAMP)) {
        (Some(signature), Some(timestamp)) => endpoint
            .verifier
            .verify(signature, timestamp, &body)
            .is_ok(),
        _ => false,
    };
    if !verified {
        debug!("interaction with a missing or wrong signature refused");
        return (StatusCode::UNAUTHORIZED, "invalid request signature").into_response();
    }
    let interaction: Interaction = match serde_json::from_slice(&body) {
        Ok(interaction) => interaction,
        Err(e) => {
            // Where and what kind, never the message: serde quotes values, and the payload
            // holds the interaction token.
            debug!(line = e.line(), column = e.column(), kind = ?e.classify(), "unreadable interaction");
            return (StatusCode::BAD_REQUEST, "unreadable interaction").into_response();
        }
    };
    if let Interaction::Ping(_) = interaction {
        return axum::Json(serde_json::json!({"type": 1})).into_response();
    }
    tokio::spawn(handlers::interaction(
        endpoint.app.clone(),
        endpoint.http.clone(),
        interaction,
    ));
    StatusCode::ACCEPTED.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_key_must_be_64_hex_characters_of_a_real_key() {
        // A point on the curve, written as the developer portal shows public keys.
        let good = "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c";
        assert!(verifier(good).is_ok());
        for bad in [
            "",
            "zz",
            &good[..62],
            &format!("{good}00"),
            &good.replace('e', "g"),
        ] {
            assert!(verifier(bad).is_err(), "{bad}");
        }
    }
}
