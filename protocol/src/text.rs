//! Checks on the text inside fields: single lines, markdown, labels, SPDX ids, language tags.

use crate::error::EntryError;

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

/// A title, tag or other one-line field: not blank, no control characters (newlines included).
pub(crate) fn single_line(field: &'static str, s: &str, max: usize) -> Result<(), EntryError> {
    check_len(field, s, max)?;
    if s.trim().is_empty() {
        return Err(EntryError::InvalidField {
            field,
            reason: "must not be empty",
        });
    }
    if s.chars().any(char::is_control) {
        return Err(EntryError::InvalidField {
            field,
            reason: "must be a single line of text",
        });
    }
    Ok(())
}

/// Markdown: any text but control characters other than newline, carriage return and tab.
pub(crate) fn markdown(
    field: &'static str,
    s: &str,
    max: usize,
    allow_empty: bool,
) -> Result<(), EntryError> {
    check_len(field, s, max)?;
    if !allow_empty && s.trim().is_empty() {
        return Err(EntryError::InvalidField {
            field,
            reason: "must not be empty",
        });
    }
    if s.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(EntryError::InvalidField {
            field,
            reason: "contains control characters",
        });
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
        return Err(EntryError::InvalidField {
            field,
            reason: "must be an SPDX licence identifier such as CC-BY-4.0",
        });
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
        return Err(EntryError::InvalidField {
            field,
            reason: "must be a BCP 47 language tag such as en-GB",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line_rules() {
        assert!(single_line("title", "Fractions in Year 7", 200).is_ok());
        assert!(single_line("title", "  ", 200).is_err());
        assert!(single_line("title", "two\nlines", 200).is_err());
        assert!(single_line("title", "abc", 2).is_err());
    }

    #[test]
    fn markdown_rules() {
        assert!(markdown("body", "# Hi\n\n\tcode\r\n", 100, false).is_ok());
        assert!(markdown("body", "", 100, true).is_ok());
        assert!(markdown("body", "", 100, false).is_err());
        assert!(markdown("body", "bell\u{7}", 100, false).is_err());
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
