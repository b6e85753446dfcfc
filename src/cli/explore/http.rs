//! The HTTP pieces every handler of `ccem explore` shares: a request as the handlers see it
//! ([`Call`]), an answer ([`Reply`]), the body cap and the headers of every answer. It imports no
//! other file of the server, so the handlers (`api`, `train`) and the server (`server`, which
//! routes to them) all stand above it.

use serde_json::Value;
use tiny_http::Header;

/// The largest request body: an upload of `U` and `V` together.
pub const MAX_BODY: usize = 64 << 20;

/// An answer: a status and a body.
pub struct Reply {
    pub(super) status: u16,
    pub(super) content_type: &'static str,
    pub(super) body: Vec<u8>,
}

impl Reply {
    /// `200` with a JSON body.
    pub fn json(v: &Value) -> Reply {
        Reply {
            status: 200,
            content_type: "application/json",
            body: serde_json::to_vec(v).unwrap_or_default(),
        }
    }

    /// An error `status` with `{"error": message}`.
    pub fn error(status: u16, message: impl Into<String>) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            body: serde_json::to_vec(&serde_json::json!({ "error": message.into() }))
                .unwrap_or_default(),
        }
    }

    pub(super) fn asset(content_type: &'static str, body: &'static [u8]) -> Reply {
        Reply {
            status: 200,
            content_type,
            body: body.to_vec(),
        }
    }
}

/// A request as the handlers see it: method, path, decoded query, body.
pub struct Call<'a> {
    /// The path without the query.
    pub path: &'a str,
    /// The query's `key=value` pairs, percent-decoded.
    pub query: Vec<(String, String)>,
    /// The body (empty for `GET`).
    pub body: Vec<u8>,
}

impl Call<'_> {
    /// The query value of `key`, if given (and not empty).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.trim().is_empty())
    }
}

/// The headers every answer carries: no sniffing, no framing by other sites, only this server's
/// scripts and styles.
pub fn common_headers() -> Vec<Header> {
    [
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
        ("Cache-Control", "no-store"),
        (
            "Content-Security-Policy",
            "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
             frame-ancestors 'none'",
        ),
    ]
    .iter()
    .filter_map(|(k, v)| Header::from_bytes(k.as_bytes(), v.as_bytes()).ok())
    .collect()
}
