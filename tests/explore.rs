//! `ccem explore`'s JSON API, without a browser: the server runs as a subprocess on a free port
//! and is spoken to over plain TCP. Every endpoint, bad input, the `Host`/`Origin` checks, the
//! body cap, the data directory's limits, concurrency, a training run streamed and stopped, a
//! stream closed by the page, and Ctrl-C. The browser test is `scripts/browser_test.py`.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ccem");

/// A server subprocess, killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .args(["explore", "--port", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ccem explore starts");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line.trim().strip_prefix("ccem explore: ").expect(&line);
        let port = url
            .trim_end_matches('/')
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        Server { child, port }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A request with `headers` (a `Host` is added unless given); the status and the body.
    fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Vec<u8>) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            req.push_str(&format!("Host: {}\r\n", self.host()));
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        s.write_all(req.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        parse_response(&out)
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let (st, body) = self.raw("GET", path, &[], b"");
        (st, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    fn post(&self, path: &str, body: &[u8]) -> (u16, Value) {
        let (st, body) = self.raw("POST", path, &[], body);
        (st, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Status and body of an HTTP/1.1 response (chunked or not).
fn parse_response(raw: &[u8]) -> (u16, Vec<u8>) {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let nl = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let len = usize::from_str_radix(std::str::from_utf8(&rest[..nl]).unwrap().trim(), 16)
                .unwrap();
            if len == 0 {
                break;
            }
            out.extend_from_slice(&rest[nl + 2..nl + 2 + len]);
            rest = &rest[nl + 4 + len..];
        }
        body = out;
    }
    (status, body)
}

fn cli(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn cli_json(args: &[&str]) -> Value {
    serde_json::from_str(&cli(args)).unwrap()
}

fn error_of(v: &Value) -> &str {
    v["error"].as_str().unwrap_or("")
}

#[test]
fn theory_matches_the_command_line() {
    let s = Server::start(&[]);
    for (query, args) in [
        (
            "loss=sigmoid&n=10&t=1&b=tied",
            vec!["--n", "10", "--t", "1"],
        ),
        ("n=8&t=3&b=1", vec!["--n", "8", "--t", "3", "--b", "1"]),
        (
            "n=30&t=2&rb=0.5",
            vec!["--n", "30", "--t", "2", "--relative-bias", "0.5"],
        ),
        (
            "n=16&t=2&b=1&batch=4",
            vec!["--n", "16", "--t", "2", "--b", "1", "--batch", "4"],
        ),
        (
            "n=32768&t=117.8&b=12.9&d=768",
            vec!["--n", "32768", "--t", "117.8", "--b", "12.9", "--d", "768"],
        ),
        (
            "loss=infonce&n=10&tau=0.07",
            vec!["--loss", "infonce", "--n", "10", "--tau", "0.07"],
        ),
        (
            "loss=infonce&n=10&tau=0.5&d=4",
            vec!["--loss", "infonce", "--n", "10", "--tau", "0.5", "--d", "4"],
        ),
        // Every loss of the registry, through the same theory as `ccem theory --loss`.
        (
            "loss=simclr&n=12&tau=0.5",
            vec!["--loss", "simclr", "--n", "12", "--tau", "0.5"],
        ),
        (
            "loss=dcl&n=10&tau=0.3&d=4",
            vec!["--loss", "dcl", "--n", "10", "--tau", "0.3", "--d", "4"],
        ),
        (
            "loss=spectral&n=16&batch=4",
            vec!["--loss", "spectral", "--n", "16", "--batch", "4"],
        ),
        (
            "loss=sigmoid&n=16&t=1&b=tied&within_view=0.1",
            vec!["--n", "16", "--t", "1", "--within-view", "0.1"],
        ),
        (
            "loss=infonce&n=8&tau=0.2&within_view=1",
            vec![
                "--loss",
                "infonce",
                "--n",
                "8",
                "--tau",
                "0.2",
                "--within-view",
                "1",
            ],
        ),
    ] {
        let (st, r) = s.get(&format!("/api/theory?{query}"));
        assert_eq!(st, 200, "{query}: {r}");
        let mut full = vec!["theory"];
        full.extend(&args);
        let mut json = full.clone();
        json.extend(["--format", "json"]);
        assert_eq!(r["record"], cli_json(&json), "{query}");
        assert_eq!(r["table"].as_str().unwrap(), cli(&full), "{query}");
        assert_eq!(r["curve"]["c"].as_array().unwrap().len(), 201);
    }
    // The Gram matrix: min(N, 64) pairs; the margin bound only for d < N.
    let (_, r) = s.get("/api/theory?n=10&t=1");
    assert_eq!(r["gram"]["m"], 10);
    assert_eq!(r["gram"]["values"].as_array().unwrap().len(), 400);
    assert!(r["margin_bound"].is_null());
    let (_, r) = s.get("/api/theory?n=100&t=1&d=20");
    assert_eq!(r["gram"]["m"], 64);
    assert!((r["margin_bound"].as_f64().unwrap() - 100.0 / 198.0).abs() < 1e-15);
    // The phase map: boundaries, the point; InfoNCE has none.
    let (st, p) = s.get("/api/phase?n=10&t=1&b=tied");
    assert_eq!(st, 200);
    assert!(!p["map"]["etf"].as_array().unwrap().is_empty());
    assert_eq!(p["point"][0], 10);
    let (_, p) = s.get("/api/phase?loss=infonce&n=10&tau=0.1");
    assert!(p["map"].is_null());
    assert_eq!(p["etf"], true);
    let (st, p) = s.get("/api/phase?loss=dhel&n=10&tau=0.1");
    assert_eq!(st, 200);
    assert!(p["map"].is_null());
    assert!(p["note"].as_str().unwrap().contains("dhel"), "{p}");
    // The curve is the loss's on the CCEM: SimCLR's is smallest at c* = 0 (the ETF).
    let (_, r) = s.get("/api/theory?loss=simclr&n=12&tau=0.5");
    assert_eq!(r["record"]["c_star"], 0.0);
    let l = r["curve"]["loss"].as_array().unwrap();
    assert!(l
        .iter()
        .all(|x| x.as_f64().unwrap() >= l[0].as_f64().unwrap()));
    // The page lists every loss of the registry in the theory view.
    let (_, info) = s.get("/api/info");
    assert_eq!(info["theory_losses"], info["losses"]);
}

#[test]
fn theory_answers_within_100_ms() {
    let s = Server::start(&[]);
    for path in [
        "/api/theory?n=10000&t=5&b=1&d=512",
        "/api/phase?n=10000&t=5&b=1",
        "/api/theory?n=10000&t=5&b=tied&batch=100",
        "/api/phase?n=10000&t=5&rb=0.5&batch=100",
    ] {
        let mut times: Vec<Duration> = (0..11)
            .map(|_| {
                let t0 = Instant::now();
                assert_eq!(s.get(path).0, 200);
                t0.elapsed()
            })
            .collect();
        times.sort();
        assert!(
            times[5] < Duration::from_millis(100),
            "{path}: median {:?}",
            times[5]
        );
    }
}

#[test]
fn bad_input_is_a_4xx_with_a_message() {
    let s = Server::start(&[]);
    for (path, needle) in [
        ("/api/theory?n=1&t=1", "N"),
        ("/api/theory?t=1", "N is required"),
        ("/api/theory?n=abc&t=1", "invalid N 'abc'"),
        ("/api/theory?n=10&t=-1", "t"),
        ("/api/theory?n=10&t=nan", "t"),
        ("/api/theory?n=10", "t is required"),
        ("/api/theory?n=10&t=1&b=1&rb=1", "not both"),
        ("/api/theory?loss=foo&n=10&t=1", "unknown loss 'foo'"),
        ("/api/theory?loss=infonce&n=10&tau=0", "tau"),
        ("/api/theory?n=10&t=1&batch=11", "B"),
        ("/api/theory?loss=infonce&n=10&tau=1&batch=4", "InfoNCE"),
        ("/api/theory?n=10&t=1&d=0", "dimension"),
        ("/api/theory?loss=simclr&n=10", "tau is required"),
        ("/api/theory?loss=simclr&n=10&tau=0.1&t=1", "simclr"),
        ("/api/theory?loss=dcl&n=10&tau=0.1&batch=4", "InfoNCE-based"),
        (
            "/api/theory?loss=spectral&n=10&within_view=1",
            "within_view",
        ),
        ("/api/theory?n=10&t=1&within_view=-1", "within_view"),
        ("/api/phase?n=0&t=1", "N"),
    ] {
        let (st, r) = s.get(path);
        assert_eq!(st, 400, "{path}: {r}");
        assert!(error_of(&r).contains(needle), "{path}: {r}");
    }
    let (st, r) = s.get("/api/nothing");
    assert_eq!(st, 404);
    assert!(error_of(&r).contains("/api/nothing"));
    assert_eq!(s.get("/no-such-page").0, 404);
    assert_eq!(s.post("/api/theory?n=10&t=1", b"").0, 404);
    // Garbage on the socket does not bring the server down.
    let mut raw = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    raw.write_all(b"\x00\x01GARBAGE \xff\r\n\r\n").unwrap();
    let _ = raw.read(&mut [0u8; 256]);
    assert_eq!(s.get("/api/info").0, 200);
    // The page and its files.
    let (st, body) = s.raw("GET", "/", &[], b"");
    assert_eq!(st, 200);
    assert!(String::from_utf8_lossy(&body).contains("ccem explore"));
    for p in [
        "/app.js",
        "/style.css",
        "/vendor/uPlot.iife.min.js",
        "/vendor/uPlot.LICENSE",
    ] {
        assert_eq!(s.raw("GET", p, &[], b"").0, 200, "{p}");
    }
}

#[test]
fn foreign_host_and_origin_are_refused() {
    let s = Server::start(&[]);
    let port = s.port.to_string();
    let ok_host = format!("localhost:{port}");
    assert_eq!(s.raw("GET", "/api/info", &[("Host", &ok_host)], b"").0, 200);
    let evil_host = format!("evil.example:{port}");
    for headers in [
        vec![("Host", evil_host.as_str())],
        vec![("Host", "127.0.0.1:1")],
        vec![("Host", "")],
        vec![("Origin", "http://evil.example")],
        vec![("Origin", "null")],
        vec![("Sec-Fetch-Site", "cross-site")],
    ] {
        let (st, body) = s.raw("GET", "/api/theory?n=10&t=1", &headers, b"");
        assert_eq!(st, 403, "{headers:?}");
        assert!(String::from_utf8_lossy(&body).contains("refused"));
        let (st, _) = s.raw("POST", "/api/train", &headers, br#"{"n": "8", "t": "1"}"#);
        assert_eq!(st, 403, "{headers:?}");
    }
    let own = format!("http://127.0.0.1:{port}");
    assert_eq!(s.raw("GET", "/api/info", &[("Origin", &own)], b"").0, 200);
}

/// Writes a float64 `.npy` of `rows` x `cols` from a seed.
fn write_npy(path: &Path, rows: usize, cols: usize, seed: u64) {
    let a = ndarray::Array2::from_shape_fn((rows, cols), |(i, j)| {
        (((i * 31 + j * 17) as u64 * 2654435761 + seed * 97) % 1000) as f64 / 500.0 - 1.0
    });
    ccem::io::write_npy(path, &a).unwrap();
}

#[test]
fn inspect_upload_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let (u, v) = (dir.path().join("U.npy"), dir.path().join("V.npy"));
    write_npy(&u, 12, 5, 1);
    write_npy(&v, 12, 5, 2);
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("bad.npy"), b"not a npy file").unwrap();
    let s = Server::start(&["--data-dir", dir.path().to_str().unwrap()]);
    let (ub, vb) = (std::fs::read(&u).unwrap(), std::fs::read(&v).unwrap());
    let body = [ub.clone(), vb.clone()].concat();
    let q = format!(
        "/api/inspect?u_name=U.npy&v_name=V.npy&u_len={}&t=2&b=1&tau=0.1",
        ub.len()
    );
    let (st, r) = s.post(&q, &body);
    assert_eq!(st, 200, "{r}");
    let args = [
        "inspect",
        "--u",
        u.to_str().unwrap(),
        "--v",
        v.to_str().unwrap(),
        "--t",
        "2",
        "--b",
        "1",
        "--tau",
        "0.1",
    ];
    let mut json = args.to_vec();
    json.extend(["--format", "json"]);
    assert_eq!(r["record"], cli_json(&json));
    assert_eq!(r["table"].as_str().unwrap(), cli(&args));
    let h = &r["hist"];
    let count = |k: &str| {
        h[k].as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!((count("pos"), count("neg")), (12, 132));
    // By path under --data-dir: the same record.
    let (st, r2) = s.get("/api/inspect?u=U.npy&v=V.npy&t=2&b=1&tau=0.1");
    assert_eq!(st, 200, "{r2}");
    assert_eq!(r2["record"], r["record"]);
    let (_, files) = s.get("/api/files");
    assert!(files["files"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == "U.npy"));
    // Bad files and paths.
    let bad = [b"garbage".to_vec(), vb.clone()].concat();
    let (st, r) = s.post("/api/inspect?u_name=mine.npy&v_name=V.npy&u_len=7", &bad);
    assert_eq!(st, 400);
    assert!(error_of(&r).contains("mine.npy"), "{r}");
    assert!(
        !error_of(&r).contains("ccem-explore-"),
        "no scratch path: {r}"
    );
    let (st, r) = s.post("/api/inspect?u_name=U.txt&v_name=V.npy&u_len=3", b"abcdef");
    assert_eq!(st, 400);
    assert!(error_of(&r).contains(".npy or .csv"));
    let (st, _) = s.post("/api/inspect?u_name=U.npy&v_name=V.npy&u_len=99", b"abc");
    assert_eq!(st, 400);
    let short = [ub.clone(), {
        let p = dir.path().join("W.npy");
        write_npy(&p, 7, 5, 3);
        std::fs::read(&p).unwrap()
    }]
    .concat();
    let (st, r) = s.post(
        &format!("/api/inspect?u_name=U.npy&v_name=W.npy&u_len={}", ub.len()),
        &short,
    );
    assert_eq!(st, 400);
    assert!(error_of(&r).contains("shape"), "{r}");
    for (path, status) in [
        ("/api/inspect?u=../U.npy&v=V.npy", 400),
        ("/api/inspect?u=/etc/passwd&v=V.npy", 400),
        ("/api/inspect?u=sub&v=V.npy", 400),
        ("/api/inspect?u=missing.npy&v=V.npy", 404),
        ("/api/inspect?u=bad.npy&v=V.npy", 400),
        ("/api/inspect?v=V.npy", 400),
    ] {
        let (st, r) = s.get(path);
        assert_eq!(st, status, "{path}: {r}");
        assert!(!error_of(&r).is_empty());
    }
    // The body cap: refused from the header, before reading.
    let mut sock = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    write!(
        sock,
        "POST /api/inspect?u_len=1 HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        s.host(),
        1u64 << 30
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = sock.read_to_end(&mut out);
    assert_eq!(parse_response(&out).0, 413);
    // Without --data-dir, paths are refused.
    let plain = Server::start(&[]);
    assert_eq!(plain.get("/api/inspect?u=U.npy&v=V.npy").0, 403);
}

#[test]
fn many_concurrent_requests() {
    let s = Server::start(&[]);
    let port = s.port;
    let started = Instant::now();
    let handles: Vec<_> = (0..48)
        .map(|k| {
            std::thread::spawn(move || {
                let s = Server::attach(port);
                (0..5)
                    .map(|j| s.get(&format!("/api/theory?n={}&t=1.5&b=1", 4 + k + j)).0)
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    // While they run, the server still answers promptly.
    let t0 = Instant::now();
    assert_eq!(s.get("/api/info").0, 200);
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    for h in handles {
        assert!(h.join().unwrap().iter().all(|&st| st == 200));
    }
    assert!(started.elapsed() < Duration::from_secs(30));
}

impl Server {
    /// A handle on a running server's port (no process).
    fn attach(port: u16) -> ServerRef {
        ServerRef { port }
    }
}

/// A client of a server started elsewhere.
struct ServerRef {
    port: u16,
}

impl ServerRef {
    fn get(&self, path: &str) -> (u16, Value) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        )
        .unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        let (st, body) = parse_response(&out);
        (st, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }
}

/// Opens a run's event stream; reads events until `until` says stop; the events read.
fn events(
    port: u16,
    id: &str,
    mut until: impl FnMut(&str, &Value) -> bool,
) -> (TcpStream, Vec<(String, Value)>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "GET /api/train/{id}/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.contains("200"), "{line}");
    let (mut event, mut out) = (String::new(), Vec::new());
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap() == 0 {
            break;
        }
        let l = line.trim_end();
        if let Some(e) = l.strip_prefix("event: ") {
            event = e.to_string();
        } else if let Some(d) = l.strip_prefix("data: ") {
            let v: Value = serde_json::from_str(d).unwrap();
            let stop = until(&event, &v);
            out.push((event.clone(), v));
            if stop {
                break;
            }
        }
    }
    (s, out)
}

#[test]
fn training_streams_stops_and_matches_optimize() {
    let s = Server::start(&[]);
    // A run to completion: the final record is `ccem optimize --format json`'s.
    let (st, r) = s.post(
        "/api/train",
        br#"{"n": "8", "t": "2", "b": "1", "steps": 400, "seed": "3", "grad-tol": "0"}"#,
    );
    assert_eq!(st, 200, "{r}");
    assert_eq!(
        r["command"],
        "ccem optimize --n 8 --t 2 --b 1 --steps 400 --seed 3 --grad-tol 0"
    );
    assert!((r["theory"]["s_pos"].as_f64().unwrap() - 0.5).abs() < 0.5);
    let id = r["id"].as_str().unwrap().to_string();
    let (_, evs) = events(s.port, &id, |e, _| e == "done");
    let progress: Vec<&Value> = evs
        .iter()
        .filter(|(e, _)| e == "progress")
        .flat_map(|(_, v)| v.as_array().unwrap())
        .collect();
    assert!(progress.len() >= 2);
    assert!(progress
        .iter()
        .all(|p| p["s_pos"].is_number() && p["loss"].is_number()));
    let done = &evs.last().unwrap().1;
    let expected = cli_json(&[
        "optimize",
        "--n",
        "8",
        "--t",
        "2",
        "--b",
        "1",
        "--steps",
        "400",
        "--seed",
        "3",
        "--grad-tol",
        "0",
        "--format",
        "json",
    ]);
    assert_eq!(done["record"], expected);
    // A long run, stopped from the page: termination `stopped`.
    let (st, r) = s.post("/api/train", br#"{"n": "24", "t": "2", "steps": 5000000, "grad-tol": "0", "batch": "6", "batching": "shuffled"}"#);
    assert_eq!(st, 200, "{r}");
    let id = r["id"].as_str().unwrap().to_string();
    let port = s.port;
    let mut stopped = false;
    let (_, evs) = events(port, &id, |e, _| {
        if e == "progress" && !stopped {
            stopped = true;
            let (st, _) = Server::attach(port).post(&format!("/api/train/{id}/stop"));
            assert_eq!(st, 200);
        }
        e == "done"
    });
    let done = &evs.last().unwrap().1;
    assert_eq!(done["record"]["termination"], "stopped", "{done}");
    assert_eq!(done["stopped"], true);
    // Bad options.
    for (body, needle) in [
        (&br#"{"n": "1", "t": "1"}"#[..], "N"),
        (br#"{"n": "8"}"#, "--t is required"),
        (br#"{"n": "8", "t": "1", "save-u": "/tmp/x.npy"}"#, "save-u"),
        (br#"{"n": "8", "t": "1", "lr": "-1"}"#, "lr"),
        (
            br#"{"n": "8", "t": "1", "batch": "3", "batching": "nope"}"#,
            "nope",
        ),
        (br#"{"n": "100000000", "t": "1"}"#, "memory"),
        (br#"[1, 2]"#, "JSON object"),
        (br#"{"n": {"x": 1}}"#, "'n'"),
    ] {
        let (st, r) = s.post("/api/train", body);
        assert_eq!(st, 400, "{}: {r}", String::from_utf8_lossy(body));
        assert!(
            error_of(&r).contains(needle),
            "{}: {r}",
            String::from_utf8_lossy(body)
        );
    }
    assert_eq!(s.post("/api/train/r999/stop", b"").0, 404);
    assert_eq!(s.get("/api/train/r999/events").0, 404);
}

impl ServerRef {
    fn post(&self, path: &str) -> (u16, Value) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(s, "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", self.port).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        let (st, body) = parse_response(&out);
        (st, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }
}

#[test]
fn closing_the_page_stops_its_runs_and_ctrl_c_stops_the_server() {
    let mut s = Server::start(&[]);
    let long = br#"{"n": "24", "t": "2", "steps": 5000000, "grad-tol": "0"}"#;
    let ids: Vec<String> = (0..2)
        .map(|_| {
            let (st, r) = s.post("/api/train", long);
            assert_eq!(st, 200, "{r}");
            r["id"].as_str().unwrap().to_string()
        })
        .collect();
    // Two runs at most.
    let (st, r) = s.post("/api/train", long);
    assert_eq!(st, 429, "{r}");
    // Each page reads some progress, then goes away.
    for id in &ids {
        let (sock, _) = events(s.port, id, |e, _| e == "progress");
        drop(sock);
    }
    // The runs stop: a new one is accepted soon.
    let t0 = Instant::now();
    loop {
        let (st, r) = s.post("/api/train", long);
        if st == 200 {
            let id = r["id"].as_str().unwrap().to_string();
            assert_eq!(s.post(&format!("/api/train/{id}/stop"), b"").0, 200);
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the closed pages' runs did not stop"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Ctrl-C (SIGINT): the server stops cleanly with a run going (the stopped run frees its
    // slot when its thread ends: wait for it).
    let t0 = Instant::now();
    loop {
        let (st, r) = s.post("/api/train", long);
        if st == 200 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no slot freed: {st} {r}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    #[cfg(unix)]
    {
        let status = Command::new("kill")
            .args(["-INT", &s.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let t0 = Instant::now();
        let code = loop {
            if let Some(c) = s.child.try_wait().unwrap() {
                break c;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(15),
                "no exit after Ctrl-C"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(code.success(), "{code:?}");
        let mut rest = String::new();
        s.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut rest)
            .unwrap();
        assert!(rest.contains("stopped"), "{rest}");
    }
}

#[test]
fn training_takes_every_loss_of_the_registry() {
    let s = Server::start(&[]);
    // The page learns each loss's parameters from /api/info (the registry's).
    let (st, info) = s.get("/api/info");
    assert_eq!(st, 200);
    let params = &info["loss_params"];
    assert_eq!(params["simclr"], serde_json::json!(["tau"]));
    assert_eq!(params["spectral"], serde_json::json!([]));
    assert!(params["sigmoid"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("within_view")));
    // A SimCLR run and a within-view sigmoid run, each to the end: the record is optimize's.
    for (body, args) in [
        (
            br#"{"loss": "simclr", "n": "6", "tau": "0.5", "steps": 300, "seed": "1"}"#.as_slice(),
            vec!["--loss", "simclr", "--n", "6", "--tau", "0.5", "--steps", "300", "--seed", "1"],
        ),
        (
            br#"{"loss": "sigmoid", "n": "6", "t": "2", "within-view": "1", "steps": 300, "seed": "1"}"#.as_slice(),
            vec!["--loss", "sigmoid", "--n", "6", "--t", "2", "--within-view", "1", "--steps", "300", "--seed", "1"],
        ),
    ] {
        let (st, r) = s.post("/api/train", body);
        assert_eq!(st, 200, "{r}");
        let id = r["id"].as_str().unwrap().to_string();
        let (_, evs) = events(s.port, &id, |e, _| e == "done");
        let done = &evs.last().unwrap().1;
        let mut a = vec!["optimize"];
        a.extend(args);
        a.extend(["--format", "json"]);
        assert_eq!(done["record"], cli_json(&a));
    }
    // A parameter the loss does not take is refused with the library's message.
    let (st, r) = s.post(
        "/api/train",
        br#"{"loss": "spectral", "n": "6", "tau": "0.5"}"#,
    );
    assert_eq!(st, 400, "{r}");
    assert!(error_of(&r).contains("spectral"), "{r}");
}

/// `ccem --max-memory` reaches every inspection and run of the server (no process-wide limit).
#[test]
fn max_memory_limits_the_servers_inspections_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (u, v) = (dir.path().join("U.npy"), dir.path().join("V.npy"));
    write_npy(&u, 12, 5, 1);
    write_npy(&v, 12, 5, 2);
    let s = Server::start(&["--max-memory", "1K"]);
    let (ub, vb) = (std::fs::read(&u).unwrap(), std::fs::read(&v).unwrap());
    let body = [ub.clone(), vb].concat();
    let q = format!("/api/inspect?u_name=U.npy&v_name=V.npy&u_len={}", ub.len());
    let (st, r) = s.post(&q, &body);
    assert_eq!(st, 400, "{r}");
    assert!(error_of(&r).contains("--max-memory"), "{r}");
    let (st, r) = s.post("/api/train", br#"{"n": "50", "t": "1"}"#);
    assert_eq!(st, 400, "{r}");
    assert!(error_of(&r).contains("raise --max-memory"), "{r}");
}
