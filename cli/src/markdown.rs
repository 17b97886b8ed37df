//! Markdown bodies for a terminal: headings bold, emphasis in italics, strong text bold, list
//! items with bullets or numbers, links as "text (address)", code indented. Anything else
//! (piped output, `NO_COLOR`) gets the markdown as written, unchanged.

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

const BOLD: &str = "\x1b[1m";
const ITALIC: &str = "\x1b[3m";
const UNDERLINE: &str = "\x1b[4m";
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

/// Whether output is for a person at a terminal that may be styled.
pub fn styled_stdout() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// `md` as it should appear: rendered with terminal styles when `styled`, else unchanged.
pub fn render(md: &str, styled: bool) -> String {
    if !styled {
        return md.to_owned();
    }
    let mut out = String::new();
    // Open lists: the next number of each ordered one, `None` for bullets.
    let mut lists: Vec<Option<u64>> = Vec::new();
    let mut links: Vec<String> = Vec::new();
    for event in Parser::new_ext(md, Options::ENABLE_STRIKETHROUGH) {
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                out.push_str(BOLD);
                if level == HeadingLevel::H1 {
                    out.push_str(UNDERLINE);
                }
            }
            Event::End(TagEnd::Heading(_)) => out.push_str(&format!("{RESET}\n\n")),
            Event::Start(Tag::Emphasis) => out.push_str(ITALIC),
            Event::Start(Tag::Strong) => out.push_str(BOLD),
            Event::End(TagEnd::Emphasis | TagEnd::Strong) => out.push_str(RESET),
            Event::End(TagEnd::Paragraph) => out.push_str("\n\n"),
            Event::Start(Tag::List(first)) => lists.push(first),
            Event::End(TagEnd::List(_)) => {
                lists.pop();
                if lists.is_empty() {
                    out.push('\n');
                }
            }
            Event::Start(Tag::Item) => {
                let depth = lists.len().saturating_sub(1);
                out.push_str(&"  ".repeat(depth));
                match lists.last_mut() {
                    Some(Some(n)) => {
                        out.push_str(&format!("{n}. "));
                        *n = n.saturating_add(1);
                    }
                    _ => out.push_str("• "),
                }
            }
            Event::End(TagEnd::Item) if !out.ends_with('\n') => out.push('\n'),
            Event::Start(Tag::Link { dest_url, .. }) => {
                out.push_str(UNDERLINE);
                links.push(dest_url.into_string());
            }
            Event::End(TagEnd::Link) => {
                let url = links.pop().unwrap_or_default();
                out.push_str(&format!("{RESET} {DIM}({url}){RESET}"));
            }
            Event::Start(Tag::CodeBlock(_)) => {}
            Event::End(TagEnd::CodeBlock) => out.push('\n'),
            Event::Text(text) => {
                out.push_str(&text);
            }
            Event::Code(code) => out.push_str(&format!("{DIM}`{code}`{RESET}")),
            Event::SoftBreak => out.push(' '),
            Event::HardBreak | Event::Rule => out.push('\n'),
            // Raw HTML and the rest are shown as their text would be: nothing active.
            Event::Html(text) | Event::InlineHtml(text) => out.push_str(&text),
            _ => {}
        }
    }
    out.trim_end().to_owned() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piped_output_keeps_the_markdown_as_written() {
        let md = "# Title\n\n- *one*\n- two\n";
        assert_eq!(render(md, false), md);
    }

    #[test]
    fn a_terminal_gets_headings_lists_emphasis_and_links_styled() {
        let md =
            "# Fractions\n\nSome *emphasis*, **strong** and [a link](https://example.org).\n\n\
                  - first\n- second\n\n1. one\n2. two\n";
        let out = render(md, true);
        assert!(
            out.starts_with(&format!("{BOLD}{UNDERLINE}Fractions{RESET}")),
            "{out:?}"
        );
        assert!(out.contains(&format!("{ITALIC}emphasis{RESET}")), "{out:?}");
        assert!(out.contains(&format!("{BOLD}strong{RESET}")), "{out:?}");
        assert!(
            out.contains(&format!("a link{RESET} {DIM}(https://example.org){RESET}")),
            "{out:?}"
        );
        assert!(out.contains("• first\n• second\n"), "{out:?}");
        assert!(out.contains("1. one\n2. two\n"), "{out:?}");
        assert!(!out.contains('#') && !out.contains("**"), "{out:?}");
    }
}
