//! Discord's JSON shapes, as much as serenity 0.12.5 needs to deserialize them: users,
//! members, messages, and the interactions the fake sends on the gateway.

use serde_json::{Value, json};

use super::APPLICATION_ID;

/// Discord's timestamp format; one fixed instant is enough for a fake.
const TIMESTAMP: &str = "2026-11-01T12:00:00.000000+00:00";
/// The channel every interaction comes from.
pub const CHANNEL_ID: u64 = 222_222_222_222_222_222;

/// Who sends an interaction, and what they may do in the channel.
#[derive(Debug, Clone)]
pub struct Member {
    pub id: u64,
    pub name: String,
    /// The member's permissions in the channel (Discord sends them resolved).
    pub permissions: u64,
    /// What the bot may do in the channel (`app_permissions`).
    pub app_permissions: u64,
    /// The interaction's `attachment_size_limit`, in bytes.
    pub attachment_size_limit: u32,
}

impl Member {
    /// A member with every permission, the bot likewise, and the default 10 MiB upload limit.
    pub fn new(id: u64, name: &str) -> Member {
        Member {
            id,
            name: name.to_string(),
            permissions: super::ALL_PERMISSIONS,
            app_permissions: super::ALL_PERMISSIONS,
            attachment_size_limit: 10 * 1024 * 1024,
        }
    }

    pub fn with_permissions(mut self, permissions: u64) -> Member {
        self.permissions = permissions;
        self
    }

    pub fn with_app_permissions(mut self, permissions: u64) -> Member {
        self.app_permissions = permissions;
        self
    }
}

/// What Discord says about an uploaded attachment (the `resolved.attachments` entry).
#[derive(Debug, Clone)]
pub struct AttachmentMeta {
    pub id: u64,
    pub filename: String,
    pub content_type: Option<String>,
    pub size: u32,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub url: String,
}

/// One option of a slash command as typed.
#[derive(Debug, Clone)]
pub struct CommandOption {
    name: String,
    /// Discord's option type: 3 string, 4 integer, 11 attachment.
    kind: u8,
    value: Value,
    focused: bool,
    attachment: Option<AttachmentMeta>,
}

impl CommandOption {
    pub fn string(name: &str, value: &str) -> CommandOption {
        CommandOption {
            name: name.into(),
            kind: 3,
            value: json!(value),
            focused: false,
            attachment: None,
        }
    }

    pub fn integer(name: &str, value: i64) -> CommandOption {
        CommandOption {
            kind: 4,
            value: json!(value),
            ..CommandOption::string(name, "")
        }
    }

    /// A string option being typed, for autocomplete.
    pub fn focused(name: &str, partial: &str) -> CommandOption {
        CommandOption {
            focused: true,
            ..CommandOption::string(name, partial)
        }
    }

    pub fn attachment(name: &str, meta: AttachmentMeta) -> CommandOption {
        CommandOption {
            kind: 11,
            value: json!(meta.id.to_string()),
            attachment: Some(meta),
            ..CommandOption::string(name, "")
        }
    }
}

pub fn user(id: u64, name: &str, bot: bool) -> Value {
    json!({
        "id": id.to_string(),
        "username": name,
        "discriminator": "0",
        "global_name": name,
        "avatar": null,
        "bot": bot,
    })
}

fn member(m: &Member) -> Value {
    json!({
        "user": user(m.id, &m.name, false),
        "roles": [],
        "joined_at": TIMESTAMP,
        "deaf": false,
        "mute": false,
        "flags": 0,
        "pending": false,
        "permissions": m.permissions.to_string(),
    })
}

/// A message as serenity reads it: every field it requires.
pub fn message(id: u64, content: &str, attachments: &[Value], components: &Value) -> Value {
    json!({
        "id": id.to_string(),
        "channel_id": CHANNEL_ID.to_string(),
        "author": user(APPLICATION_ID, "loopsmith", true),
        "content": content,
        "timestamp": TIMESTAMP,
        "edited_timestamp": null,
        "tts": false,
        "mention_everyone": false,
        "mentions": [],
        "mention_roles": [],
        "attachments": attachments,
        "embeds": [],
        "pinned": false,
        "type": 0,
        "flags": 0,
        "components": components,
        "application_id": APPLICATION_ID.to_string(),
    })
}

/// An attachment of a message the bot sent.
pub fn attachment(id: u64, file_name: &str, size: usize) -> Value {
    json!({
        "id": id.to_string(),
        "filename": file_name,
        "size": size,
        "url": format!("https://cdn.invalid/attachments/{id}/{file_name}"),
        "proxy_url": format!("https://media.invalid/attachments/{id}/{file_name}"),
    })
}

/// The `data` of an application command (or its autocomplete).
pub fn command_data(name: &str, options: &[CommandOption]) -> Value {
    let mut attachments = serde_json::Map::new();
    let options: Vec<Value> = options
        .iter()
        .map(|o| {
            if let Some(a) = &o.attachment {
                let mut entry = json!({
                    "id": a.id.to_string(),
                    "filename": a.filename,
                    "size": a.size,
                    "url": a.url,
                    "proxy_url": a.url,
                });
                if let Some(t) = &a.content_type {
                    entry["content_type"] = json!(t);
                }
                if let (Some(w), Some(h)) = (a.width, a.height) {
                    entry["width"] = json!(w);
                    entry["height"] = json!(h);
                }
                attachments.insert(a.id.to_string(), entry);
            }
            let mut option = json!({"name": o.name, "type": o.kind, "value": o.value});
            if o.focused {
                option["focused"] = json!(true);
            }
            option
        })
        .collect();
    json!({
        "id": "333333333333333333",
        "name": name,
        "type": 1,
        "options": options,
        "resolved": {"attachments": attachments},
    })
}

/// An interaction as Discord sends it in `INTERACTION_CREATE`; `guild == 0` is a DM.
pub fn interaction(
    id: u64,
    token: &str,
    guild: u64,
    who: &Member,
    kind: u8,
    data: Value,
    message: Option<Value>,
) -> Value {
    let mut payload = json!({
        "id": id.to_string(),
        "application_id": APPLICATION_ID.to_string(),
        "type": kind,
        "data": data,
        "channel_id": CHANNEL_ID.to_string(),
        "token": token,
        "version": 1,
        "app_permissions": who.app_permissions.to_string(),
        "locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {},
        "attachment_size_limit": who.attachment_size_limit,
    });
    if guild == 0 {
        payload["user"] = user(who.id, &who.name, false);
        payload["context"] = json!(1);
    } else {
        payload["guild_id"] = json!(guild.to_string());
        payload["guild_locale"] = json!("en-US");
        payload["member"] = member(who);
        payload["context"] = json!(0);
    }
    if let Some(message) = message {
        payload["message"] = message;
    }
    payload
}
