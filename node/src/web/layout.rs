//! The frame every page shares: the head (title, description, Open Graph tags, schema.org
//! JSON-LD), the site bar with who is signed in, the main column and the footer.

use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::Viewer;

/// What a page says about itself in its head.
pub struct Head {
    pub title: String,
    /// One line for link previews and search engines.
    pub description: String,
    /// The page's address in full (origin and path), for `og:url` and the canonical link.
    pub url: String,
    /// `website` or `article`.
    pub og_type: &'static str,
    /// schema.org data about the page's subject.
    pub json_ld: Option<serde_json::Value>,
    /// The path of the Atom feed that follows this page, if there is one.
    pub feed: Option<String>,
    /// The page has forms that write: it loads `/write.js`, which signs in the browser.
    pub writes: bool,
}

/// A whole page for `viewer`.
pub fn page(viewer: &Viewer, head: Head, main: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                (head_start(&head.title))
                meta name="description" content=(head.description);
                link rel="canonical" href=(head.url);
                meta property="og:title" content=(head.title);
                meta property="og:description" content=(head.description);
                meta property="og:type" content=(head.og_type);
                meta property="og:url" content=(head.url);
                meta property="og:site_name" content="Staffroom";
                @if let Some(feed) = &head.feed {
                    link rel="alternate" type="application/atom+xml" title=(head.title) href=(feed);
                }
                @if let (true, Viewer::Teacher { record, csrf, .. }) = (head.writes, viewer) {
                    meta name="staffroom-csrf" content=(csrf);
                    meta name="staffroom-teacher" content=(record.key);
                    script src="/write.js" defer {}
                }
                @if let Some(data) = &head.json_ld {
                    script type="application/ld+json" { (PreEscaped(json_in_html(data))) }
                }
            }
            body {
                a.skip href="#main" { "Skip to content" }
                (site_bar(viewer))
                main #main { (main) }
                footer.site {
                    p { "Served by this school's Staffroom node. Content belongs to its authors, under the licence each states." }
                }
            }
        }
    };
    Html(markup.into_string()).into_response()
}

fn site_bar(viewer: &Viewer) -> Markup {
    html! {
        header.site {
            nav.bar aria-label="Site" {
                a.brand href="/" { "Staffroom" }
                @match viewer {
                    Viewer::Teacher { record, csrf, .. } => {
                        a href="/search" { "Search" }
                        a href="/key" { "Your key" }
                        span { "Signed in as " (record.name) }
                        form method="post" action="/sign-out" {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                    Viewer::Visitor(_) => {}
                }
            }
        }
    }
}

/// A small page without the site bar: errors and the sign-in steps.
pub fn bare(title: &str, body: Markup) -> Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                (head_start(title))
                meta name="robots" content="noindex";
            }
            body {
                header.site { nav.bar aria-label="Site" { a.brand href="/" { "Staffroom" } } }
                main #main { (body) }
            }
        }
    };
    Html(markup.into_string())
}

/// What every page's head starts with.
fn head_start(title: &str) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        title { (title) " · Staffroom" }
        link rel="stylesheet" href="/style.css";
    }
}

/// JSON for a `<script type="application/ld+json">` block: `<`, `>` and `&` escaped as JSON
/// escapes, so no text in it can close the element.
pub fn json_in_html(data: &serde_json::Value) -> String {
    data.to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_ld_cannot_close_its_script() {
        let data = serde_json::json!({"name": "</script><script>alert(1)</script> & more"});
        let text = json_in_html(&data);
        assert!(
            !text.contains('<') && !text.contains('>') && !text.contains('&'),
            "{text}"
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, data, "still the same JSON");
    }
}
