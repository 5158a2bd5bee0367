//! Campaign codes from ads (seed 001): `PKG_MONTH_YEAR_TYPE`, e.g.
//! `UMR_MAR_2025_HEMAT` — a 2–6 letter package prefix, a month abbreviation
//! (English or Indonesian), a four-digit year and a type of 2–20 letters or digits.
//!
//! [`candidates`] finds code-shaped words in a message, in order of appearance; the
//! caller looks them up and the first one that exists wins (seed 001, "Multiple
//! codes in message: process first valid code").

use std::sync::LazyLock;

use regex::Regex;

/// Month abbreviations accepted in codes: English and Indonesian spellings.
const MONTHS: &str = "JAN|FEB|MAR|APR|MAY|MEI|JUN|JUL|AUG|AGU|AGS|SEP|OCT|OKT|NOV|DEC|DES";

// The pattern is a literal; `Regex::new` can only fail on a malformed pattern, which
// the unit tests below would catch.
#[allow(clippy::expect_used)]
static CODE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)\b[A-Z]{{2,6}}_(?:{MONTHS})_[0-9]{{4}}_[A-Z0-9]{{2,20}}\b"
    ))
    .expect("campaign code pattern")
});

/// Code-shaped words in `text`, upper-cased, in order of appearance, without repeats.
pub fn candidates(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in CODE.find_iter(text) {
        let code = m.as_str().to_ascii_uppercase();
        if !out.contains(&code) {
            out.push(code);
        }
    }
    out
}

/// Whether `code` (as an admin typed it) has the campaign-code shape; returns it
/// upper-cased.
pub fn parse(code: &str) -> Option<String> {
    let code = code.trim();
    match candidates(code).as_slice() {
        [one] if one.len() == code.len() => Some(one.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_codes_in_order() {
        assert_eq!(candidates("UMR_MAR_2025_HEMAT"), ["UMR_MAR_2025_HEMAT"]);
        assert_eq!(
            candidates("halo, kode saya umr_mar_2025_hemat dan HAJ_DES_2025_VIP."),
            ["UMR_MAR_2025_HEMAT", "HAJ_DES_2025_VIP"]
        );
        assert_eq!(
            candidates("UMR_MAR_2025_HEMAT UMR_MAR_2025_HEMAT"),
            ["UMR_MAR_2025_HEMAT"]
        );
    }

    #[test]
    fn rejects_other_shapes() {
        assert!(candidates("UMR_XYZ_2025_HEMAT").is_empty());
        assert!(candidates("UMR_MAR_25_HEMAT").is_empty());
        assert!(candidates("XUMR_MAR_2025_HEMAT_").is_empty());
        assert!(candidates("no code here").is_empty());
        assert!(candidates("AUMRAH1_MAR_2025_HEMAT").is_empty());
    }

    #[test]
    fn parses_admin_input() {
        assert_eq!(
            parse(" umr_mar_2025_hemat ").as_deref(),
            Some("UMR_MAR_2025_HEMAT")
        );
        assert_eq!(parse("UMR_MAR_2025_HEMAT extra"), None);
        assert_eq!(parse("UMR-MAR-2025-HEMAT"), None);
    }
}
