//! `[web]`: where the node serves its pages, the address browsers use, and how long sign-in
//! links and sessions last.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// The default port of the web pages.
pub const DEFAULT_WEB_PORT: u16 = 4042;
/// A sign-in link lasts at most this long: it is a bearer secret until used.
const LINK_SECONDS_MAX: u32 = 3600;
/// A session lasts at most a day.
const SESSION_MINUTES_MAX: u32 = 24 * 60;
/// `public_url` at most this long.
const PUBLIC_URL_BYTES_MAX: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// Serve the pages at all.
    pub enabled: bool,
    /// Where. Loopback by default; a school serves its pages on its own network behind a
    /// reverse proxy that does TLS, or by setting its network address here.
    pub listen: SocketAddr,
    /// The address teachers' browsers use, such as `https://staffroom.school.example`: the
    /// start of sign-in links and feed links. Cookies are `Secure` when it is `https`.
    /// `http://` and the listen address when not set.
    pub public_url: Option<String>,
    /// How long a sign-in link from `staffroom web login` may wait before it is used.
    pub sign_in_link_seconds: u32,
    /// How long a session lasts after signing in.
    pub session_minutes: u32,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], DEFAULT_WEB_PORT)),
            public_url: None,
            sign_in_link_seconds: 600,
            session_minutes: 8 * 60,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebConfigError {
    #[error("[web] public_url {0:?} must be http:// or https:// and a host, with no path, query or spaces, at most 200 bytes")]
    PublicUrl(String),
    #[error("[web] sign_in_link_seconds must be 1 to {LINK_SECONDS_MAX} (it is {0})")]
    LinkSeconds(u32),
    #[error("[web] session_minutes must be 1 to {SESSION_MINUTES_MAX} (it is {0})")]
    SessionMinutes(u32),
}

impl WebConfig {
    pub fn check(&self) -> Result<(), WebConfigError> {
        if let Some(url) = &self.public_url {
            if !public_url_ok(url) {
                return Err(WebConfigError::PublicUrl(url.clone()));
            }
        }
        if !(1..=LINK_SECONDS_MAX).contains(&self.sign_in_link_seconds) {
            return Err(WebConfigError::LinkSeconds(self.sign_in_link_seconds));
        }
        if !(1..=SESSION_MINUTES_MAX).contains(&self.session_minutes) {
            return Err(WebConfigError::SessionMinutes(self.session_minutes));
        }
        Ok(())
    }

    /// The origin pages are reached at, without a trailing slash, given the bound address.
    pub fn origin(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{bound}"),
        }
    }

    /// Whether browsers reach the pages over TLS (so cookies are `Secure`).
    pub fn secure(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }
}

fn public_url_ok(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return false;
    };
    let host = rest.strip_suffix('/').unwrap_or(rest);
    url.len() <= PUBLIC_URL_BYTES_MAX
        && !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_urls_are_an_origin_only() {
        let with = |url: &str| WebConfig {
            public_url: Some(url.into()),
            ..WebConfig::default()
        };
        for good in [
            "https://staffroom.school.example",
            "http://10.0.0.5:4042/",
            "https://[::1]:8443",
        ] {
            assert_eq!(with(good).check(), Ok(()), "{good}");
        }
        for bad in [
            "ftp://x",
            "https://",
            "https://x/path",
            "https://x?y",
            "https://a b",
            "javascript:alert(1)",
        ] {
            assert!(with(bad).check().is_err(), "{bad}");
        }
        assert!(with("https://x").secure());
        assert!(!with("http://x").secure());
        assert_eq!(
            with("https://x/").origin("127.0.0.1:1".parse().unwrap()),
            "https://x"
        );
    }

    #[test]
    fn lifetimes_are_bounded() {
        let link = WebConfig {
            sign_in_link_seconds: 0,
            ..WebConfig::default()
        };
        assert_eq!(link.check(), Err(WebConfigError::LinkSeconds(0)));
        let session = WebConfig {
            session_minutes: 24 * 60 + 1,
            ..WebConfig::default()
        };
        assert!(session.check().is_err());
    }
}
