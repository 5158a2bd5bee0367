//! What the hub can tell about an anonymous visitor without asking them: a stable,
//! readable generated name ("Amber Falcon") so five anonymous chats are not five
//! identical "Visitor" rows, and a country guessed from the browser's IANA time
//! zone or its `Accept-Language` region. Pure functions; the store and the widget
//! route call them (`docs/api.md`, ContactView).

/// Adjectives of generated names: friendly and neutral, one word each.
const ADJECTIVES: [&str; 64] = [
    "Amber", "Azure", "Bright", "Brisk", "Calm", "Cedar", "Cheerful", "Clever", "Coral", "Cosmic",
    "Crimson", "Curious", "Dapper", "Eager", "Early", "Emerald", "Fair", "Gentle", "Golden",
    "Graceful", "Happy", "Hazel", "Honest", "Indigo", "Ivory", "Jade", "Jolly", "Kind", "Lively",
    "Lucky", "Lunar", "Maple", "Merry", "Mellow", "Misty", "Modest", "Noble", "Olive", "Patient",
    "Peach", "Plucky", "Polar", "Quick", "Quiet", "Rapid", "Rosy", "Ruby", "Sage", "Sandy",
    "Scarlet", "Silver", "Sincere", "Smart", "Sunny", "Swift", "Teal", "Tidy", "Topaz", "Upbeat",
    "Velvet", "Vivid", "Warm", "Witty", "Zesty",
];

/// Animals of generated names, one word each.
const ANIMALS: [&str; 64] = [
    "Albatross",
    "Badger",
    "Beaver",
    "Bison",
    "Robin",
    "Cheetah",
    "Crane",
    "Dolphin",
    "Eagle",
    "Falcon",
    "Ferret",
    "Finch",
    "Fox",
    "Gazelle",
    "Gecko",
    "Heron",
    "Hedgehog",
    "Ibis",
    "Jaguar",
    "Kestrel",
    "Koala",
    "Lark",
    "Lemur",
    "Lion",
    "Lynx",
    "Magpie",
    "Marten",
    "Meerkat",
    "Moose",
    "Narwhal",
    "Newt",
    "Ocelot",
    "Orca",
    "Osprey",
    "Otter",
    "Owl",
    "Panda",
    "Panther",
    "Pelican",
    "Penguin",
    "Puffin",
    "Quail",
    "Rabbit",
    "Raccoon",
    "Raven",
    "Reindeer",
    "Salmon",
    "Seal",
    "Sparrow",
    "Squirrel",
    "Stork",
    "Swan",
    "Tapir",
    "Tiger",
    "Toucan",
    "Turtle",
    "Walrus",
    "Whale",
    "Wolf",
    "Wombat",
    "Wren",
    "Yak",
    "Zebra",
    "Bear",
];

/// FNV-1a (64-bit) of `s`: a hash fixed by its published constants, so a name is
/// the same on every node, build and restart (std's `DefaultHasher` promises none
/// of that).
fn fnv1a(s: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    s.bytes()
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

/// MurmurHash3's 64-bit finaliser: FNV-1a barely moves its high bits when only
/// the last characters differ (as in time-ordered ids), so they are mixed in.
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The generated two-word name of contact `contact_id` ("Amber Falcon"): one of
/// 64 × 64 = 4096 names, derived only from the id.
pub fn generated_name(contact_id: &str) -> String {
    let h = mix(fnv1a(contact_id));
    // Two independent slices of the hash: ids differing in one character still
    // differ in both words most of the time. The casts keep only 6 bits.
    let adjective = ADJECTIVES[(h & 63) as usize];
    let animal = ANIMALS[((h >> 32) & 63) as usize];
    format!("{adjective} {animal}")
}

/// Longest time zone name accepted, in characters.
pub const MAX_TIME_ZONE_CHARS: usize = 64;
/// Longest locale tag accepted, in characters (BCP 47 recommends supporting 35).
pub const MAX_LOCALE_CHARS: usize = 35;

/// Whether `tz` looks like an IANA time zone name (`Area/City`, `UTC`,
/// `America/Argentina/Buenos_Aires`, `Etc/GMT+7`): checked loosely, by its
/// characters, not against the tz database.
pub fn is_time_zone(tz: &str) -> bool {
    !tz.is_empty()
        && tz.chars().count() <= MAX_TIME_ZONE_CHARS
        && tz.starts_with(|c: char| c.is_ascii_alphabetic())
        && tz
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'))
}

/// `locale` as a BCP 47 tag (`_` read as `-`, as some platforms write `en_US`), if
/// it looks like one: 1–8 letter primary subtag, then alphanumeric subtags of 1–8.
pub fn normalise_locale(locale: &str) -> Option<String> {
    let tag = locale.trim().replace('_', "-");
    if tag.is_empty() || tag.chars().count() > MAX_LOCALE_CHARS {
        return None;
    }
    let mut parts = tag.split('-');
    let primary = parts.next()?;
    let primary_ok =
        (1..=8).contains(&primary.len()) && primary.chars().all(|c| c.is_ascii_alphabetic());
    let rest_ok =
        parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
    (primary_ok && rest_ok).then_some(tag)
}

/// The region of a BCP 47 tag as an ISO 3166-1 alpha-2 code (`id-ID` → `ID`,
/// `zh-Hant-TW` → `TW`); none for a tag without one (`de`) or with a numeric UN
/// M.49 region (`es-419`), which is not a country.
pub fn region_of_locale(tag: &str) -> Option<String> {
    tag.split(['-', '_'])
        .skip(1)
        .find(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_alphabetic()))
        .map(str::to_ascii_uppercase)
}

/// The language tags of an `Accept-Language` header (RFC 9110 §12.5.4), best first
/// (by `q`, then by order); the wildcard and malformed entries are skipped.
pub fn accept_language_tags(header: &str) -> Vec<String> {
    let mut tags: Vec<(u16, usize, String)> = header
        .split(',')
        .enumerate()
        .filter_map(|(i, entry)| {
            let mut parts = entry.split(';');
            let tag = normalise_locale(parts.next()?)?;
            // q is 0 to 1 with at most three decimals; kept as thousandths.
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|v| v.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let q = (q.clamp(0.0, 1.0) * 1000.0).round() as u16;
            (q > 0).then_some((q, i, tag))
        })
        .collect();
    tags.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    tags.into_iter().map(|(_, _, t)| t).collect()
}

/// The country of an IANA time zone (ISO 3166-1 alpha-2), for the zones visitors
/// commonly report; none for zones shared by several countries or not listed
/// (`UTC`, `Etc/*`). Source: the tz database's `zone1970.tab`/`zone.tab`.
pub fn country_of_time_zone(tz: &str) -> Option<&'static str> {
    let country = match tz {
        "Asia/Jakarta" | "Asia/Pontianak" | "Asia/Makassar" | "Asia/Jayapura" => "ID",
        "Asia/Singapore" => "SG",
        "Asia/Kuala_Lumpur" | "Asia/Kuching" => "MY",
        "Asia/Manila" => "PH",
        "Asia/Bangkok" => "TH",
        "Asia/Ho_Chi_Minh" | "Asia/Saigon" => "VN",
        "Asia/Tokyo" => "JP",
        "Asia/Seoul" => "KR",
        "Asia/Shanghai" | "Asia/Chongqing" | "Asia/Urumqi" => "CN",
        "Asia/Hong_Kong" => "HK",
        "Asia/Taipei" => "TW",
        "Asia/Kolkata" | "Asia/Calcutta" => "IN",
        "Asia/Karachi" => "PK",
        "Asia/Dhaka" => "BD",
        "Asia/Dubai" => "AE",
        "Asia/Riyadh" => "SA",
        "Asia/Jerusalem" | "Asia/Tel_Aviv" => "IL",
        "Europe/Istanbul" | "Asia/Istanbul" => "TR",
        "Europe/London" => "GB",
        "Europe/Dublin" => "IE",
        "Europe/Lisbon" => "PT",
        "Europe/Madrid" => "ES",
        "Europe/Paris" => "FR",
        "Europe/Brussels" => "BE",
        "Europe/Amsterdam" => "NL",
        "Europe/Berlin" => "DE",
        "Europe/Zurich" => "CH",
        "Europe/Vienna" => "AT",
        "Europe/Rome" => "IT",
        "Europe/Copenhagen" => "DK",
        "Europe/Oslo" => "NO",
        "Europe/Stockholm" => "SE",
        "Europe/Helsinki" => "FI",
        "Europe/Warsaw" => "PL",
        "Europe/Prague" => "CZ",
        "Europe/Budapest" => "HU",
        "Europe/Athens" => "GR",
        "Europe/Bucharest" => "RO",
        "Europe/Kiev" | "Europe/Kyiv" => "UA",
        "Europe/Moscow" => "RU",
        "Africa/Cairo" => "EG",
        "Africa/Lagos" => "NG",
        "Africa/Nairobi" => "KE",
        "Africa/Johannesburg" => "ZA",
        "Africa/Casablanca" => "MA",
        "America/New_York"
        | "America/Chicago"
        | "America/Denver"
        | "America/Phoenix"
        | "America/Los_Angeles"
        | "America/Anchorage"
        | "America/Detroit"
        | "Pacific/Honolulu" => "US",
        "America/Toronto" | "America/Vancouver" | "America/Edmonton" | "America/Winnipeg"
        | "America/Halifax" => "CA",
        "America/Mexico_City" => "MX",
        "America/Bogota" => "CO",
        "America/Lima" => "PE",
        "America/Santiago" => "CL",
        "America/Sao_Paulo" => "BR",
        "America/Argentina/Buenos_Aires" | "America/Buenos_Aires" => "AR",
        "Australia/Sydney"
        | "Australia/Melbourne"
        | "Australia/Brisbane"
        | "Australia/Perth"
        | "Australia/Adelaide" => "AU",
        "Pacific/Auckland" => "NZ",
        _ => return None,
    };
    Some(country)
}

/// The visitor's country: from the time zone when it names one country, else the
/// region of the first locale (the widget's, then `Accept-Language`'s) that has one.
pub fn country(time_zone: Option<&str>, locales: &[&str]) -> Option<String> {
    time_zone
        .and_then(country_of_time_zone)
        .map(str::to_string)
        .or_else(|| locales.iter().find_map(|l| region_of_locale(l)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generated_names_are_stable_two_words_from_unique_lists() {
        assert_eq!(ADJECTIVES.iter().collect::<HashSet<_>>().len(), 64);
        assert_eq!(ANIMALS.iter().collect::<HashSet<_>>().len(), 64);
        let id = "0193a4b2-7c1e-7000-8000-000000000001";
        let name = generated_name(id);
        assert_eq!(name, generated_name(id), "same id, same name");
        // Pinned: the name must not change between builds or Rust versions.
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
        let words: Vec<&str> = name.split(' ').collect();
        assert_eq!(words.len(), 2);
        assert!(ADJECTIVES.contains(&words[0]) && ANIMALS.contains(&words[1]));
    }

    #[test]
    fn generated_names_spread_over_ids() {
        let names: HashSet<String> = (0..200)
            .map(|i| generated_name(&format!("0193a4b2-7c1e-7000-8000-{i:012}")))
            .collect();
        // 200 ids over 4096 names: a few collisions at most, never a handful of names.
        assert!(names.len() > 180, "{}", names.len());
    }

    #[test]
    fn time_zones_are_checked_loosely() {
        for ok in [
            "Asia/Jakarta",
            "UTC",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+7",
            "America/Port-au-Prince",
        ] {
            assert!(is_time_zone(ok), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "Asia/Jakarta<script>",
            "Asia Jakarta",
            &"A".repeat(65),
        ] {
            assert!(!is_time_zone(bad), "{bad}");
        }
    }

    #[test]
    fn locales_are_normalised_bcp47() {
        assert_eq!(normalise_locale("id-ID").as_deref(), Some("id-ID"));
        assert_eq!(normalise_locale("en_US").as_deref(), Some("en-US"));
        assert_eq!(
            normalise_locale("zh-Hant-TW").as_deref(),
            Some("zh-Hant-TW")
        );
        assert_eq!(normalise_locale("*"), None);
        assert_eq!(normalise_locale("en-US;<b>"), None);
        assert_eq!(normalise_locale(&"a-".repeat(20)), None);
    }

    #[test]
    fn accept_language_is_read_best_first() {
        assert_eq!(
            accept_language_tags("id-ID,id;q=0.9,en-US;q=0.8,en;q=0.7"),
            ["id-ID", "id", "en-US", "en"]
        );
        assert_eq!(accept_language_tags("en;q=0.5, fr-CH"), ["fr-CH", "en"]);
        assert_eq!(
            accept_language_tags("*;q=0.1, de;q=0"),
            Vec::<String>::new()
        );
        assert_eq!(accept_language_tags(""), Vec::<String>::new());
    }

    #[test]
    fn countries_come_from_the_zone_then_the_locale_region() {
        assert_eq!(region_of_locale("id-ID").as_deref(), Some("ID"));
        assert_eq!(region_of_locale("zh-Hant-tw").as_deref(), Some("TW"));
        assert_eq!(region_of_locale("es-419"), None);
        assert_eq!(region_of_locale("de"), None);
        assert_eq!(
            country(Some("Asia/Jakarta"), &["en-US"]).as_deref(),
            Some("ID")
        );
        assert_eq!(
            country(Some("UTC"), &["de", "de-AT"]).as_deref(),
            Some("AT")
        );
        assert_eq!(country(None, &["id-ID"]).as_deref(), Some("ID"));
        assert_eq!(country(None, &["en"]), None);
        assert_eq!(country_of_time_zone("Europe/Kyiv"), Some("UA"));
        assert_eq!(country_of_time_zone("Etc/GMT+7"), None);
    }
}
