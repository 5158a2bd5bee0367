//! Phone numbers: WhatsApp ids to E.164, with the `phonenumber` crate (a port of
//! Google's libphonenumber), so the same number always maps to the same contact.

use std::num::NonZeroUsize;
use std::sync::LazyLock;

use lru::LruCache;
use parking_lot::Mutex;

/// Numbers parsed lately (`RECENT_CAP` of them), by their digits: a customer
/// writes many messages, and libphonenumber's parse of the same digits was 8 % of
/// the hub's CPU in the webhook bench (`docs/performance.md`).
static RECENT: LazyLock<Mutex<LruCache<String, Option<String>>>> =
    LazyLock::new(|| Mutex::new(LruCache::new(RECENT_CAP)));

/// How many numbers [`RECENT`] keeps.
// A const unwrap: a zero here would fail to compile, never at run time.
const RECENT_CAP: NonZeroUsize = NonZeroUsize::new(4096).unwrap();

/// Normalises a WhatsApp id (digits with country code, as in Meta's `wa_id` and
/// WAHA's `<digits>@c.us`; `+`, spaces and dashes tolerated) to
/// `(wa_id digits, Some("+E.164"))`.
///
/// The E.164 form comes from libphonenumber's parser. A number its metadata
/// considers invalid is still kept (WhatsApp vouches that the account exists, and
/// metadata lags behind new ranges) — as long as it parses; otherwise the phone is
/// `None` and only the digits identify the contact. Returns `None` when there are no
/// digits at all.
pub fn normalise(raw: &str) -> Option<(String, Option<String>)> {
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let known = RECENT.lock().get(&digits).cloned();
    let e164 = match known {
        Some(e164) => e164,
        None => {
            let e164 = phonenumber::parse(None, format!("+{digits}"))
                .ok()
                .map(|n| n.format().mode(phonenumber::Mode::E164).to_string());
            RECENT.lock().put(digits.clone(), e164.clone());
            e164
        }
    };
    // The parser may drop a national prefix; the id is what the provider gave us,
    // re-derived from the E.164 form so both spellings of one number agree.
    let wa_id = e164
        .as_deref()
        .map(|e| e.trim_start_matches('+').to_string())
        .unwrap_or(digits);
    Some((wa_id, e164))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_number_many_spellings() {
        let a = normalise("16505551234").unwrap();
        assert_eq!(a, ("16505551234".into(), Some("+16505551234".into())));
        assert_eq!(normalise("+1 650-555-1234").unwrap(), a);
        assert_eq!(
            normalise("16505551234").unwrap(),
            a,
            "the same when remembered"
        );
        assert_eq!(normalise("16505551234@c.us").unwrap(), a);
        assert_eq!(
            normalise("972987654321").unwrap().1.as_deref(),
            Some("+972987654321")
        );
        assert!(normalise("@c.us").is_none());
    }
}
