//! Webhook mode: Telegram posts updates to `telegram.webhook_url`, which a reverse proxy
//! forwards to `telegram.webhook_listen`. Each request must carry the secret token given to
//! `setWebhook`; it is checked in constant time before teloxide sees the body (teloxide's own
//! check is a plain comparison).

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::IntoResponse;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use teloxide::update_listeners::UpdateListener;
use teloxide::update_listeners::webhooks::{Options, axum_to_router};
use tokio::task::JoinHandle;
use tracing::warn;

use super::{Redactor, TelegramError, Tg};

const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// The webhook's secret token, derived from the bot token so it survives restarts without a
/// second secret to manage; a hash cannot be turned back into the token. 64 hex characters fit
/// the Bot API's rule (1–256 of `A-Z a-z 0-9 _ -`).
pub fn secret_token(token: &SecretString) -> String {
    let digest = Sha256::digest(format!("loopsmith webhook\n{}", token.expose_secret()));
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a request's secret header matches, in time independent of where they differ.
pub fn secret_matches(header: Option<&[u8]>, secret: &str) -> bool {
    header.is_some_and(|h| bool::from(h.ct_eq(secret.as_bytes())))
}

/// Binds `listen`, registers the webhook, and serves it until the listener is stopped.
pub async fn listen(
    bot: Tg,
    url: url::Url,
    listen: SocketAddr,
    secret: String,
    redactor: Redactor,
) -> Result<(impl UpdateListener<Err = Infallible> + Send, JoinHandle<()>), TelegramError> {
    // Bound before setWebhook, so Telegram's first post finds the port open.
    let tcp = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| TelegramError::Webhook(format!("cannot listen on {listen}: {e}")))?;
    let options = Options::new(listen, url).secret_token(secret.clone());
    let (listener, stopped, router) = axum_to_router(bot, options).await.map_err(|e| {
        TelegramError::Webhook(format!("setWebhook failed: {}", redactor.chain(&e)))
    })?;
    let router = router.layer(axum::middleware::from_fn(
        move |request: Request, next: Next| {
            let secret = secret.clone();
            async move {
                let header = request.headers().get(SECRET_HEADER).map(|v| v.as_bytes());
                if secret_matches(header, &secret) {
                    next.run(request).await
                } else {
                    warn!("webhook request without the right secret token refused");
                    StatusCode::UNAUTHORIZED.into_response()
                }
            }
        },
    ));
    let server = tokio::spawn(async move {
        let served: Result<(), std::io::Error> = axum::serve(tcp, router)
            .with_graceful_shutdown(stopped)
            .await;
        if let Err(e) = served {
            warn!(error = %e, "the webhook server stopped");
        }
    });
    Ok((listener, server))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_stable_well_formed_and_not_the_token() {
        let token = SecretString::from("1:abc");
        let secret = secret_token(&token);
        assert_eq!(secret, secret_token(&SecretString::from("1:abc")));
        assert_ne!(secret, secret_token(&SecretString::from("1:abd")));
        assert_eq!(secret.len(), 64);
        assert!(secret.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(!secret.contains("abc"));
    }

    #[test]
    fn only_the_exact_secret_matches() {
        assert!(secret_matches(Some(b"s3cret"), "s3cret"));
        assert!(!secret_matches(Some(b"s3cre"), "s3cret"));
        assert!(!secret_matches(Some(b"s3cret!"), "s3cret"));
        assert!(!secret_matches(Some(b""), "s3cret"));
        assert!(!secret_matches(None, "s3cret"));
    }
}
