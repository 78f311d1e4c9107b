//! GET requests to an API as a polite, persistent client: requests spaced to the
//! connector's rate, retried with exponential backoff and jitter on connect errors, timeouts,
//! 5xx and 429 (`Retry-After` honoured), secrets read from environment variables when the
//! request is made and never shown in messages.

use std::{
    hash::{BuildHasher, Hasher},
    time::Duration,
};

use reqwest::{
    StatusCode, Url,
    header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER},
    redirect,
};
use serde_json::Value;
use tokio::time::Instant;

use super::config::{ConfigError, Keys};

/// The largest response body read, so that a wrong URL cannot exhaust memory.
const MAX_BODY_BYTES: usize = 64 << 20;
/// The longest `Retry-After` waited for inside a run; a longer one fails the run, and the
/// next scheduled run tries again.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The longest backoff between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Redirects followed, on the same host only.
const MAX_REDIRECTS: usize = 5;

/// The HTTP settings every kind shares, from its configuration.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HttpSettings {
    /// Header names and value templates; `${VAR}` is read from the environment per run.
    pub headers: Vec<(String, String)>,
    pub rate_limit_per_second: f64,
    pub max_attempts: u32,
    pub timeout: Duration,
    /// The wait before the first retry; it doubles with each attempt.
    pub backoff: Duration,
}

/// The configuration keys of [`HttpSettings`].
pub(crate) const HTTP_KEYS: [&str; 5] = [
    "headers",
    "rate_limit_per_second",
    "max_attempts",
    "timeout_seconds",
    "backoff_ms",
];

/// Header names whose values are credentials: they must come from the environment.
pub(crate) fn is_credential(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == "cookie"
        || ["auth", "key", "token", "secret", "password", "signature"]
            .iter()
            .any(|word| name.contains(word))
}

impl HttpSettings {
    pub(crate) fn parse(keys: &Keys<'_>, default_rate: f64) -> Result<Self, ConfigError> {
        let mut headers = Vec::new();
        if let Some(map) = keys.object("headers")? {
            for (name, value) in map {
                let key = format!("headers.{name}");
                if HeaderName::from_bytes(name.as_bytes()).is_err() {
                    return Err(ConfigError::new(&key, "is not a valid header name"));
                }
                let Some(template) = value.as_str() else {
                    return Err(ConfigError::new(&key, "must be a string"));
                };
                let variables = env_references(template).map_err(|e| ConfigError::new(&key, e))?;
                if HeaderValue::from_str(template).is_err() {
                    return Err(ConfigError::new(
                        &key,
                        "holds characters a header value cannot have",
                    ));
                }
                if is_credential(name) && variables.is_empty() {
                    return Err(ConfigError::new(
                        &key,
                        "a credential must come from an environment variable, such as \
                         \"Bearer ${API_TOKEN}\": the catalog does not store secrets",
                    ));
                }
                headers.push((name.clone(), template.to_owned()));
            }
        }
        let rate_limit_per_second = keys
            .number("rate_limit_per_second")?
            .unwrap_or(default_rate);
        if !(rate_limit_per_second.is_finite() && rate_limit_per_second > 0.0) {
            return Err(ConfigError::new(
                "rate_limit_per_second",
                "must be a number of requests per second above 0",
            ));
        }
        let max_attempts = keys.integer("max_attempts", 1, 20)?.unwrap_or(5) as u32;
        let timeout = keys.integer("timeout_seconds", 1, 3600)?.unwrap_or(30) as u64;
        let backoff = keys.integer("backoff_ms", 0, 600_000)?.unwrap_or(500) as u64;
        Ok(HttpSettings {
            headers,
            rate_limit_per_second,
            max_attempts,
            timeout: Duration::from_secs(timeout),
            backoff: Duration::from_millis(backoff),
        })
    }
}

/// The environment variables `${NAME}` a template refers to, or why it is malformed.
pub(crate) fn env_references(template: &str) -> Result<Vec<&str>, String> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err("has a ${ without its closing }".to_owned());
        };
        let name = &after[..end];
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "${{{name}}} is not an environment variable name (letters, digits, _)"
            ));
        }
        names.push(name);
        rest = &after[end + 1..];
    }
    Ok(names)
}

/// The template with each `${NAME}` replaced by the environment variable's value.
pub(crate) fn expand_env(template: &str, what: &str) -> Result<String, String> {
    let mut expanded = template.to_owned();
    for name in env_references(template).map_err(|e| format!("{what} {e}"))? {
        let value = std::env::var(name).map_err(|_| {
            format!("{what} needs the environment variable {name}, which is not set")
        })?;
        expanded = expanded.replacen(&format!("${{{name}}}"), &value, 1);
    }
    Ok(expanded)
}

/// A request's URL as sent, and as messages show it (without secrets).
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub url: Url,
    pub shown: String,
}

/// A response whose status is final: a success, or an error that retrying does not help.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON, or a message naming the URL.
    pub(crate) fn json(&self, target: &Target) -> Result<Value, String> {
        serde_json::from_slice(&self.body).map_err(|e| {
            format!(
                "{} answered {} that is not JSON ({e})",
                target.shown,
                if self.body.is_empty() {
                    "an empty body".to_owned()
                } else {
                    format!("{} bytes", self.body.len())
                }
            )
        })
    }
}

/// The client of one connector run.
pub(crate) struct Client {
    http: reqwest::Client,
    headers: HeaderMap,
    /// Environment variables used and their values, hidden from shown URLs.
    secrets: Vec<(String, String)>,
    settings: HttpSettings,
    spacing: Duration,
    next_request: Option<Instant>,
    /// Requests sent, retries included.
    pub requests: u64,
    pub retries: u64,
}

impl Client {
    /// A client with the connector's headers, their variables read from the environment now.
    /// The values of the variables that `templates` (such as the URL) use are never shown.
    pub(crate) fn new(
        connector: &str,
        settings: &HttpSettings,
        templates: &[&str],
    ) -> Result<Self, String> {
        let mut secrets = Vec::new();
        for template in templates
            .iter()
            .copied()
            .chain(settings.headers.iter().map(|(_, t)| t.as_str()))
        {
            for name in env_references(template)? {
                if let Ok(value) = std::env::var(name)
                    && !value.is_empty()
                {
                    secrets.push((name.to_owned(), value));
                }
            }
        }
        // Longest first, so that a secret containing another is hidden whole.
        secrets.sort_by_key(|(_, value)| std::cmp::Reverse(value.len()));
        let mut headers = HeaderMap::new();
        for (name, template) in &settings.headers {
            let value = expand_env(template, &format!("header {name}"))?;
            let mut value = HeaderValue::from_str(&value).map_err(|_| {
                format!("header {name}: the value from the environment is not a valid header value")
            })?;
            // Never printed by Debug, and kept out of HTTP/2 header compression tables.
            value.set_sensitive(true);
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("header {name} is not a valid header name"))?;
            headers.insert(name, value);
        }
        let http = reqwest::Client::builder()
            .user_agent(format!(
                "HealthAI/{} (connector {connector})",
                env!("CARGO_PKG_VERSION")
            ))
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .redirect(redirect::Policy::custom(|attempt| {
                let same_host = attempt
                    .previous()
                    .first()
                    .is_some_and(|first| first.host_str() == attempt.url().host_str());
                if attempt.previous().len() > MAX_REDIRECTS {
                    attempt.error("too many redirects")
                } else if same_host {
                    attempt.follow()
                } else {
                    // The configured headers may carry credentials: not for another host.
                    attempt.stop()
                }
            }))
            .build()
            .map_err(|e| format!("cannot start an HTTP client: {}", describe(&e)))?;
        Ok(Client {
            http,
            headers,
            secrets,
            spacing: Duration::from_secs_f64(1.0 / settings.rate_limit_per_second),
            settings: settings.clone(),
            next_request: None,
            requests: 0,
            retries: 0,
        })
    }

    /// The text with the values of secrets replaced by `${NAME}`.
    fn redact(&self, text: &str) -> String {
        let mut shown = text.to_owned();
        for (name, value) in &self.secrets {
            let hidden = format!("${{{name}}}");
            shown = shown
                .replace(value.as_str(), &hidden)
                .replace(&super::percent_encode(value), &hidden);
        }
        shown
    }

    /// The target of a URL.
    pub(crate) fn target(&self, url: &str) -> Result<Target, String> {
        let parsed =
            Url::parse(url).map_err(|e| format!("{} is not a URL: {e}", self.redact(url)))?;
        Ok(Target {
            shown: self.redact(parsed.as_str()),
            url: parsed,
        })
    }

    /// The target of a link found in the response from `from`, relative to it. Links to
    /// another origin are refused: the configured headers may carry credentials.
    pub(crate) fn link(&self, from: &Target, link: &str) -> Result<Target, String> {
        let url = from.url.join(link).map_err(|e| {
            format!(
                "{}: the next-page link {link:?} is not a URL: {e}",
                from.shown
            )
        })?;
        if url.origin() != from.url.origin() {
            return Err(format!(
                "{}: the next-page link goes to another site ({}), where the connector's \
                 headers are not sent",
                from.shown,
                url.origin().ascii_serialization()
            ));
        }
        Ok(Target {
            shown: self.redact(url.as_str()),
            url,
        })
    }

    /// Waits until the rate limit allows the next request.
    async fn pace(&mut self) {
        if let Some(at) = self.next_request {
            tokio::time::sleep_until(at).await;
        }
        self.next_request = Some(Instant::now() + self.spacing);
    }

    /// GETs the target, retrying what may pass on a new attempt. Answers the response once
    /// its status is final (2xx, 3xx, 4xx other than 429), or why it never was.
    pub(crate) async fn get(&mut self, target: &Target) -> Result<Response, String> {
        let attempts = self.settings.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            self.pace().await;
            self.requests += 1;
            let sent = self
                .http
                .get(target.url.clone())
                .headers(self.headers.clone())
                .send()
                .await;
            let (problem, wait) = match sent {
                Ok(response) => {
                    let status = response.status();
                    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                        let asked = retry_after(response.headers());
                        let problem = format!("HTTP {} from {}", status.as_u16(), target.shown);
                        if let Some(asked) = asked
                            && asked > MAX_RETRY_AFTER
                        {
                            return Err(format!(
                                "{problem}: the server asks to wait {} s, longer than a run \
                                 waits; the next scheduled run tries again",
                                asked.as_secs()
                            ));
                        }
                        (problem, asked)
                    } else {
                        match read_body(response).await {
                            Ok(body) => return Ok(Response { status, body }),
                            Err(e) => (format!("{}: {e}", target.shown), None),
                        }
                    }
                }
                Err(e) if e.is_builder() || e.is_redirect() => {
                    return Err(format!("{}: {}", target.shown, describe(&e)));
                }
                Err(e) => (format!("{}: {}", target.shown, describe(&e)), None),
            };
            if attempt >= attempts {
                return Err(format!(
                    "{problem} (gave up after {attempt} attempt{})",
                    if attempt == 1 { "" } else { "s" }
                ));
            }
            let wait = wait.unwrap_or_else(|| backoff(self.settings.backoff, attempt));
            tracing::debug!(%problem, attempt, ?wait, "retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
            self.retries += 1;
        }
    }
}

/// The wait before attempt `attempt + 1`: doubling from `first`, capped, with jitter between
/// half and all of it, so that clients failed together do not come back together.
fn backoff(first: Duration, attempt: u32) -> Duration {
    let full = first
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let fraction = 0.5 + 0.5 * (random % 1_000) as f64 / 1_000.0;
    full.mul_f64(fraction)
}

/// `Retry-After` as seconds or as an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(format!(
                "the response is larger than {} MiB",
                MAX_BODY_BYTES >> 20
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// What went wrong, without the URL (which may carry a secret) and with the root cause.
fn describe(error: &reqwest::Error) -> String {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect"
    } else if error.is_redirect() {
        "too many redirects"
    } else if error.is_body() || error.is_decode() {
        "the response broke off"
    } else if error.is_builder() {
        "not a valid request"
    } else {
        "the request failed"
    };
    let mut cause: &dyn std::error::Error = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    if std::ptr::addr_eq(cause, error as &dyn std::error::Error) {
        return what.to_owned();
    }
    format!("{what}: {cause}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_references_are_found_and_checked() {
        assert_eq!(
            env_references("Bearer ${API_TOKEN} and ${X1}"),
            Ok(vec!["API_TOKEN", "X1"])
        );
        assert_eq!(env_references("no variables"), Ok(vec![]));
        assert!(env_references("Bearer ${TOKEN").is_err());
        assert!(env_references("${1X}").unwrap_err().contains("1X"));
        assert!(env_references("${}").is_err());
    }

    #[test]
    fn a_missing_variable_is_named() {
        let message = expand_env(
            "Bearer ${HEALTHAI_TEST_SURELY_UNSET}",
            "header Authorization",
        )
        .unwrap_err();
        assert!(message.contains("HEALTHAI_TEST_SURELY_UNSET"), "{message}");
        assert!(message.contains("header Authorization"), "{message}");
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for attempt in 1..=4 {
            let full = Duration::from_millis(100 * (1 << (attempt - 1)));
            let wait = backoff(Duration::from_millis(100), attempt);
            assert!(wait >= full / 2 && wait <= full, "{attempt}: {wait:?}");
        }
        assert!(backoff(Duration::from_secs(10), 30) <= MAX_BACKOFF);
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO), "a past date");
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn credential_headers_are_recognised() {
        for name in ["Authorization", "X-Api-Key", "x-auth-token", "Cookie"] {
            assert!(is_credential(name), "{name}");
        }
        for name in ["Accept", "User-Agent"] {
            assert!(!is_credential(name), "{name}");
        }
    }
}
