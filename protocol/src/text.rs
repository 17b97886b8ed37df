//! Checks on the text inside fields: single lines, markdown, labels, SPDX ids, language tags.
//!
//! Every character class used here is a fixed list of code points, written out below and in
//! `docs/protocol.md`, so that the verdict never depends on which Unicode version a node's
//! standard library ships: two implementations agree on every string, forever.

use crate::error::EntryError;

/// Whitespace: the 25 code points of Unicode's `White_Space` property.
pub fn is_whitespace(c: char) -> bool {
    matches!(
        c,
        '\u{9}'..='\u{D}'
            | ' '
            | '\u{85}'
            | '\u{A0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200A}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202F}'
            | '\u{205F}'
            | '\u{3000}'
    )
}

/// Control characters: the C0 and C1 sets and DEL (general category `Cc`).
pub fn is_control(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1F}' | '\u{7F}'..='\u{9F}')
}

/// Invisible characters: Unicode's `Default_Ignorable_Code_Point` set (as of Unicode 15.1,
/// frozen here). Allowed inside text (emoji and many scripts need joiners and selectors), but
/// text made only of these and whitespace is blank.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{AD}'
            | '\u{34F}'
            | '\u{61C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// Bidirectional embedding, override and isolate controls. They reorder how the text around
/// them is displayed (a title could show words in an order its author never wrote), and
/// ordinary right-to-left writing does not need them. The marks U+200E, U+200F and U+061C
/// remain allowed.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Blank: nothing but whitespace and invisible characters (the empty string is blank).
/// `s` cut to at most `max` bytes, at a character boundary.
pub fn truncate_bytes(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

pub fn is_blank(s: &str) -> bool {
    s.chars().all(|c| is_whitespace(c) || is_invisible(c))
}

fn check_len(field: &'static str, s: &str, max: usize) -> Result<(), EntryError> {
    if s.len() > max {
        return Err(EntryError::FieldTooLong {
            field,
            len: s.len(),
            max,
        });
    }
    Ok(())
}

fn invalid(field: &'static str, reason: &'static str) -> EntryError {
    EntryError::InvalidField { field, reason }
}

/// A title, tag or other one-line field: not blank, no control characters, no line or
/// paragraph separators, no bidirectional controls.
pub fn single_line(field: &'static str, s: &str, max: usize) -> Result<(), EntryError> {
    check_len(field, s, max)?;
    if is_blank(s) {
        return Err(invalid(field, "must not be blank"));
    }
    if s.chars()
        .any(|c| is_control(c) || matches!(c, '\u{2028}' | '\u{2029}'))
    {
        return Err(invalid(field, "must be a single line of text"));
    }
    if s.chars().any(is_bidi_control) {
        return Err(invalid(field, "contains bidirectional control characters"));
    }
    Ok(())
}

/// Markdown: any text but control characters other than tab, line feed and carriage return,
/// and no bidirectional controls. `allow_blank` for optional descriptions.
pub(crate) fn markdown(
    field: &'static str,
    s: &str,
    max: usize,
    allow_blank: bool,
) -> Result<(), EntryError> {
    check_len(field, s, max)?;
    if !allow_blank && is_blank(s) {
        return Err(invalid(field, "must not be blank"));
    }
    if s.chars()
        .any(|c| is_control(c) && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(invalid(field, "contains control characters"));
    }
    if s.chars().any(is_bidi_control) {
        return Err(invalid(field, "contains bidirectional control characters"));
    }
    Ok(())
}

/// An SPDX licence identifier: letters, digits, '.', '-' and '+', e.g. `CC-BY-SA-4.0`.
pub(crate) fn spdx_id(field: &'static str, s: &str, max: usize) -> Result<(), EntryError> {
    check_len(field, s, max)?;
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+'));
    if !ok {
        return Err(invalid(
            field,
            "must be an SPDX licence identifier such as CC-BY-4.0",
        ));
    }
    Ok(())
}

/// A BCP 47 language tag, checked for shape: a 2–3 letter language, then 1–8 character subtags.
pub(crate) fn language_tag(field: &'static str, s: &str, max: usize) -> Result<(), EntryError> {
    check_len(field, s, max)?;
    let mut parts = s.split('-');
    let lang_ok = parts
        .next()
        .is_some_and(|p| (2..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphabetic()));
    let rest_ok =
        parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
    if !(lang_ok && rest_ok) {
        return Err(invalid(
            field,
            "must be a BCP 47 language tag such as en-GB",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line_rules() {
        assert!(single_line("title", "Fractions in Year 7", 200).is_ok());
        assert!(single_line("title", "Ffracsiynau ym Mlwyddyn 7 👩‍🏫", 200).is_ok());
        assert!(single_line("title", "  ", 200).is_err());
        assert!(single_line("title", "two\nlines", 200).is_err());
        assert!(single_line("title", "two\u{2028}lines", 200).is_err());
        assert!(single_line("title", "abc", 2).is_err());
        assert!(single_line("title", "\u{200B}", 200).is_err(), "blank");
        assert!(single_line("title", "\u{A0}\u{FEFF}\u{3000}", 200).is_err());
        assert!(single_line("title", "evil\u{202E}txt.exe", 200).is_err());
        assert!(single_line("title", "שלום\u{200F} world", 200).is_ok());
    }

    #[test]
    fn markdown_rules() {
        assert!(markdown("body", "# Hi\n\n\tcode\r\n", 100, false).is_ok());
        assert!(markdown("body", "", 100, true).is_ok());
        assert!(markdown("body", "", 100, false).is_err());
        assert!(markdown("body", " \u{200B}\n", 100, false).is_err());
        assert!(markdown("body", "bell\u{7}", 100, false).is_err());
        assert!(markdown("body", "C1\u{85}", 100, false).is_err());
        assert!(markdown("body", "isolate\u{2066}x", 100, false).is_err());
    }

    #[test]
    fn character_classes_match_unicode_where_it_is_stable() {
        // The standard library's tables agree with our frozen lists on these classes.
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            assert_eq!(is_whitespace(c), c.is_whitespace(), "{:X}", c as u32);
            assert_eq!(is_control(c), c.is_control(), "{:X}", c as u32);
        }
        assert!(is_invisible('\u{200D}') && !is_invisible('a') && !is_invisible(' '));
    }

    #[test]
    fn spdx_and_language() {
        for ok in [
            "CC-BY-4.0",
            "MIT",
            "CC-BY-SA-4.0",
            "GPL-3.0+",
            "LicenseRef-School-1",
        ] {
            assert!(spdx_id("licence", ok, 64).is_ok(), "{ok}");
        }
        for bad in ["", "CC BY", "CC/BY"] {
            assert!(spdx_id("licence", bad, 64).is_err(), "{bad}");
        }
        for ok in ["en", "en-GB", "cy", "zh-Hant-TW", "gsw-u-sd-chzh"] {
            assert!(language_tag("language", ok, 35).is_ok(), "{ok}");
        }
        for bad in ["", "e", "english", "en_GB", "en--GB", "12"] {
            assert!(language_tag("language", bad, 35).is_err(), "{bad}");
        }
    }
}
