//! Live training for `ccem explore`: a free-embedding optimisation (`ccem optimize`'s options,
//! mini-batch strategies included) on its own thread, watched by a [`ccem::monitor::Monitor`]
//! that records the progress, streamed to the page as server-sent events, stopped by the page's
//! button, by the page going away (the stream's write fails), or by the server stopping.
//!
//! The options arrive as `ccem optimize` flags (`{"n": "16", "t": "2", "learn-t": true}`) and
//! are parsed by the command line's own parser and configuration, so a run here is the run of
//! the command shown on the page, and its final record is that of `ccem optimize --format json`.

use super::http::{common_headers, Call, Reply};
use crate::cli::optimize::OptimizeArgs;
use ccem::geometry::QuantileLevel;
use ccem::monitor::{Monitor, StepProgress};
use ccem::optim::Termination;
use ccem::options::{MemoryArg, Spelling};
use clap::Parser;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::io::Write;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Training runs at once (each holds a core); more are refused with 429.
pub const MAX_RUNS: usize = 2;

/// The most progress points a run reports (the monitor's `every` is chosen for it).
pub const MAX_POINTS: usize = 2000;

/// A run whose page has not opened its stream within this time is stopped.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(15);

/// The `ccem optimize` flags the page may set (the others write files or change the command).
const FLAGS: &[&str] = &[
    "n",
    "d",
    "loss",
    "t",
    "b",
    "relative-bias",
    "tau",
    "within-view",
    "learn-t",
    "learn-b",
    "init-t",
    "init-b",
    "optimizer",
    "lr",
    "momentum",
    "steps",
    "grad-tol",
    "restarts",
    "margin-quantile",
    "seed",
    "batch",
    "batching",
    "neg-variance-weight",
];

/// `ccem optimize`'s arguments alone, for parsing the page's flags.
#[derive(Parser, Debug)]
#[command(name = "ccem optimize", no_binary_name = true)]
struct Flags {
    #[command(flatten)]
    args: OptimizeArgs,
}

/// One reported step, as the page receives it.
#[derive(Serialize, Clone, Copy)]
struct Point {
    step: usize,
    restart: usize,
    loss: f64,
    grad_norm: f64,
    t: Option<f64>,
    b: Option<f64>,
    margin: Option<f64>,
    s_pos: Option<f64>,
    s_neg: Option<f64>,
}

/// A training run's shared state.
pub struct Run {
    id: String,
    points: Mutex<Vec<Point>>,
    /// The final message (`{"record", "table"}` or `{"error"}`), once the run ends.
    done: Mutex<Option<Value>>,
    cancel: AtomicBool,
    attached: AtomicBool,
    started: Instant,
    every: usize,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Run {
    fn stop(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    fn is_done(&self) -> bool {
        self.done.lock().map(|d| d.is_some()).unwrap_or(true)
    }
}

impl Monitor for Run {
    fn on_step(&self, p: &StepProgress) -> ControlFlow<()> {
        if let Ok(mut pts) = self.points.lock() {
            pts.push(Point {
                step: p.step,
                restart: p.restart,
                loss: p.loss,
                grad_norm: p.grad_norm,
                t: p.t,
                b: p.b,
                margin: p.margin,
                s_pos: p.s_pos,
                s_neg: p.s_neg,
            });
        }
        if self.cancelled() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    fn every(&self) -> usize {
        self.every
    }

    fn cancelled(&self) -> bool {
        if !self.attached.load(Ordering::SeqCst) && self.started.elapsed() > ATTACH_TIMEOUT {
            self.stop();
        }
        self.cancel.load(Ordering::SeqCst)
    }
}

/// The server's training runs.
#[derive(Default)]
pub struct Runs {
    runs: Mutex<HashMap<String, Arc<Run>>>,
    next: AtomicU64,
}

impl Runs {
    /// The run `id`, if it exists.
    pub fn get(&self, id: &str) -> Option<Arc<Run>> {
        self.runs.lock().ok()?.get(id).cloned()
    }

    /// Stops every run (the server is stopping).
    pub fn cancel_all(&self) {
        if let Ok(runs) = self.runs.lock() {
            runs.values().for_each(|r| r.stop());
        }
    }

    /// Waits for every run's thread.
    pub fn join_all(&self) {
        let runs: Vec<Arc<Run>> = match self.runs.lock() {
            Ok(r) => r.values().cloned().collect(),
            Err(_) => return,
        };
        for r in runs {
            let handle = r.thread.lock().ok().and_then(|mut t| t.take());
            if let Some(h) = handle {
                let _ = h.join();
            }
        }
    }

    fn remove(&self, id: &str) {
        if let Ok(mut runs) = self.runs.lock() {
            runs.remove(id);
        }
    }
}

/// The page's flags as `ccem optimize` arguments.
fn argv(body: &[u8]) -> Result<Vec<String>, Reply> {
    let flags: Map<String, Value> = serde_json::from_slice(body).map_err(|e| {
        Reply::error(
            400,
            format!("the body must be a JSON object of ccem optimize flags: {e}"),
        )
    })?;
    let mut argv = Vec::new();
    for (k, v) in flags {
        if !FLAGS.contains(&k.as_str()) {
            return Err(Reply::error(
                400,
                format!(
                    "unknown or refused option '{k}': the page may set {}",
                    FLAGS.join(", ")
                ),
            ));
        }
        match v {
            Value::Bool(false) | Value::Null => {}
            Value::Bool(true) => argv.push(format!("--{k}")),
            Value::String(s) if s.trim().is_empty() => {}
            Value::String(s) => {
                argv.push(format!("--{k}"));
                argv.push(s);
            }
            Value::Number(x) => {
                argv.push(format!("--{k}"));
                argv.push(x.to_string());
            }
            other => {
                return Err(Reply::error(
                    400,
                    format!("option '{k}': give a string, a number or true, not {other}"),
                ))
            }
        }
    }
    Ok(argv)
}

/// `POST /api/train` with `{flag: value}`: checks the options as `ccem optimize` does, starts the
/// run and answers `{id, command, theory}` (the theory's `s_pos`, `s_neg` and margin for the
/// dashed lines, at the starting `t`, `b`).
pub fn start(call: &Call, runs: &Runs, max_memory: Option<&MemoryArg>) -> Reply {
    let argv = match argv(&call.body) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let flags = match Flags::try_parse_from(&argv) {
        Ok(f) => f,
        Err(e) => {
            let msg = e.render().to_string();
            let first = msg.lines().next().unwrap_or("invalid options").to_string();
            return Reply::error(400, first.trim_start_matches("error: ").to_string());
        }
    };
    let a = flags.args;
    let level = match QuantileLevel::new(a.margin_quantile) {
        Ok(l) => l,
        Err(e) => return Reply::error(400, format!("invalid margin-quantile: {e}")),
    };
    // The command line's own resolver: the same checks and messages as `ccem optimize`.
    let mut opts = a.options();
    opts.max_memory = max_memory.cloned();
    let cfg = match opts.resolve(Spelling::Flag) {
        Ok(r) => r.config,
        Err(e) => return Reply::error(400, format!("{:#}", Spelling::Flag.respell(e))),
    };
    let prediction = ccem::Report::unmeasured(cfg.n, cfg.d, &cfg.loss)
        .with_training(cfg.batch, cfg.neg_variance_weight > 0.0, &cfg.loss)
        .prediction;
    let Ok(mut table) = runs.runs.lock() else {
        return Reply::error(500, "the run table is poisoned");
    };
    // Runs that ended without a stream are forgotten after a while.
    table.retain(|_, r| !r.is_done() || r.started.elapsed() < Duration::from_secs(120));
    if table.values().filter(|r| !r.is_done()).count() >= MAX_RUNS {
        return Reply::error(
            429,
            format!("{MAX_RUNS} runs are going already: stop one first"),
        );
    }
    let id = format!("r{}", runs.next.fetch_add(1, Ordering::Relaxed) + 1);
    let run = Arc::new(Run {
        id: id.clone(),
        points: Mutex::new(Vec::new()),
        done: Mutex::new(None),
        cancel: AtomicBool::new(false),
        attached: AtomicBool::new(false),
        started: Instant::now(),
        every: (cfg.steps * cfg.restarts).div_ceil(MAX_POINTS).max(1),
        thread: Mutex::new(None),
    });
    let worker = run.clone();
    let handle = std::thread::spawn(move || {
        let r = ccem::optim::optimize_with(&cfg, &*worker);
        let message = match r.map_err(anyhow::Error::from).and_then(|r| {
            Ok((
                ccem::record::OptimizeRecord::new(&cfg, &r, level)?,
                r.termination,
            ))
        }) {
            Ok((rec, termination)) => {
                let mut buf = Vec::new();
                let _ = crate::cli::output::write_records(
                    &mut buf,
                    crate::cli::output::Format::Table,
                    std::slice::from_ref(&rec),
                );
                json!({
                    "record": rec,
                    "table": String::from_utf8_lossy(&buf),
                    "stopped": termination == Termination::Stopped,
                })
            }
            Err(e) => json!({ "error": format!("{e:#}") }),
        };
        if let Ok(mut d) = worker.done.lock() {
            *d = Some(message);
        }
    });
    if let Ok(mut t) = run.thread.lock() {
        *t = Some(handle);
    }
    table.insert(id.clone(), run);
    let command = std::iter::once("ccem optimize".to_string())
        .chain(argv.iter().map(|s| shell_word(s)))
        .collect::<Vec<_>>()
        .join(" ");
    Reply::json(&json!({
        "id": id,
        "command": command,
        "theory": prediction.map(|o| json!({
            "s_pos": o.s_pos,
            "s_neg": o.s_neg,
            "margin": (o.s_pos - o.s_neg) / 2.0,
            "loss": o.loss,
            "c_star": o.c_star,
            "phase": o.phase,
        })),
    }))
}

/// `s` quoted for a shell when it has to be.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.,:/+=".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `POST /api/train/{id}/stop`.
pub fn stop(id: &str, runs: &Runs) -> Reply {
    match runs.get(id) {
        Some(r) => {
            r.stop();
            Reply::json(&json!({ "id": id, "stopping": true }))
        }
        None => Reply::error(404, format!("no training run '{id}'")),
    }
}

/// How often the stream looks for new points.
const POLL: Duration = Duration::from_millis(100);

/// `GET /api/train/{id}/events`: the run's progress as server-sent events (`progress`: an array
/// of points; `done`: the final record), on its own thread. When the page goes away the next
/// write fails and the run is stopped.
pub fn stream(req: tiny_http::Request, run: Arc<Run>, runs: Arc<Runs>) {
    run.attached.store(true, Ordering::SeqCst);
    let mut w = req.into_writer();
    let mut head = String::from("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n");
    for h in common_headers() {
        head.push_str(&format!("{}: {}\r\n", h.field, h.value));
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut sent = 0;
    let mut quiet = Instant::now();
    let ok = (|| -> std::io::Result<()> {
        w.write_all(head.as_bytes())?;
        w.write_all(b"retry: 600000\n\n")?;
        w.flush()?;
        loop {
            // `done` is read before the points, so that the last points are sent before it.
            let done = run.done.lock().ok().and_then(|d| d.clone());
            let new: Vec<Point> = run
                .points
                .lock()
                .map(|p| p[sent.min(p.len())..].to_vec())
                .unwrap_or_default();
            if !new.is_empty() {
                sent += new.len();
                let data = serde_json::to_string(&new).unwrap_or_default();
                write!(w, "event: progress\ndata: {data}\n\n")?;
                w.flush()?;
                quiet = Instant::now();
            }
            if let Some(d) = done {
                write!(w, "event: done\ndata: {d}\n\n")?;
                w.flush()?;
                return Ok(());
            }
            if quiet.elapsed() > Duration::from_secs(2) {
                w.write_all(b": alive\n\n")?;
                w.flush()?;
                quiet = Instant::now();
            }
            std::thread::sleep(POLL);
        }
    })();
    if ok.is_err() {
        // The page went away: its run stops.
        run.stop();
    }
    let handle = run.thread.lock().ok().and_then(|mut t| t.take());
    if let Some(h) = handle {
        let _ = h.join();
    }
    drop(w);
    runs.remove(&run.id);
}
