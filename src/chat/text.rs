//! What users type, checked so it cannot deceive: display names, message
//! texts and send ids.
//!
//! Three tricks are refused. Bidi controls (U+202E and friends) reorder
//! what follows them, so "moc.evil" can read as "live.com" and a message
//! can make its sender look like someone else. A message of only
//! zero-width, format or blank characters shows as an empty line that
//! still notifies everyone. And a name made of look-alike letters (a
//! Cyrillic "А" in "Аda") passes for someone who is online: names are
//! unique by their Unicode TR39 confusables *skeleton* ([`name_key`]),
//! which the provider keeps as its unique name index, so the check holds
//! across every node sharing it.

use super::session::refuse;
use super::ChatText;
use comet::{unix_millis, ClientRecord, PublicToken};
use http::StatusCode;
use leptos::prelude::ServerFnError;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Said when a name's skeleton is already in use.
pub const NAME_LOOKALIKE: &str = "That name looks too much like someone who is online.";

/// The key names are unique by: the TR39 skeleton of the lower-cased
/// name, so case and look-alike letters do not make a different name.
pub fn name_key(name: &str) -> String {
    unicode_security::skeleton(&name.to_lowercase()).collect()
}

/// Explicit bidi formatting characters: embeddings, overrides, isolates,
/// and the marks (LRM, RLM, ALM).
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
    )
}

/// Whether `c` draws nothing: white space, controls, format characters
/// (category Cf: zero-width spaces and joiners, word joiner, …) and the
/// Default_Ignorable code points of other categories (Hangul fillers,
/// variation selectors, the combining grapheme joiner), plus the blank
/// Braille pattern, which shows as a space.
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c.general_category(),
            GeneralCategory::Control
                | GeneralCategory::Format
                | GeneralCategory::SpaceSeparator
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
        )
        || matches!(
            c,
            '\u{034F}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FFA0}'
                | '\u{E0100}'..='\u{E01EF}'
        )
}

/// Whether `text` would show as nothing at all.
pub fn renders_as_nothing(text: &str) -> bool {
    text.chars().all(is_invisible)
}

/// A display name, trimmed, its runs of spaces made one (so "Ada  L" is
/// not a second "Ada L"), or a sentence saying what is wrong with it.
pub fn valid_name(raw: &str, max_chars: usize) -> Result<String, ServerFnError> {
    let name = raw
        .split(' ')
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let name = name.trim();
    if renders_as_nothing(name) {
        return Err(refuse(StatusCode::BAD_REQUEST, "Please enter a name."));
    }
    if name.chars().count() > max_chars {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            format!("That name is too long: at most {max_chars} characters."),
        ));
    }
    if name.chars().any(is_bidi_control) {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "Names may not contain text-direction controls.",
        ));
    }
    // Letters that draw nothing (a Hangul filler is a letter) would make
    // "Ada" and "Ada" + filler two names that look the same.
    let allowed =
        |c: char| (c.is_alphanumeric() && !is_invisible(c)) || matches!(c, ' ' | '-' | '_' | '.');
    if !name.chars().all(allowed) {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "Names may use letters, digits, spaces, '-', '_' and '.' only.",
        ));
    }
    Ok(name.to_owned())
}

/// The contents of a chat message, or a sentence saying why not.
pub fn chat_text(
    max_chars: usize,
    from: &ClientRecord,
    raw: &str,
    to: Option<(&PublicToken, &str)>,
) -> Result<serde_json::Value, ServerFnError> {
    // Browsers send "\r\n" for a newline in a form; keep one kind.
    let text = raw.replace("\r\n", "\n");
    let text = text.trim();
    if text.is_empty() {
        return Err(refuse(StatusCode::BAD_REQUEST, "Type a message first."));
    }
    if text.chars().count() > max_chars {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            format!("That message is too long: at most {max_chars} characters."),
        ));
    }
    if text.chars().any(is_bidi_control) {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "That message contains text-direction controls, which could disguise it.",
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "That message contains control characters.",
        ));
    }
    if renders_as_nothing(text) {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "That message would show as nothing: type something visible.",
        ));
    }
    let contents = ChatText {
        from_name: from.display_name.clone(),
        from_public: from.public.to_string(),
        text: text.to_owned(),
        sent_at_ms: unix_millis(),
        to_public: to.map(|(public, _)| public.to_string()),
        to_name: to.map(|(_, name)| name.to_owned()),
    };
    serde_json::to_value(contents).map_err(super::session::internal)
}

/// The idempotency key of a send: the sender's public token and the
/// page's id for the send, so two users' ids never collide.
pub fn idempotency_key(
    client: &ClientRecord,
    id: Option<&str>,
) -> Result<Option<String>, ServerFnError> {
    let Some(id) = id.filter(|id| !id.is_empty()) else {
        return Ok(None);
    };
    let ok = id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "The send id must be at most 64 letters, digits, '-' or '_'.",
        ));
    }
    Ok(Some(format!("{}:{id}", client.public)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cyrillic_look_alike_has_the_latin_names_key() {
        assert_eq!(name_key("\u{0410}da"), name_key("Ada"));
        assert_eq!(name_key("ADA"), name_key("ada"));
        assert_ne!(name_key("Ada"), name_key("Bob"));
    }

    #[test]
    fn every_bidi_control_is_recognised() {
        for c in [
            '\u{202A}', '\u{202E}', '\u{2066}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}',
        ] {
            assert!(is_bidi_control(c), "{:04X}", c as u32);
        }
        assert!(!is_bidi_control('a'));
        assert!(!is_bidi_control('\u{05D0}'));
    }

    #[test]
    fn names_lose_extra_spaces_and_may_not_hide_invisible_letters() {
        assert_eq!(
            valid_name("  Ada   Lovelace ", 32).ok().as_deref(),
            Some("Ada Lovelace")
        );
        assert!(valid_name("Ada\u{3164}", 32).is_err());
        assert!(valid_name("Ada\u{200B}", 32).is_err());
        assert!(valid_name("Zoë 2", 32).is_ok());
    }

    #[test]
    fn zero_width_and_filler_text_renders_as_nothing() {
        assert!(renders_as_nothing(
            "\u{200B}\u{200C}\u{200D}\u{2060}\u{FEFF}"
        ));
        assert!(renders_as_nothing("\u{3164} \u{115F}\u{FE0F}"));
        assert!(renders_as_nothing("\u{00AD}\u{2800}"));
        assert!(!renders_as_nothing("\u{200B}a"));
        assert!(!renders_as_nothing("\u{1F600}\u{FE0F}"));
    }
}
