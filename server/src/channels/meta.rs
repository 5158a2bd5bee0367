//! Meta WhatsApp Cloud API: webhook payloads in, Graph API requests out.
//!
//! Shapes follow Meta's "Webhooks reference — messages" and "Sending messages"
//! pages (fixtures in `tests/fixtures/whatsapp/`). Parsing works on
//! `serde_json::Value` rather than strict structs so that a field Meta adds, or a
//! message type we do not know, never makes a whole batch fail: unknown types are
//! stored with a readable placeholder.

use serde_json::{json, Value};

use super::{
    clean_body, phone, Attachment, DeliveryStatus, InboundEvent, InboundMessage, Provider,
    SendError, Sender, StatusError, StatusUpdate,
};

/// Every message and status of one webhook POST, in payload order. Changes whose
/// `field` is not `messages` (account updates, template reviews) yield nothing.
///
/// # Errors
/// A sentence when the payload is not a WhatsApp Business Account webhook at all.
pub fn parse_webhook(payload: &Value) -> Result<Vec<InboundEvent>, String> {
    Ok(parse_webhook_by_number(payload)?
        .into_iter()
        .map(|(_, e)| e)
        .collect())
}

/// As [`parse_webhook`], each event with the business phone number id it came in
/// on (`value.metadata.phone_number_id`; one POST may carry several numbers of a
/// WhatsApp Business Account), which picks the number (inbox) it belongs to.
///
/// # Errors
/// A sentence when the payload is not a WhatsApp Business Account webhook at all.
pub fn parse_webhook_by_number(
    payload: &Value,
) -> Result<Vec<(Option<String>, InboundEvent)>, String> {
    let entries = payload
        .get("entry")
        .and_then(Value::as_array)
        .ok_or("not a WhatsApp webhook: no entry array")?;
    let mut events = Vec::new();
    for change in entries
        .iter()
        .filter_map(|e| e.get("changes").and_then(Value::as_array))
        .flatten()
    {
        if change.get("field").and_then(Value::as_str) != Some("messages") {
            continue;
        }
        let Some(value) = change.get("value") else {
            continue;
        };
        let number = str_at(value, &["metadata", "phone_number_id"]).map(str::to_string);
        let contacts = value.get("contacts").and_then(Value::as_array);
        for m in value
            .get("messages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match message(m, contacts) {
                Some(msg) => events.push((number.clone(), InboundEvent::Message(msg))),
                None => tracing::warn!("skipped a WhatsApp message without id or sender"),
            }
        }
        for s in value
            .get("statuses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(st) = status(s) {
                events.push((number.clone(), InboundEvent::Status(st)));
            }
        }
    }
    Ok(events)
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for key in path {
        cur = cur.get(*key)?;
    }
    cur.as_str().filter(|s| !s.trim().is_empty())
}

fn message(m: &Value, contacts: Option<&Vec<Value>>) -> Option<InboundMessage> {
    let id = str_at(m, &["id"])?;
    let from = str_at(m, &["from"])?;
    let (wa_id, phone) = phone::normalise(from)?;
    let name = contacts
        .into_iter()
        .flatten()
        .find(|c| {
            c.get("wa_id")
                .and_then(Value::as_str)
                .and_then(phone::normalise)
                .is_some_and(|(w, _)| w == wa_id)
        })
        .or_else(|| contacts.and_then(|c| c.first()))
        .and_then(|c| str_at(c, &["profile", "name"]))
        .map(|n| clean_body(n, "").chars().take(100).collect::<String>())
        .filter(|n| !n.is_empty());
    let kind = str_at(m, &["type"]).unwrap_or("unknown");
    let (text, attachment) = content(m, kind);
    let mut body = text;
    if let Some(r) = m.get("referral") {
        // Click-to-WhatsApp ad: keep where the lead came from next to their words.
        let headline = str_at(r, &["headline"]).unwrap_or("an ad");
        let url = str_at(r, &["source_url"]).unwrap_or("");
        body = format!("{body}\n[from ad: {headline} {url}]");
    }
    Some(InboundMessage {
        provider: Provider::Meta,
        provider_id: id.to_string(),
        sender: Sender { wa_id, phone, name },
        body: clean_body(&body, &format!("[{kind}]")),
        attachment,
    })
}

/// The readable text and the media reference of one message, by type.
fn content(m: &Value, kind: &str) -> (String, Option<Attachment>) {
    let node = m.get(kind).unwrap_or(&Value::Null);
    match kind {
        "text" => (str_at(node, &["body"]).unwrap_or("").to_string(), None),
        "image" | "video" | "audio" | "document" | "sticker" => {
            let voice = kind == "audio" && node.get("voice").and_then(Value::as_bool) == Some(true);
            let shown = if voice { "voice" } else { kind };
            let caption = str_at(node, &["caption"]).map(str::to_string);
            let filename = str_at(node, &["filename"]).map(str::to_string);
            let text = match (&caption, &filename) {
                (Some(c), _) => c.clone(),
                (None, Some(f)) => format!("[{shown}: {f}]"),
                (None, None) => format!("[{shown}]"),
            };
            let attachment = Attachment {
                kind: shown.to_string(),
                mime_type: str_at(node, &["mime_type"]).map(str::to_string),
                filename,
                caption,
                sha256: str_at(node, &["sha256"]).map(str::to_string),
                provider: Some(Provider::Meta),
                media_id: str_at(node, &["id"]).map(str::to_string),
                url: None,
            };
            (text, Some(attachment))
        }
        "location" => {
            let lat = node
                .get("latitude")
                .map(Value::to_string)
                .unwrap_or_default();
            let lon = node
                .get("longitude")
                .map(Value::to_string)
                .unwrap_or_default();
            let label: Vec<&str> = [str_at(node, &["name"]), str_at(node, &["address"])]
                .into_iter()
                .flatten()
                .collect();
            let label = if label.is_empty() {
                String::new()
            } else {
                format!("{} ", label.join(", "))
            };
            (format!("[location] {label}({lat}, {lon})"), None)
        }
        "contacts" => {
            let shared: Vec<String> = node
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    let name = str_at(c, &["name", "formatted_name"]).unwrap_or("?");
                    let phones: Vec<&str> = c
                        .get("phones")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|p| str_at(p, &["phone"]))
                        .collect();
                    format!("{name} {}", phones.join(", ")).trim().to_string()
                })
                .collect();
            (format!("[contacts] {}", shared.join("; ")), None)
        }
        "interactive" => {
            let reply = node
                .get("button_reply")
                .or_else(|| node.get("list_reply"))
                .unwrap_or(&Value::Null);
            let title = str_at(reply, &["title"]).unwrap_or("");
            let text = match str_at(reply, &["description"]) {
                Some(d) => format!("{title} — {d}"),
                None => title.to_string(),
            };
            (text, None)
        }
        "button" => (str_at(node, &["text"]).unwrap_or("").to_string(), None),
        "reaction" => match str_at(node, &["emoji"]) {
            Some(e) => (format!("[reaction] {e}"), None),
            None => ("[reaction removed]".into(), None),
        },
        "order" => {
            let items = node
                .get("product_items")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            (format!("[order] {items} item(s)"), None)
        }
        "system" => (
            format!("[system] {}", str_at(node, &["body"]).unwrap_or("")),
            None,
        ),
        other => {
            let why = m
                .get("errors")
                .and_then(Value::as_array)
                .and_then(|e| e.first())
                .and_then(|e| str_at(e, &["title"]))
                .unwrap_or("not supported by the hub");
            (format!("[unsupported message: {other} — {why}]"), None)
        }
    }
}

fn status(s: &Value) -> Option<StatusUpdate> {
    let id = str_at(s, &["id"])?;
    let status = match str_at(s, &["status"])? {
        "sent" => DeliveryStatus::Sent,
        "delivered" => DeliveryStatus::Delivered,
        // `played` is a voice message listened to: the strongest form of read.
        "read" | "played" => DeliveryStatus::Read,
        "failed" => DeliveryStatus::Failed,
        other => {
            tracing::debug!(status = other, "ignored WhatsApp status");
            return None;
        }
    };
    let error = (status == DeliveryStatus::Failed).then(|| {
        let e = s
            .get("errors")
            .and_then(Value::as_array)
            .and_then(|e| e.first());
        let code = e
            .and_then(|e| e.get("code"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let title = e
            .and_then(|e| str_at(e, &["title"]).or_else(|| str_at(e, &["message"])))
            .unwrap_or("failed");
        StatusError {
            code,
            title: super::templates::failure_title(code, title),
        }
    });
    Some(StatusUpdate {
        provider: Provider::Meta,
        provider_id: id.to_string(),
        status,
        error,
    })
}

/// Body of `POST {graph}/{phone_number_id}/messages` for a text reply.
pub fn text_request(to: &str, body: &str) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": {"preview_url": false, "body": body},
    })
}

/// Body of a media send by link (`image` or `document`).
pub fn media_request(to: &str, a: &Attachment) -> Value {
    let kind = if a.kind == "image" {
        "image"
    } else {
        "document"
    };
    let mut media = json!({"link": a.url});
    if let Some(c) = &a.caption {
        media["caption"] = json!(c);
    }
    if kind == "document" {
        if let Some(f) = &a.filename {
            media["filename"] = json!(f);
        }
    }
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": kind,
        kind: media,
    })
}

/// Body that marks an inbound message (and everything before it) read; with
/// `typing`, also shows the typing indicator (Meta "Typing indicators" page).
pub fn read_request(wamid: &str, typing: bool) -> Value {
    let mut v = json!({"messaging_product": "whatsapp", "status": "read", "message_id": wamid});
    if typing {
        v["typing_indicator"] = json!({"type": "text"});
    }
    v
}

/// Meta error codes worth retrying (fixtures README: rate limits, throttling,
/// temporary service errors).
const RETRYABLE: [i64; 8] = [130429, 131056, 4, 80007, 131000, 131016, 2, 131057];

/// Reads a Graph API answer: the new message id on success, or a [`SendError`]
/// classified by HTTP status and Meta error code: network trouble, 5xx, 429 and the
/// codes in [`RETRYABLE`] are transient; everything else (131047 outside the 24-hour
/// window, 131026 undeliverable, 132xxx template errors, auth errors …) is permanent.
pub fn read_response(status: u16, body: &Value) -> Result<Option<String>, SendError> {
    if (200..300).contains(&status) {
        return Ok(body
            .get("messages")
            .and_then(Value::as_array)
            .and_then(|m| m.first())
            .and_then(|m| str_at(m, &["id"]))
            .map(str::to_string));
    }
    let err = body.get("error").unwrap_or(&Value::Null);
    let code = err.get("code").and_then(Value::as_i64);
    let title = str_at(err, &["error_data", "details"])
        .or_else(|| str_at(err, &["message"]))
        .map(str::to_string)
        .unwrap_or_else(|| format!("HTTP {status}"));
    let retry = status >= 500 || status == 429 || code.is_some_and(|c| RETRYABLE.contains(&c));
    if retry {
        Err(SendError::Transient(match code {
            Some(c) => format!("{c}: {title}"),
            None => title,
        }))
    } else {
        let code = code.unwrap_or(0);
        Err(SendError::Permanent(StatusError {
            code,
            title: super::templates::failure_title(code, &title),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::channels::test_fixture as fixture;

    fn one_message(name: &str) -> InboundMessage {
        match parse_webhook(&fixture(name)).unwrap().remove(0) {
            InboundEvent::Message(m) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn text_with_profile_name() {
        let m = one_message("meta_text_message.json");
        assert_eq!(m.body, "Does it come in another color?");
        assert_eq!(m.sender.phone.as_deref(), Some("+16505551234"));
        assert_eq!(m.sender.name.as_deref(), Some("Sheena Nelson"));
    }

    #[test]
    fn every_pywa_variant_becomes_a_message() {
        let all = fixture("zz_pywa_message_fixtures_all.json");
        for (key, payload) in all.as_object().unwrap() {
            let events = parse_webhook(payload).unwrap();
            assert!(!events.is_empty(), "{key}: nothing parsed");
            for e in events {
                let InboundEvent::Message(m) = e else {
                    panic!("{key}: not a message")
                };
                assert!(!m.body.trim().is_empty(), "{key}: empty body");
            }
        }
    }

    #[test]
    fn media_location_and_replies_are_readable() {
        let img = one_message("meta_image_message.json");
        assert_eq!(img.body, "Taj Mahal");
        let a = img.attachment.unwrap();
        assert_eq!(
            (a.kind.as_str(), a.media_id.as_deref()),
            ("image", Some("1003383421387256"))
        );
        assert!(one_message("meta_location_message.json")
            .body
            .starts_with("[location]"));
        assert!(!one_message("meta_interactive_list_reply.json")
            .body
            .is_empty());
        assert!(!one_message("meta_button_quick_reply.json")
            .body
            .starts_with('['));
    }

    #[test]
    fn failed_status_carries_its_reason() {
        let events = parse_webhook(&fixture("meta_status_failed.json")).unwrap();
        let InboundEvent::Status(s) = &events[0] else {
            panic!()
        };
        assert_eq!(s.status, DeliveryStatus::Failed);
        assert_eq!(s.error.as_ref().unwrap().code, 131049);
    }

    #[test]
    fn errors_are_classified() {
        let e = |code: i64| json!({"error": {"code": code, "message": "x"}});
        assert!(matches!(
            read_response(400, &e(130429)),
            Err(SendError::Transient(_))
        ));
        assert!(matches!(
            read_response(400, &e(131047)),
            Err(SendError::Permanent(_))
        ));
        assert!(matches!(
            read_response(400, &e(132001)),
            Err(SendError::Permanent(_))
        ));
        assert!(matches!(
            read_response(503, &json!({})),
            Err(SendError::Transient(_))
        ));
        assert_eq!(
            read_response(200, &fixture("meta_send_response.json"))
                .unwrap()
                .as_deref(),
            Some("wamid.HBgLMTY0NjcwNDM1OTUVAgARGBI4MjZGRDA0OUE2OTQ3RkEyMzcA")
        );
    }
}
