//! WAHA (WhatsApp HTTP API, github.com/devlikeapro/waha): webhook events in,
//! `/api/send*` requests out.
//!
//! Events handled (WAHA docs, "Events"): `message` (a customer's message),
//! `message.ack` (delivery of ours: -1 ERROR, 0 PENDING, 1 SERVER, 2 DEVICE,
//! 3 READ, 4 PLAYED), `message.reaction`, and `session.status` (a [`SessionUpdate`], stored per number). Own
//! messages (`fromMe`) are never ingested; group chats (`@g.us`), broadcasts and
//! channels are ignored with a log line.

use serde_json::{json, Value};

use super::numbers::SessionStatus;
use super::{
    clean_body, phone, Attachment, DeliveryStatus, InboundEvent, InboundMessage, Provider,
    SendError, Sender, SessionUpdate, StatusError, StatusUpdate,
};

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for key in path {
        cur = cur.get(*key)?;
    }
    cur.as_str().filter(|s| !s.trim().is_empty())
}

/// Resolves a WAHA chat id to a sender identity.
///
/// `<digits>@c.us` (and `@s.whatsapp.net`, NOWEB's spelling) is a phone number. An
/// `@lid` id is WhatsApp's privacy alias of a person: when the event also carries
/// the phone form (`_data.senderPn`, `_data.key.remoteJidAlt`, `participantPn` —
/// engine-dependent), that is used, so the person lands in the same contact as
/// under `@c.us`; otherwise the contact is keyed `lid:<id>` without a phone.
/// Groups, broadcasts and channels give `None`.
pub fn sender_of(chat_id: &str, payload: &Value) -> Option<(String, Option<String>)> {
    let (user, server) = chat_id.split_once('@')?;
    match server {
        "c.us" | "s.whatsapp.net" => phone::normalise(user),
        "lid" => {
            let alt = ["senderPn", "participantPn", "remoteJidAlt"]
                .iter()
                .find_map(|k| {
                    str_at(payload, &["_data", k]).or_else(|| str_at(payload, &["_data", "key", k]))
                })
                .filter(|alt| !alt.ends_with("@lid"));
            match alt.and_then(|a| phone::normalise(a.split('@').next().unwrap_or(a))) {
                Some(found) => Some(found),
                None => {
                    let lid: String = user.chars().filter(char::is_ascii_alphanumeric).collect();
                    (!lid.is_empty()).then(|| (format!("lid:{lid}"), None))
                }
            }
        }
        _ => None,
    }
}

/// The chat id to send to for a contact's `wa_id` (see [`sender_of`]).
pub fn chat_id(wa_id: &str) -> String {
    match wa_id.strip_prefix("lid:") {
        Some(lid) => format!("{lid}@lid"),
        None => format!("{wa_id}@c.us"),
    }
}

/// The events of one WAHA webhook POST (zero or one).
///
/// # Errors
/// A sentence when the body has no `event` name.
pub fn parse_webhook(body: &Value) -> Result<Vec<InboundEvent>, String> {
    let event = str_at(body, &["event"]).ok_or("not a WAHA event: no event name")?;
    let payload = body.get("payload").unwrap_or(&Value::Null);
    let from_me = payload.get("fromMe").and_then(Value::as_bool) == Some(true);
    match event {
        "message" | "message.reaction" => {
            if from_me {
                tracing::debug!(event, "WAHA: own message not re-ingested");
                return Ok(vec![]);
            }
            let Some(id) = str_at(payload, &["id"]) else {
                return Err("WAHA message without id".into());
            };
            let from = str_at(payload, &["from"]).unwrap_or("");
            if from.ends_with("@g.us") {
                tracing::info!(chat = from, "WAHA: group message ignored");
                return Ok(vec![]);
            }
            let Some((wa_id, phone)) = sender_of(from, payload) else {
                tracing::info!(chat = from, "WAHA: message from a non-person chat ignored");
                return Ok(vec![]);
            };
            let name = str_at(payload, &["_data", "notifyName"])
                .or_else(|| str_at(payload, &["notifyName"]))
                .map(|n| n.chars().take(100).collect());
            let (body, attachment) = if event == "message.reaction" {
                match str_at(payload, &["reaction", "text"]) {
                    Some(e) => (format!("[reaction] {e}"), None),
                    None => ("[reaction removed]".into(), None),
                }
            } else {
                content(payload)
            };
            Ok(vec![InboundEvent::Message(InboundMessage {
                provider: Provider::Waha,
                provider_id: id.to_string(),
                sender: Sender { wa_id, phone, name },
                body: clean_body(&body, "[message]"),
                attachment,
            })])
        }
        "message.ack" => {
            if !from_me {
                // Acks of the customer's own messages (our read receipts) say nothing new.
                return Ok(vec![]);
            }
            let Some(id) = str_at(payload, &["id"]) else {
                return Ok(vec![]);
            };
            let (status, error) = match payload.get("ack").and_then(Value::as_i64) {
                Some(-1) => (
                    DeliveryStatus::Failed,
                    Some(StatusError {
                        code: -1,
                        title: "WhatsApp reported an error delivering this message".into(),
                    }),
                ),
                Some(1) => (DeliveryStatus::Sent, None),
                Some(2) => (DeliveryStatus::Delivered, None),
                Some(3) | Some(4) => (DeliveryStatus::Read, None),
                _ => return Ok(vec![]),
            };
            Ok(vec![InboundEvent::Status(StatusUpdate {
                provider: Provider::Waha,
                provider_id: id.to_string(),
                status,
                error,
            })])
        }
        "session.status" => {
            let status = str_at(payload, &["status"]).unwrap_or("unknown");
            let session = str_at(body, &["session"]).unwrap_or("?");
            if status == "WORKING" {
                tracing::info!(session, status, "WAHA session status");
            } else {
                tracing::warn!(
                    session,
                    status,
                    "WAHA session is not working; WhatsApp messages may not flow"
                );
            }
            match SessionStatus::parse(status) {
                Some(status) => Ok(vec![InboundEvent::Session(SessionUpdate {
                    session: session.to_string(),
                    status,
                })]),
                None => Ok(vec![]),
            }
        }
        other => {
            tracing::debug!(event = other, "WAHA event ignored");
            Ok(vec![])
        }
    }
}

fn content(payload: &Value) -> (String, Option<Attachment>) {
    let text = str_at(payload, &["body"]).unwrap_or("").to_string();
    let has_media = payload.get("hasMedia").and_then(Value::as_bool) == Some(true)
        || payload.get("media").is_some_and(|m| !m.is_null());
    if has_media {
        let media = payload.get("media").unwrap_or(&Value::Null);
        let mime = str_at(media, &["mimetype"]).map(str::to_string);
        let kind = match mime.as_deref().unwrap_or("") {
            m if m.starts_with("image/") => "image",
            m if m.starts_with("video/") => "video",
            m if m.starts_with("audio/") => "audio",
            _ => "document",
        };
        let filename = str_at(media, &["filename"]).map(str::to_string);
        let caption = (!text.is_empty()).then(|| text.clone());
        let shown = match (&caption, &filename) {
            (Some(c), _) => c.clone(),
            (None, Some(f)) => format!("[{kind}: {f}]"),
            (None, None) => format!("[{kind}]"),
        };
        let attachment = Attachment {
            kind: kind.into(),
            mime_type: mime,
            filename,
            caption,
            sha256: None,
            provider: Some(Provider::Waha),
            media_id: None,
            url: str_at(media, &["url"]).map(str::to_string),
        };
        return (shown, Some(attachment));
    }
    if let Some(loc) = payload.get("location").filter(|l| !l.is_null()) {
        let lat = loc
            .get("latitude")
            .map(Value::to_string)
            .unwrap_or_default();
        let lon = loc
            .get("longitude")
            .map(Value::to_string)
            .unwrap_or_default();
        let label = str_at(loc, &["description"]).unwrap_or("");
        return (format!("[location] {label} ({lat}, {lon})"), None);
    }
    if text.is_empty() {
        let kind = str_at(payload, &["_data", "type"]).unwrap_or("message");
        return (format!("[unsupported message: {kind}]"), None);
    }
    (text, None)
}

/// The state in WAHA's answer to `GET /api/sessions/{name}` (`{"name": …,
/// "status": "WORKING", …}`); `None` when absent or unknown.
pub fn session_status_of(answer: &Value) -> Option<SessionStatus> {
    str_at(answer, &["status"]).and_then(SessionStatus::parse)
}

/// Body of `POST {WAHA_URL}/api/sendText`.
pub fn text_request(session: &str, chat_id: &str, text: &str) -> Value {
    json!({"session": session, "chatId": chat_id, "text": text})
}

/// Path and body of a media send by URL: `/api/sendImage` or `/api/sendFile`.
pub fn media_request(session: &str, chat_id: &str, a: &Attachment) -> (&'static str, Value) {
    let path = if a.kind == "image" {
        "/api/sendImage"
    } else {
        "/api/sendFile"
    };
    let mut file = json!({"url": a.url});
    if let Some(m) = &a.mime_type {
        file["mimetype"] = json!(m);
    }
    if let Some(f) = &a.filename {
        file["filename"] = json!(f);
    }
    let mut body = json!({"session": session, "chatId": chat_id, "file": file});
    if let Some(c) = &a.caption {
        body["caption"] = json!(c);
    }
    (path, body)
}

/// Body of `POST /api/sendSeen`.
pub fn seen_request(session: &str, chat_id: &str, message_ids: &[String]) -> Value {
    json!({"session": session, "chatId": chat_id, "messageIds": message_ids})
}

/// Reads a WAHA answer: the sent message's id (engine-dependent shape: a string,
/// `{"_serialized": …}`, or `key.id`) on success; 5xx, 429 are transient, other
/// errors permanent.
pub fn read_response(status: u16, body: &Value) -> Result<Option<String>, SendError> {
    if (200..300).contains(&status) {
        let id = str_at(body, &["id"])
            .or_else(|| str_at(body, &["id", "_serialized"]))
            .or_else(|| str_at(body, &["key", "id"]));
        return Ok(id.map(str::to_string));
    }
    let title = str_at(body, &["message"])
        .or_else(|| str_at(body, &["error"]))
        .map(str::to_string)
        .unwrap_or_else(|| format!("WAHA answered HTTP {status}"));
    if status >= 500 || status == 429 {
        Err(SendError::Transient(title))
    } else {
        Err(SendError::Permanent(StatusError {
            code: i64::from(status),
            title,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::channels::test_fixture as fixture;

    #[test]
    fn own_messages_are_not_ingested() {
        assert!(parse_webhook(&fixture("waha_message.json"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn media_acks_and_reactions() {
        let events = parse_webhook(&fixture("waha_message_media.json")).unwrap();
        let InboundEvent::Message(m) = &events[0] else {
            panic!()
        };
        assert_eq!(m.sender.phone.as_deref(), Some("+11111111111"));
        assert_eq!(m.attachment.as_ref().unwrap().kind, "image");
        let events = parse_webhook(&fixture("waha_message_ack.json")).unwrap();
        assert!(matches!(&events[0], InboundEvent::Status(s) if s.status == DeliveryStatus::Read));
        let events = parse_webhook(&fixture("waha_message_reaction.json")).unwrap();
        assert!(matches!(&events[0], InboundEvent::Message(m) if m.body == "[reaction] 🙏"));
        assert_eq!(
            parse_webhook(&fixture("waha_session_status.json")).unwrap(),
            vec![InboundEvent::Session(SessionUpdate {
                session: "default".into(),
                status: SessionStatus::Working
            })]
        );
    }

    #[test]
    fn chat_ids_normalise() {
        let p = json!({});
        assert_eq!(sender_of("16505551234@c.us", &p).unwrap().0, "16505551234");
        assert!(sender_of("123-456@g.us", &p).is_none());
        assert_eq!(sender_of("987654@lid", &p).unwrap().0, "lid:987654");
        let with_pn = json!({"_data": {"key": {"remoteJidAlt": "16505551234@s.whatsapp.net"}}});
        assert_eq!(sender_of("987654@lid", &with_pn).unwrap().0, "16505551234");
        assert_eq!(chat_id("16505551234"), "16505551234@c.us");
        assert_eq!(chat_id("lid:987654"), "987654@lid");
    }
}
