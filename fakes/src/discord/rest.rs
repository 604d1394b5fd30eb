//! The REST side: `/api/v10/...` routes serenity calls, JSON or multipart bodies
//! (`payload_json` plus `files[n]`, or a sticker's `file`), answers in Discord's shapes and
//! errors as `{"code":…,"message":…}`.

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::{Value, json};

use super::wire::{self, user};
use super::{
    APPLICATION_ID, CREATE_GUILD_EXPRESSIONS, Call, Failure, FakeDiscord, STICKER_MAX_BYTES,
    STICKER_SIDE, STICKER_SLOTS, Sticker, Upload, object,
};

/// The largest body the fake reads; Discord's own limit per request is far lower.
const MAX_BODY: usize = 64 * 1024 * 1024;

pub fn router(fake: FakeDiscord) -> axum::Router {
    axum::Router::new()
        .route("/api/v10/{*path}", any(handle))
        .route("/attachments/{*path}", get(attachment))
        .with_state(fake)
}

fn error(status: u16, code: u32, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let body = json!({"code": code, "message": message, "errors": {}});
    (status, axum::Json(body)).into_response()
}

fn ok(value: Value) -> Response {
    (StatusCode::OK, axum::Json(value)).into_response()
}

async fn attachment(State(fake): State<FakeDiscord>, Path(path): Path<String>) -> Response {
    match fake.state().attachments.get(&path).cloned() {
        Some(bytes) => (StatusCode::OK, bytes).into_response(),
        None => error(404, 0, "404: Not Found"),
    }
}

async fn handle(
    State(fake): State<FakeDiscord>,
    Path(path): Path<String>,
    method: Method,
    headers: HeaderMap,
    request: Request,
) -> Response {
    let path = format!("/{path}");
    let interaction_route = path.starts_with("/interactions/") || path.starts_with("/webhooks/");
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let expected = format!("Bot {}", fake.shared.token);
    // Interaction tokens authorise their own routes; everything else needs the bot token.
    let authorised = match auth {
        Some(auth) => auth == expected,
        None => interaction_route,
    };
    if !authorised {
        return error(401, 0, "401: Unauthorized");
    }
    let call = match decode(method.as_str(), path, &headers, request).await {
        Ok(call) => call,
        Err(why) => return error(400, 50109, &why),
    };
    let failure = {
        let mut state = fake.state();
        state.calls.push(call.clone());
        let expired = call.path.starts_with("/webhooks/")
            && call
                .interaction_token()
                .is_some_and(|t| state.expired.contains(t));
        if expired {
            drop(state);
            fake.changed();
            return error(401, 50027, "Invalid Webhook Token");
        }
        let at = state
            .failures
            .iter()
            .position(|(part, _)| call.path.contains(part.as_str()));
        at.and_then(|i| state.failures.remove(i)).map(|(_, f)| f)
    };
    let response = match failure {
        Some(Failure {
            status,
            code,
            message,
        }) => error(status, code, &message),
        None => answer(&fake, &call),
    };
    // Only now: a test woken by this call also sees what it changed (the stored message a
    // button is then pressed on, a created sticker).
    fake.changed();
    response
}

/// Reads a JSON or multipart body into a [`Call`].
async fn decode(
    method: &str,
    path: String,
    headers: &HeaderMap,
    request: Request,
) -> Result<Call, String> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut call = Call {
        method: method.to_string(),
        path,
        body: Value::Null,
        files: Vec::new(),
        at: std::time::Instant::now(),
    };
    if content_type.starts_with("multipart/form-data") {
        let mut multipart = Multipart::from_request(request, &())
            .await
            .map_err(|e| format!("bad multipart body: {e}"))?;
        let mut fields = serde_json::Map::new();
        while let Some(field) = multipart
            .next_field()
            .await
            .map_err(|e| format!("bad multipart body: {e}"))?
        {
            let part = field.name().unwrap_or_default().to_string();
            let file_name = field.file_name().map(str::to_string);
            let bytes = field
                .bytes()
                .await
                .map_err(|e| format!("bad multipart part {part}: {e}"))?;
            if part == "payload_json" {
                call.body = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("payload_json is not JSON: {e}"))?;
            } else if file_name.is_some() {
                call.files.push(Upload {
                    part,
                    file_name,
                    bytes,
                });
            } else {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                fields.insert(part, Value::String(text));
            }
        }
        if call.body.is_null() {
            call.body = Value::Object(fields);
        }
    } else {
        let body = axum::body::to_bytes(request.into_body(), MAX_BODY)
            .await
            .map_err(|e| format!("unreadable body: {e}"))?;
        if !body.is_empty() {
            call.body =
                serde_json::from_slice(&body).map_err(|e| format!("can't parse JSON: {e}"))?;
        }
    }
    Ok(call)
}

fn answer(fake: &FakeDiscord, call: &Call) -> Response {
    let parts: Vec<&str> = call.path.split('/').skip(1).collect();
    match (call.method.as_str(), parts.as_slice()) {
        ("GET", ["gateway"]) => ok(json!({"url": fake.state().gateway_url})),
        ("GET", ["gateway", "bot"]) => ok(json!({
            "url": fake.state().gateway_url,
            "shards": 1,
            "session_start_limit": {
                "total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1
            },
        })),
        ("GET", ["users", "@me"]) => ok(user(APPLICATION_ID, "loopsmith", true)),
        ("GET", ["oauth2", "applications", "@me"]) => ok(json!({
            "id": APPLICATION_ID.to_string(),
            "name": "loopsmith",
            "icon": null,
            "description": "",
            "bot_public": false,
            "bot_require_code_grant": false,
            "verify_key": fake.state().verify_key,
            "team": null,
            "flags": 0,
        })),
        ("PUT", ["applications", _, "commands"])
        | ("PUT", ["applications", _, "guilds", _, "commands"]) => commands(fake, call),
        ("POST", ["interactions", _, token, "callback"]) => callback(fake, token, call),
        ("PATCH", ["webhooks", _, token, "messages", "@original"]) => {
            let mut state = fake.state();
            let next = state.next_id + 1;
            state.next_id = next;
            let old = state.messages.get(*token).cloned();
            let message = edited(old, next, call);
            state.messages.insert(token.to_string(), message.clone());
            ok(message)
        }
        ("POST", ["channels", _, "messages"]) => {
            let id = fake.next_id();
            ok(edited(None, id, call))
        }
        ("POST", ["webhooks", _, _]) => {
            let id = fake.next_id();
            ok(edited(None, id, call))
        }
        ("POST", ["guilds", guild, "stickers"]) => match guild.parse::<u64>() {
            Ok(guild) => create_sticker(fake, guild, call),
            Err(_) => error(404, 10004, "Unknown Guild"),
        },
        _ => error(404, 0, "404: Not Found"),
    }
}

/// Registered commands come back with ids, as Discord answers a bulk overwrite.
fn commands(fake: &FakeDiscord, call: &Call) -> Response {
    let Some(list) = call.body.as_array() else {
        return error(
            400,
            50035,
            "Invalid Form Body: expected an array of commands",
        );
    };
    let out: Vec<Value> = list
        .iter()
        .map(|c| {
            let mut c = object(c.clone());
            c.insert("id".into(), json!(fake.next_id().to_string()));
            c.insert("application_id".into(), json!(APPLICATION_ID.to_string()));
            c.insert("version".into(), json!("1"));
            c.entry("type").or_insert(json!(1));
            c.entry("default_member_permissions").or_insert(Value::Null);
            c.entry("options").or_insert(json!([]));
            Value::Object(c)
        })
        .collect();
    ok(Value::Array(out))
}

/// An interaction's first answer. Discord answers 204; what it said becomes the original
/// response that later edits change and buttons are pressed on.
fn callback(fake: &FakeDiscord, token: &str, call: &Call) -> Response {
    let kind = call.body["type"].as_u64().unwrap_or(0);
    if !matches!(kind, 1 | 4..=9) {
        return error(
            400,
            50035,
            "Invalid Form Body: unknown interaction response type",
        );
    }
    if matches!(kind, 4 | 5 | 7) {
        let id = fake.next_id();
        let data = &call.body["data"];
        let synthetic = Call {
            body: data.clone(),
            ..call.clone()
        };
        let mut state = fake.state();
        let old = if kind == 7 {
            state.messages.get(token).cloned()
        } else {
            None
        };
        state
            .messages
            .insert(token.to_string(), edited(old, id, &synthetic));
    }
    StatusCode::NO_CONTENT.into_response()
}

/// A message after a create or edit: fields the call sets replace the old ones; uploaded
/// files become attachments.
fn edited(old: Option<Value>, id: u64, call: &Call) -> Value {
    let mut message = old.unwrap_or_else(|| wire::message(id, "", &[], &json!([])));
    if let Some(content) = call.body.get("content") {
        message["content"] = content.clone();
    }
    if let Some(components) = call.body.get("components") {
        message["components"] = components.clone();
    }
    if !call.files.is_empty() {
        let attachments: Vec<Value> = call
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let name = f.file_name.clone().unwrap_or_else(|| format!("file{i}"));
                wire::attachment(id + i as u64, &name, f.bytes.len())
            })
            .collect();
        message["attachments"] = Value::Array(attachments);
    }
    message
}

/// `POST /guilds/{id}/stickers`, with Discord's checks: the bot's permission, free slots,
/// the file's size and its 320×320 canvas.
fn create_sticker(fake: &FakeDiscord, guild: u64, call: &Call) -> Response {
    let Some(file) = call.files.iter().find(|f| f.part == "file") else {
        return error(400, 50035, "Invalid Form Body: file is required");
    };
    let text = |field: &str| call.body[field].as_str().unwrap_or_default().to_string();
    let (name, tags, description) = (text("name"), text("tags"), text("description"));
    if !(2..=30).contains(&name.chars().count()) {
        return error(
            400,
            50035,
            "Invalid Form Body: name must be 2 to 30 characters",
        );
    }
    if !(2..=200).contains(&tags.chars().count()) {
        return error(
            400,
            50035,
            "Invalid Form Body: tags must be 2 to 200 characters",
        );
    }
    if description.chars().count() == 1 || description.chars().count() > 100 {
        return error(
            400,
            50035,
            "Invalid Form Body: description must be 2 to 100 characters",
        );
    }
    let mut state = fake.state();
    let permissions = state
        .bot_permissions
        .get(&guild)
        .copied()
        .unwrap_or(super::ALL_PERMISSIONS);
    if permissions & CREATE_GUILD_EXPRESSIONS == 0 {
        return error(403, 50013, "Missing Permissions");
    }
    if state.stickers.get(&guild).map_or(0, Vec::len) >= STICKER_SLOTS {
        return error(
            400,
            30039,
            &format!("Maximum number of stickers reached ({STICKER_SLOTS})"),
        );
    }
    if file.bytes.len() > STICKER_MAX_BYTES {
        return error(400, 50045, "File uploaded exceeds the maximum size");
    }
    match dimensions(&file.bytes) {
        Some((STICKER_SIDE, STICKER_SIDE)) => {}
        Some((w, h)) => {
            return error(
                400,
                50035,
                &format!(
                    "Invalid Form Body: sticker must be {STICKER_SIDE}x{STICKER_SIDE}, got {w}x{h}"
                ),
            );
        }
        None => {
            return error(
                400,
                50035,
                "Invalid Form Body: file must be PNG, APNG or GIF",
            );
        }
    }
    state.next_id += 1;
    let sticker = Sticker {
        id: state.next_id,
        name,
        tags,
        description,
        file_name: file.file_name.clone().unwrap_or_default(),
        bytes: file.bytes.clone(),
    };
    let format = if file.bytes.starts_with(b"GIF") { 4 } else { 2 };
    let body = json!({
        "id": sticker.id.to_string(),
        "name": sticker.name,
        "tags": sticker.tags,
        "description": sticker.description,
        "type": 2,
        "format_type": format,
        "available": true,
        "guild_id": guild.to_string(),
        "user": user(APPLICATION_ID, "loopsmith", true),
    });
    state.stickers.entry(guild).or_default().push(sticker);
    drop(state);
    fake.changed();
    ok(body)
}

/// Width and height from a PNG's IHDR or a GIF's logical screen descriptor.
fn dimensions(bytes: &Bytes) -> Option<(u32, u32)> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() >= 24 {
        let be = |at: usize| {
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        Some((be(16), be(20)))
    } else if (bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a")) && bytes.len() >= 10 {
        let le = |at: usize| u32::from(u16::from_le_bytes([bytes[at], bytes[at + 1]]));
        Some((le(6), le(8)))
    } else {
        None
    }
}
