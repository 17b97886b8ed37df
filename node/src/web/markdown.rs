//! Authors' markdown as HTML for the pages: rendered by pulldown-cmark, then cleaned by
//! ammonia, which keeps a fixed set of tags and attributes and only `http`, `https` and
//! `mailto` links. Whatever an author writes — raw HTML, `<script>`, `javascript:` links,
//! event attributes — comes out as inert text or not at all.

use std::collections::HashSet;
use std::sync::OnceLock;

use maud::{Markup, PreEscaped};
use pulldown_cmark::{html, Options, Parser};

/// The HTML for `markdown`, safe to put in a page.
pub fn render(markdown: &str) -> Markup {
    let mut raw = String::with_capacity(markdown.len() + markdown.len() / 4);
    html::push_html(&mut raw, Parser::new_ext(markdown, options()));
    PreEscaped(cleaner().clean(&raw).to_string())
}

/// A plain-text excerpt of `markdown`: its first `chars_max` characters of text.
pub fn excerpt(markdown: &str, chars_max: usize) -> String {
    let mut text = String::new();
    for event in Parser::new_ext(markdown, options()) {
        match event {
            pulldown_cmark::Event::Text(t) | pulldown_cmark::Event::Code(t) => text.push_str(&t),
            pulldown_cmark::Event::SoftBreak | pulldown_cmark::Event::HardBreak => text.push(' '),
            pulldown_cmark::Event::End(_) if !text.ends_with(' ') => text.push(' '),
            _ => {}
        }
        if text.chars().count() > chars_max {
            break;
        }
    }
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let trimmed = text.as_str();
    match trimmed.char_indices().nth(chars_max) {
        Some((cut, _)) => format!("{}…", trimmed[..cut].trim_end()),
        None => trimmed.to_owned(),
    }
}

fn options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS
}

fn cleaner() -> &'static ammonia::Builder<'static> {
    static CLEANER: OnceLock<ammonia::Builder<'static>> = OnceLock::new();
    CLEANER.get_or_init(|| {
        let mut b = ammonia::Builder::default();
        b.url_schemes(HashSet::from(["http", "https", "mailto"]))
            .link_rel(Some("noopener noreferrer nofollow ugc"))
            // Images would load from anywhere and tell their hosts who reads what; the
            // page's policy blocks other origins anyway.
            .rm_tags(["img"]);
        b
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_renders() {
        let html = render("# Fractions\n\nA *fine* [link](https://example.org).").into_string();
        assert!(html.contains("<h1>Fractions</h1>"), "{html}");
        assert!(html.contains("<em>fine</em>"), "{html}");
        assert!(
            html.contains(
                r#"<a href="https://example.org" rel="noopener noreferrer nofollow ugc">link</a>"#
            ),
            "{html}"
        );
    }

    #[test]
    fn hostile_markdown_comes_out_inert() {
        let hostile = "<script>alert(1)</script>\n\n[click](javascript:alert(2)) \
                       <a href=\"javascript:alert(3)\">x</a> <img src=x onerror=alert(4)> \
                       <div onclick=\"alert(5)\" style=\"x\">d</div> [data](data:text/html,hi) \
                       <iframe src=\"https://evil.example\"></iframe>";
        let html = render(hostile).into_string();
        for banned in [
            "<script",
            "javascript:",
            "onerror",
            "onclick",
            "<img",
            "<iframe",
            "data:text",
            "style=",
        ] {
            assert!(!html.contains(banned), "{banned} survived: {html}");
        }
        assert!(html.contains("click"), "the link's text stays: {html}");
    }

    #[test]
    fn excerpts_are_plain_and_bounded() {
        assert_eq!(
            excerpt("# Title\n\nSome **bold** text", 100),
            "Title Some bold text"
        );
        assert_eq!(excerpt("abcdefghij", 4), "abcd…");
        assert_eq!(excerpt("<b>x</b>", 10), "x");
    }
}
