//! The HTTP interactions endpoint: Discord's signed POSTs instead of the gateway.

use loopsmith_fakes::discord::{APPLICATION_ID, CommandOption, FakeDiscord, Member};

use super::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_interactions_endpoint_verifies_and_answers_without_the_gateway() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let public: String = key
        .verifying_key()
        .to_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let fake = FakeDiscord::new(&token());
    fake.set_verify_key(&public);
    let servers = fake.serve().await.expect("fake Discord");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut serve = Serve::start(
        dir.path(),
        &servers.rest_url(),
        &[
            ("LOOPSMITH_DISCORD__INTERACTIONS_LISTEN", listen.clone()),
            ("LOOPSMITH_DISCORD__PUBLIC_KEY", public.clone()),
        ],
    );
    let commands_path = format!("/applications/{APPLICATION_ID}/guilds/{GUILD}/commands");
    let calls = fake
        .wait_for(QUICK, |calls| {
            calls.iter().any(|c| c.is("PUT", &commands_path, ""))
        })
        .await
        .unwrap_or_else(|e| panic!("commands never registered: {e}\n{}", serve.log()));
    assert!(
        calls
            .iter()
            .any(|c| c.is("GET", "/oauth2/applications/@me", ""))
    );
    let url = format!("http://{listen}/interactions");
    let client = reqwest::Client::new();
    // The endpoint listens before the commands are registered, so it is up by now.
    let ping = fake.ping_payload();
    let response = client.post(&url).body("{}").send().await.expect("answers");
    assert_eq!(
        response.status(),
        reqwest::StatusCode::UNAUTHORIZED,
        "unsigned is refused"
    );

    let response = post_signed(&client, &url, Some(&key), &ping).await;
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body, serde_json::json!({"type": 1}));
    // Signed with another key, or over another body: refused.
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[8u8; 32]);
    let response = post_signed(&client, &url, Some(&stranger), &ping).await;
    assert_eq!(response.status(), reqwest::StatusCode::UNAUTHORIZED);
    let response = post_signed(&client, &url, None, &ping).await;
    assert_eq!(response.status(), reqwest::StatusCode::UNAUTHORIZED);

    // A command: accepted at once, answered through the REST callback.
    let alice = Member::new(ALICE, "alice");
    let (payload, itoken) = fake.command_payload(GUILD, &alice, "styles", &[]);
    let response = post_signed(&client, &url, Some(&key), &payload).await;
    assert_eq!(response.status(), reqwest::StatusCode::ACCEPTED);
    let text = private_answer(&fake, &serve, &itoken).await;
    assert!(text.starts_with("Styles:\n• none"), "{text}");

    // A sticker, end to end: the edits go to the application's webhook, whose id came from
    // the API since there is no READY.
    let (payload, itoken) = fake.command_payload(
        GUILD,
        &alice,
        "sticker",
        &[CommandOption::string(
            "prompt",
            "a blue cube spinning -duration 4",
        )],
    );
    let response = post_signed(&client, &url, Some(&key), &payload).await;
    assert_eq!(response.status(), reqwest::StatusCode::ACCEPTED);
    let (clip, _) = delivery(&fake, &serve, &itoken).await;
    assert!(
        clip.path
            .starts_with(&format!("/webhooks/{APPLICATION_ID}/")),
        "{}",
        clip.path
    );
    check_clip(&clip);
    assert!(
        fake.gateway_ops().is_empty(),
        "no gateway session in endpoint mode"
    );

    let log = serve.stop().await;
    assert!(
        log.contains("Discord bot is answering interactions posted to"),
        "{log}"
    );
    assert!(
        !log.contains(&token_secret()),
        "the bot token leaked:\n{log}"
    );
    assert!(
        !log.contains("itoken-"),
        "an interaction token leaked:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_key_of_another_application_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeDiscord::new(&token());
    fake.set_verify_key(&"ab".repeat(32));
    let servers = fake.serve().await.expect("fake Discord");
    let ours = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let public: String = ours
        .verifying_key()
        .to_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let serve = Serve::start(
        dir.path(),
        &servers.rest_url(),
        &[
            (
                "LOOPSMITH_DISCORD__INTERACTIONS_LISTEN",
                "127.0.0.1:0".into(),
            ),
            ("LOOPSMITH_DISCORD__PUBLIC_KEY", public),
        ],
    );
    let (code, log) = exited(serve).await;
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("discord.public_key is not this application's public key"),
        "{log}"
    );
}
