//! The HTTP server of `ccem explore`: tiny_http, a fixed pool of worker threads, the `Host` and
//! `Origin` checks, the body cap, and the routing to [`super::api`] and [`super::train`].
//!
//! Safe by default (issue 19): bound to 127.0.0.1 unless told otherwise; a request whose `Host`
//! is not this server's (a loopback name or an IP literal with this port) or whose `Origin` is
//! not `http://` + that `Host` is refused with 403, which stops DNS rebinding and cross-site
//! requests; bodies are capped at [`MAX_BODY`]; every malformed request gets a 4xx with a message.

use super::http::{common_headers, Call, Reply, MAX_BODY};
use super::{api, assets, train};
use anyhow::{Context, Result};
use ccem::options::MemoryArg;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tiny_http::{Header, Method, Request, Response, StatusCode};

/// Worker threads answering requests (a training stream gets its own thread; see
/// [`train::MAX_RUNS`]). With tiny_http's accept queue, more concurrent clients wait their turn
/// instead of being dropped.
pub const WORKERS: usize = 8;

/// A running server.
pub struct Server {
    http: Arc<tiny_http::Server>,
    addr: SocketAddr,
    stop: Stopper,
    workers: Vec<JoinHandle<()>>,
    exposed: bool,
}

/// Stops a [`Server`] from another thread (the Ctrl-C handler, a test).
#[derive(Clone)]
pub struct Stopper {
    flag: Arc<AtomicBool>,
    http: Arc<tiny_http::Server>,
    runs: Arc<train::Runs>,
}

impl Stopper {
    /// Stops accepting requests, cancels every training run and wakes the workers.
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.runs.cancel_all();
        for _ in 0..WORKERS {
            self.http.unblock();
        }
    }
}

/// What every handler may read.
pub struct State {
    /// The port the server listens on (for the `Host` check).
    pub port: u16,
    /// `--data-dir`, canonical.
    pub data_dir: Option<PathBuf>,
    /// The training runs.
    pub runs: Arc<train::Runs>,
    /// Set when the server stops.
    pub stopping: Arc<AtomicBool>,
    /// `--max-memory` (checked when the server starts): the limit of every inspection and run.
    pub max_memory: Option<MemoryArg>,
}

impl Server {
    /// Binds `host:port` (`port` 0: any free port) and starts the workers.
    ///
    /// # Errors
    /// An invalid host, or the address cannot be bound.
    pub fn start(
        host: &str,
        port: u16,
        data_dir: Option<PathBuf>,
        max_memory: Option<MemoryArg>,
    ) -> Result<Server> {
        super::super::memory_limit(max_memory.clone())?;
        let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
            IpAddr::from([127, 0, 0, 1])
        } else {
            host.parse()
                .with_context(|| format!("invalid --host '{host}': give an IP address"))?
        };
        let http = tiny_http::Server::http(SocketAddr::new(ip, port))
            .map_err(|e| anyhow::anyhow!("cannot listen on {host}:{port}: {e}"))?;
        let addr = http
            .server_addr()
            .to_ip()
            .context("the server has no IP address")?;
        let http = Arc::new(http);
        let flag = Arc::new(AtomicBool::new(false));
        let runs = Arc::new(train::Runs::default());
        let state = Arc::new(State {
            port: addr.port(),
            data_dir,
            runs: runs.clone(),
            stopping: flag.clone(),
            max_memory,
        });
        let workers = (0..WORKERS)
            .map(|_| {
                let (http, state) = (http.clone(), state.clone());
                std::thread::spawn(move || worker(&http, &state))
            })
            .collect();
        Ok(Server {
            stop: Stopper {
                flag,
                http: http.clone(),
                runs,
            },
            http,
            addr,
            workers,
            exposed: !ip.is_loopback(),
        })
    }

    /// The page's URL.
    pub fn url(&self) -> String {
        let host = if self.addr.ip().is_unspecified() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            self.addr.ip()
        };
        format!("http://{}/", SocketAddr::new(host, self.addr.port()))
    }

    /// Whether the server listens on more than loopback.
    pub fn exposed(&self) -> bool {
        self.exposed
    }

    /// A handle that stops the server.
    pub fn stopper(&self) -> Stopper {
        self.stop.clone()
    }

    /// Blocks until [`Stopper::stop`], then joins the workers and the training runs.
    pub fn wait(self) {
        for w in self.workers {
            let _ = w.join();
        }
        self.stop.runs.join_all();
        drop(self.http);
    }
}

fn worker(http: &tiny_http::Server, state: &Arc<State>) {
    while !state.stopping.load(Ordering::SeqCst) {
        match http.recv_timeout(Duration::from_millis(500)) {
            Ok(Some(req)) => handle(req, state),
            Ok(None) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn header<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    req.headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// Whether `host` (a `Host` header) names this server: `localhost`, or an IP literal, with this
/// port. A domain name other than `localhost` is what DNS rebinding uses, so it is refused.
pub fn host_allowed(host: &str, port: u16) -> bool {
    let (name, p) = match host.rsplit_once(':') {
        Some((n, p)) if !n.ends_with(':') || n.starts_with('[') => (n, p),
        _ => return false,
    };
    if p.parse::<u16>() != Ok(port) {
        return false;
    }
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost") || bare.parse::<IpAddr>().is_ok()
}

fn check_origin(req: &Request, port: u16) -> Result<(), Reply> {
    let host = header(req, "Host").unwrap_or("");
    if !host_allowed(host, port) {
        return Err(Reply::error(
            403,
            format!(
                "refused: Host '{host}' is not this server (use http://127.0.0.1:{port}/ or \
                 http://localhost:{port}/)"
            ),
        ));
    }
    if let Some(origin) = header(req, "Origin") {
        if origin != format!("http://{host}") {
            return Err(Reply::error(
                403,
                format!("refused: a request from another site (Origin '{origin}')"),
            ));
        }
    }
    if let Some(site) = header(req, "Sec-Fetch-Site") {
        if site == "cross-site" {
            return Err(Reply::error(403, "refused: a cross-site request"));
        }
    }
    Ok(())
}

/// Percent-decodes a query component (`+` is a space). Invalid escapes are kept as they are.
pub fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (url_decode(k), url_decode(v)),
            None => (url_decode(kv), String::new()),
        })
        .collect()
}

fn handle(mut req: Request, state: &Arc<State>) {
    let reply = match check_origin(&req, state.port) {
        Err(r) => r,
        Ok(()) => {
            let url = req.url().to_string();
            let (path, query) = url.split_once('?').unwrap_or((&url, ""));
            let path = path.to_string();
            let method = req.method().clone();
            if method == Method::Get && path.starts_with("/api/train/") && path.ends_with("/events")
            {
                let id = &path["/api/train/".len()..path.len() - "/events".len()];
                match state.runs.get(id) {
                    Some(run) => {
                        // The stream holds a thread for the run's life: hand it its own.
                        let runs = state.runs.clone();
                        std::thread::spawn(move || train::stream(req, run, runs));
                        return;
                    }
                    None => Reply::error(404, format!("no training run '{id}'")),
                }
            } else {
                match read_body(&mut req) {
                    Err(r) => r,
                    Ok(body) => {
                        let call = Call {
                            path: &path,
                            query: parse_query(query),
                            body,
                        };
                        route(&method, &call, state)
                    }
                }
            }
        }
    };
    respond(req, reply);
}

fn read_body(req: &mut Request) -> Result<Vec<u8>, Reply> {
    if let Some(len) = req.body_length() {
        if len > MAX_BODY {
            return Err(Reply::error(
                413,
                format!(
                    "the request body is {} bytes, above the limit of {} MiB",
                    len,
                    MAX_BODY >> 20
                ),
            ));
        }
    }
    let mut body = Vec::new();
    req.as_reader()
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| Reply::error(400, format!("cannot read the request body: {e}")))?;
    if body.len() > MAX_BODY {
        return Err(Reply::error(
            413,
            format!(
                "the request body is above the limit of {} MiB",
                MAX_BODY >> 20
            ),
        ));
    }
    Ok(body)
}

fn route(method: &Method, call: &Call, state: &State) -> Reply {
    match (method, call.path) {
        (Method::Get, p) if !p.starts_with("/api/") => match assets::get(p) {
            Some((ct, body)) => Reply::asset(ct, body),
            None => Reply::error(404, format!("no page '{p}'")),
        },
        (Method::Get, "/api/info") => api::info(state.data_dir.as_deref()),
        (Method::Get, "/api/theory") => api::theory(call),
        (Method::Get, "/api/phase") => api::phase(call),
        (Method::Post, "/api/inspect") => api::inspect_upload(call, state.max_memory.as_ref()),
        (Method::Get, "/api/inspect") => {
            api::inspect_path(call, state.data_dir.as_deref(), state.max_memory.as_ref())
        }
        (Method::Get, "/api/files") => api::files(state.data_dir.as_deref()),
        (Method::Post, "/api/train") => train::start(call, &state.runs, state.max_memory.as_ref()),
        (Method::Post, p) if p.starts_with("/api/train/") && p.ends_with("/stop") => {
            let id = &p["/api/train/".len()..p.len() - "/stop".len()];
            train::stop(id, &state.runs)
        }
        (_, p) => Reply::error(
            if p.starts_with("/api/") { 404 } else { 405 },
            format!("no endpoint {method} {p}"),
        ),
    }
}

fn respond(req: Request, r: Reply) {
    let mut resp = Response::from_data(r.body).with_status_code(StatusCode(r.status));
    for h in common_headers() {
        resp.add_header(h);
    }
    if let Ok(h) = Header::from_bytes(&b"Content-Type"[..], r.content_type.as_bytes()) {
        resp.add_header(h);
    }
    // A client that went away is not the server's error.
    let _ = req.respond(resp);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert!(host_allowed("127.0.0.1:8765", 8765));
        assert!(host_allowed("localhost:8765", 8765));
        assert!(host_allowed("[::1]:8765", 8765));
        assert!(host_allowed("192.168.1.5:8765", 8765));
        assert!(!host_allowed("127.0.0.1:8766", 8765));
        assert!(!host_allowed("evil.example:8765", 8765));
        assert!(!host_allowed("127.0.0.1", 8765));
        assert!(!host_allowed("", 8765));
    }

    #[test]
    fn decoding() {
        assert_eq!(url_decode("a%20b+c"), "a b c");
        assert_eq!(url_decode("100%"), "100%");
        assert_eq!(url_decode("%zz"), "%zz");
        assert_eq!(url_decode("%2F"), "/");
        assert_eq!(
            parse_query("n=10&t=1.5&b="),
            vec![
                ("n".into(), "10".into()),
                ("t".into(), "1.5".into()),
                ("b".into(), "".into())
            ]
        );
    }
}
