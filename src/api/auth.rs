//! Bearer-token authentication: the middleware that guards the API routes when
//! `--api-token` is set, and the redaction that keeps the token out of request logs.
//!
//! Which routes it guards is decided in `build_router` (it is layered per route group), so
//! the open routes (health, readiness, metrics, the API document, the static dashboard)
//! never reach it.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::api::ApiError;

/// The query parameter EventSource clients use, since they cannot send headers.
const QUERY_PARAMETER: &str = "access_token";

/// What the middleware checks against, and where it may look for the token.
#[derive(Clone)]
pub struct TokenCheck {
    /// SHA-256 of the configured token. Comparing digests (fixed 32 bytes) rather than the
    /// strings keeps the comparison constant-time in the token's length as well.
    expected: Arc<[u8; 32]>,
    /// Also accept `?access_token=` (only the SSE route: a token in a URL can end up in
    /// proxies' logs and browser history, so no other route takes it).
    allow_query: bool,
}

impl TokenCheck {
    pub fn header_only(token: &str) -> Self {
        Self {
            expected: Arc::new(digest(token.as_bytes())),
            allow_query: false,
        }
    }

    pub fn header_or_query(token: &str) -> Self {
        Self {
            allow_query: true,
            ..Self::header_only(token)
        }
    }

    fn matches(&self, presented: &[u8]) -> bool {
        digest(presented).ct_eq(self.expected.as_ref()).into()
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Middleware (`from_fn_with_state`): pass the request on when it carries the token,
/// answer 401 with `WWW-Authenticate: Bearer` otherwise.
pub async fn require_token(
    State(check): State<TokenCheck>,
    request: Request,
    next: Next,
) -> Response {
    let presented = bearer(&request).or_else(|| {
        check
            .allow_query
            .then(|| query_token(request.uri()))
            .flatten()
    });
    match presented {
        Some(token) if check.matches(token.as_bytes()) => next.run(request).await,
        Some(_) => unauthorized(
            "invalid API token",
            r#"Bearer realm="vggserve", error="invalid_token""#,
        ),
        None => unauthorized(
            "authentication required: send `Authorization: Bearer <token>`",
            r#"Bearer realm="vggserve""#,
        ),
    }
}

/// The credentials of an `Authorization: Bearer <token>` header (scheme case-insensitive,
/// as RFC 7235 says). Any other scheme counts as no token.
fn bearer(request: &Request) -> Option<String> {
    let value = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credentials) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credentials.trim().to_owned())
}

fn query_token(uri: &Uri) -> Option<String> {
    uri.query()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == QUERY_PARAMETER)
        .map(|(_, value)| percent_decode(value))
}

/// Decode `%XX` escapes and `+` (browsers' `encodeURIComponent` escapes what a token may
/// contain). A malformed escape is kept as written, so it simply fails to match.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let escaped = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok());
                if let Some(byte) = escaped {
                    out.push(byte);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' => out.push(b' '),
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn unauthorized(message: &str, challenge: &'static str) -> Response {
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, message).into_response();
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    response
}

/// The request URI for logs, with any `access_token` value replaced by `REDACTED`, so a
/// token sent in the query string never lands in the log.
pub fn redacted_uri(uri: &Uri) -> String {
    let Some(query) = uri.query() else {
        return uri.path().to_owned();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key == QUERY_PARAMETER => format!("{key}=REDACTED"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{}?{}", uri.path(), query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_by_value_only() {
        let check = TokenCheck::header_only("s3cret");
        assert!(check.matches(b"s3cret"));
        assert!(!check.matches(b"s3cre"));
        assert!(!check.matches(b"s3cret "));
        assert!(!check.matches(b""));
    }

    #[test]
    fn query_tokens_are_percent_decoded() {
        let uri: Uri = "/v1/jobs/x/events?a=1&access_token=a%2Bb%3D+c&z=%"
            .parse()
            .unwrap();
        assert_eq!(query_token(&uri).as_deref(), Some("a+b= c"));
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("100%"), "100%");
    }

    #[test]
    fn logged_uris_hide_the_token() {
        let uri: Uri = "/v1/jobs/x/events?access_token=abc&x=1".parse().unwrap();
        assert_eq!(
            redacted_uri(&uri),
            "/v1/jobs/x/events?access_token=REDACTED&x=1"
        );
        let uri: Uri = "/v1/jobs".parse().unwrap();
        assert_eq!(redacted_uri(&uri), "/v1/jobs");
    }
}
