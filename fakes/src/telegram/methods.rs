//! The Bot API methods the fake answers, each with the documented errors.

use axum::body::Bytes;
use axum::response::Response;
use serde_json::{Value, json};

use super::{
    BadRequest, Call, FakeTelegram, MAX_SET_STICKERS, MAX_STICKER_BYTES, StickerSet, bad_request,
    error, ok,
};

impl FakeTelegram {
    pub(super) fn answer(&self, method: &str, call: &Call) -> Response {
        match method {
            "getme" => {
                let mut me = self.bot_json();
                for (k, v) in [
                    ("can_join_groups", true),
                    ("can_read_all_group_messages", false),
                    ("supports_inline_queries", true),
                    ("has_main_web_app", false),
                ] {
                    me[k] = json!(v);
                }
                ok(me)
            }
            "getwebhookinfo" => ok(json!({
                "url": "",
                "has_custom_certificate": false,
                "pending_update_count": 0,
            })),
            "deletewebhook"
            | "setwebhook"
            | "setmycommands"
            | "sendchataction"
            | "answercallbackquery"
            | "answerinlinequery" => ok(json!(true)),
            "sendmessage" => self.send_message(call),
            "editmessagetext" => self.edit_message_text(call),
            "sendsticker" => self.send_media(call, "sticker"),
            "sendanimation" => self.send_media(call, "animation"),
            "createnewstickerset" => self.create_set(call),
            "addstickertoset" => self.add_to_set(call),
            "getstickerset" => self.get_set(call),
            "getfile" => self.get_file(call),
            _ => error(404, "Not Found: method not found", None),
        }
    }

    /// getFile: the file's path for `/file/bot<token>/<path>`. Like Telegram, files over
    /// 20 MB are refused ("file is too big").
    fn get_file(&self, call: &Call) -> Response {
        let Some(id) = call.text("file_id") else {
            return bad_request("file_id is empty");
        };
        let Some(bytes) = self.file(&id) else {
            return bad_request("wrong file_id or the file is temporarily unavailable");
        };
        if bytes.len() > 20 * 1024 * 1024 {
            return bad_request("file is too big");
        }
        ok(json!({
            "file_id": id,
            "file_unique_id": format!("u{id}"),
            "file_size": bytes.len(),
            "file_path": format!("photos/{id}.bin"),
        }))
    }

    fn chat_of(call: &Call) -> Result<i64, BadRequest> {
        call.text("chat_id")
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| BadRequest("chat_id is empty".into()))
    }

    fn message(&self, chat: i64, extra: Value) -> (i64, Value) {
        let id = self.next_message_id();
        let chat_json = if chat > 0 {
            json!({"id": chat, "type": "private", "first_name": format!("User{chat}")})
        } else {
            json!({"id": chat, "type": "supergroup", "title": "A group"})
        };
        let mut message = json!({
            "message_id": id,
            "date": 1_700_000_000,
            "chat": chat_json,
            "from": self.bot_json(),
        });
        if let (Value::Object(m), Value::Object(e)) = (&mut message, extra) {
            m.extend(e);
        }
        (id, message)
    }

    fn send_message(&self, call: &Call) -> Response {
        let chat = match Self::chat_of(call) {
            Ok(c) => c,
            Err(r) => return r.into_response(),
        };
        let Some(text) = call.text("text").filter(|t| !t.is_empty()) else {
            return bad_request("message text is empty");
        };
        if text.chars().count() > 4096 {
            return bad_request("message is too long");
        }
        let mut extra = json!({"text": text});
        if let Some(markup) = call.params.get("reply_markup") {
            extra["reply_markup"] = markup.clone();
        }
        let (id, message) = self.message(chat, extra);
        self.state().texts.insert((chat, id), text);
        ok(message)
    }

    fn edit_message_text(&self, call: &Call) -> Response {
        let chat = match Self::chat_of(call) {
            Ok(c) => c,
            Err(r) => return r.into_response(),
        };
        let id = call
            .params
            .get("message_id")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let Some(text) = call.text("text").filter(|t| !t.is_empty()) else {
            return bad_request("message text is empty");
        };
        let mut state = self.state();
        match state.texts.get(&(chat, id)) {
            None => return bad_request("message to edit not found"),
            Some(old) if *old == text && !call.params.contains_key("reply_markup") => {
                return bad_request(
                    "message is not modified: specified new message content and reply markup \
                     are exactly the same as a current content and reply markup of the message",
                );
            }
            Some(_) => {}
        }
        state.texts.insert((chat, id), text.clone());
        drop(state);
        let mut message = json!({
            "message_id": id,
            "date": 1_700_000_000,
            "edit_date": 1_700_000_001,
            "chat": {"id": chat, "type": if chat > 0 { "private" } else { "supergroup" },
                     "first_name": "U", "title": "A group"},
            "from": self.bot_json(),
            "text": text,
        });
        if let Some(markup) = call.params.get("reply_markup") {
            message["reply_markup"] = markup.clone();
        }
        ok(message)
    }

    /// Stores an uploaded file (or accepts a known file id) and returns its file id.
    fn take_file(
        &self,
        call: &Call,
        field: &str,
        prefix: &str,
    ) -> Result<(String, Bytes), BadRequest> {
        let Some(value) = call.text(field) else {
            return Err(BadRequest(format!("there is no {field} in the request")));
        };
        let mut state = self.state();
        if let Some(part) = value.strip_prefix("attach://") {
            let Some(upload) = call.files.get(part) else {
                return Err(BadRequest(format!("{field} not found")));
            };
            state.next_file += 1;
            let id = format!("{prefix}-{}", state.next_file);
            state.files.insert(id.clone(), upload.bytes.clone());
            Ok((id, upload.bytes.clone()))
        } else if let Some(bytes) = state.files.get(&value) {
            Ok((value, bytes.clone()))
        } else {
            Err(BadRequest::new("wrong file identifier/HTTP URL specified"))
        }
    }

    fn send_media(&self, call: &Call, kind: &str) -> Response {
        let chat = match Self::chat_of(call) {
            Ok(c) => c,
            Err(r) => return r.into_response(),
        };
        let (file_id, bytes) = match self.take_file(call, kind, kind) {
            Ok(f) => f,
            Err(r) => return r.into_response(),
        };
        let meta = json!({
            "file_id": file_id,
            "file_unique_id": format!("u{file_id}"),
            "file_size": bytes.len(),
        });
        let extra = if kind == "sticker" {
            let mut sticker = sticker_json(&file_id, bytes.len());
            if let Some(emoji) = call.text("emoji") {
                sticker["emoji"] = json!(emoji);
            }
            json!({"sticker": sticker})
        } else {
            let mut animation = meta.clone();
            for (k, v) in [
                ("width", json!(512)),
                ("height", json!(512)),
                ("duration", json!(5)),
            ] {
                animation[k] = v;
            }
            animation["mime_type"] = json!("video/mp4");
            json!({"animation": animation, "document": meta})
        };
        let mut extra = extra;
        if let Some(markup) = call.params.get("reply_markup") {
            extra["reply_markup"] = markup.clone();
        }
        ok(self.message(chat, extra).1)
    }

    /// Checks one `InputSticker` and returns the file id it refers to.
    fn input_sticker(&self, call: &Call, sticker: &Value) -> Result<String, BadRequest> {
        if sticker["format"].as_str() != Some("video") {
            return Err(BadRequest::new(
                "can't parse InputSticker: Invalid sticker format specified",
            ));
        }
        let emoji = sticker["emoji_list"].as_array().map_or(0, Vec::len);
        if !(1..=20).contains(&emoji) {
            return Err(BadRequest::new("STICKER_EMOJI_INVALID"));
        }
        let reference = sticker["sticker"].as_str().unwrap_or_default();
        let bytes = if let Some(part) = reference.strip_prefix("attach://") {
            call.files
                .get(part)
                .map(|u| u.bytes.clone())
                .ok_or_else(|| BadRequest::new("can't parse InputSticker: sticker not found"))?
        } else {
            self.file(reference)
                .ok_or_else(|| BadRequest::new("wrong file identifier/HTTP URL specified"))?
        };
        if !bytes.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
            return Err(BadRequest::new("STICKER_VIDEO_NOWEBM"));
        }
        if bytes.len() > MAX_STICKER_BYTES {
            return Err(BadRequest::new("STICKER_VIDEO_BIG"));
        }
        let mut state = self.state();
        state.next_file += 1;
        let id = format!("setsticker-{}", state.next_file);
        state.files.insert(id.clone(), bytes);
        Ok(id)
    }

    fn create_set(&self, call: &Call) -> Response {
        let owner = call.text("user_id").and_then(|s| s.parse::<i64>().ok());
        let name = call.text("name").unwrap_or_default();
        let title = call.text("title").unwrap_or_default();
        let Some(owner) = owner else {
            return bad_request("user_id is empty");
        };
        if !valid_set_name(&name, &self.shared.username) {
            return bad_request("invalid sticker set name is specified");
        }
        if !(1..=64).contains(&title.chars().count()) {
            return bad_request("STICKERSET_TITLE_INVALID");
        }
        if self.sticker_set(&name).is_some() {
            return bad_request("sticker set name is already occupied");
        }
        let stickers = match call.params.get("stickers") {
            Some(Value::Array(list)) if (1..=50).contains(&list.len()) => list.clone(),
            _ => return bad_request("can't parse stickers JSON object"),
        };
        let mut ids = Vec::new();
        for sticker in &stickers {
            match self.input_sticker(call, sticker) {
                Ok(id) => ids.push(id),
                Err(r) => return r.into_response(),
            }
        }
        self.put_set(StickerSet {
            name,
            title,
            owner,
            stickers: ids,
        });
        ok(json!(true))
    }

    fn add_to_set(&self, call: &Call) -> Response {
        let name = call.text("name").unwrap_or_default();
        let Some(set) = self.sticker_set(&name) else {
            return bad_request("STICKERSET_INVALID");
        };
        let owner = call.text("user_id").and_then(|s| s.parse::<i64>().ok());
        if owner != Some(set.owner) {
            return bad_request("STICKERSET_INVALID");
        }
        if set.stickers.len() >= MAX_SET_STICKERS {
            return bad_request("STICKERS_TOO_MUCH");
        }
        let sticker = call.params.get("sticker").cloned().unwrap_or_default();
        let id = match self.input_sticker(call, &sticker) {
            Ok(id) => id,
            Err(r) => return r.into_response(),
        };
        let mut state = self.state();
        if let Some(set) = state.sets.get_mut(&name.to_ascii_lowercase()) {
            set.stickers.push(id);
        }
        ok(json!(true))
    }

    fn get_set(&self, call: &Call) -> Response {
        let name = call.text("name").unwrap_or_default();
        let Some(set) = self.sticker_set(&name) else {
            return bad_request("STICKERSET_INVALID");
        };
        let stickers: Vec<Value> = set
            .stickers
            .iter()
            .map(|id| {
                let size = self.file(id).map_or(0, |b| b.len());
                let mut s = sticker_json(id, size);
                s["set_name"] = json!(set.name);
                s
            })
            .collect();
        ok(json!({
            "name": set.name,
            "title": set.title,
            "sticker_type": "regular",
            "stickers": stickers,
        }))
    }
}

fn sticker_json(file_id: &str, size: usize) -> Value {
    json!({
        "file_id": file_id,
        "file_unique_id": format!("u{file_id}"),
        "file_size": size,
        "width": 512,
        "height": 512,
        "type": "regular",
        "is_animated": false,
        "is_video": true,
    })
}

/// The Bot API's rule for set names: English letters, digits and underscores, starting with a
/// letter, no two underscores in a row, ending in `_by_<bot username>`, 1 to 64 characters.
pub fn valid_set_name(name: &str, bot_username: &str) -> bool {
    let suffix = format!("_by_{}", bot_username.to_ascii_lowercase());
    (1..=64).contains(&name.len())
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.contains("__")
        && name.to_ascii_lowercase().ends_with(&suffix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_names_follow_the_bot_api_rules() {
        assert!(valid_set_name("u42_by_LoopBot", "loopbot"));
        assert!(!valid_set_name("42_by_loopbot", "loopbot"));
        assert!(!valid_set_name("u42__x_by_loopbot", "loopbot"));
        assert!(!valid_set_name("u42_by_otherbot", "loopbot"));
        assert!(!valid_set_name("u-42_by_loopbot", "loopbot"));
    }
}
