//! The Graph API request that sends a template: `POST /{phone-number-id}/messages`
//! with `type: template` (Meta "Send template messages";
//! fixture `meta_send_template_request.json`).
//!
//! The outbox row of a template message carries [`Order`] (what to send, checked
//! when the agent sent it); the request is built from it at send time.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{Header, Params, Shape};

/// What an outbox row of kind `template` sends: name, language and the Graph
/// `components` parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// Template name.
    pub name: String,
    /// Language code.
    pub language: String,
    /// Graph API `template.components` (parameters, not the template's definition).
    pub components: Vec<Value>,
}

fn texts(values: &[String]) -> Vec<Value> {
    values
        .iter()
        .map(|v| json!({"type": "text", "text": v}))
        .collect()
}

/// The parameters of a send, in Meta's order: header, body, then each button
/// with a variable (`sub_type: url`, `index` as a string).
pub fn components(shape: &Shape, params: &Params) -> Vec<Value> {
    let mut out = Vec::new();
    match &shape.header {
        Some(Header::Media { kind }) => {
            if let Some(link) = &params.header_media_url {
                let k = kind.as_str();
                out.push(json!({
                    "type": "header",
                    "parameters": [{"type": k, k: {"link": link.trim()}}],
                }));
            }
        }
        Some(Header::Text { variables, .. }) if *variables > 0 => {
            out.push(json!({"type": "header", "parameters": texts(&params.header)}));
        }
        _ => {}
    }
    if !params.body.is_empty() {
        out.push(json!({"type": "body", "parameters": texts(&params.body)}));
    }
    for b in &shape.variable_buttons {
        if let Some(values) = params.buttons.get(&b.index.to_string()) {
            out.push(json!({
                "type": "button",
                "sub_type": "url",
                "index": b.index.to_string(),
                "parameters": texts(values),
            }));
        }
    }
    out
}

/// The request body sending `order` to `to` (the contact's WhatsApp id).
pub fn request(to: &str, order: &Order) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": {
            "name": order.name,
            "language": {"code": order.language},
            "components": order.components,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::templates::{parse_page, shape};
    use crate::channels::test_fixture as fixture;

    #[test]
    fn builds_the_fixture_request() {
        let (page, _) = parse_page(&fixture("meta_templates_page1.json"));
        let sh = shape(&page[0].components);
        let params = Params {
            body: ["Ana", "EBC Trek", "15 March", "$4,788"]
                .map(String::from)
                .to_vec(),
            header_media_url: Some("https://example.com/ebc.jpg".into()),
            buttons: [("0".to_string(), vec!["EBC-2501234".to_string()])].into(),
            ..Params::default()
        };
        let order = Order {
            name: "trip_reminder".into(),
            language: "en_US".into(),
            components: components(&sh, &params),
        };
        assert_eq!(
            request("+16505551234", &order),
            fixture("meta_send_template_request.json")
        );
    }
}
