//! The JSON endpoints of `ccem explore` for the theory and for inspecting a user's embedding.
//! Each one parses its query, lets the library validate (a bad value comes back as HTTP 400 with
//! the library's message), and returns the same record as the command line's `--format json`
//! together with its `--format table` text.

use super::http::{Call, Reply, MAX_BODY};
use super::observe;
use crate::cli::output::{write_records, Format};
use ccem::inspect::{inspect, InspectConfig};
use ccem::loss::{ContrastiveLoss, Loss, LossKind, LossParams, Tuned};
use ccem::matrix::Matrix;
use ccem::options::{
    parse_bias, parse_max_memory, BiasArg, MemoryArg, Spelling, TheoryOptions, TheoryPath,
};
use ccem::theory::record::TheoryRecord;
use ccem::theory::zoo::ZooLoss;
use ccem::theory::BiasMode;
use serde::Serialize;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The largest file (each of `U`, `V`) that the Inspect view reads, uploaded or by path.
pub const MAX_FILE: usize = MAX_BODY / 2;

/// The error of a handler: an HTTP status and a message.
type Answer<T> = std::result::Result<T, Reply>;

fn bad(msg: impl std::fmt::Display) -> Reply {
    Reply::error(400, msg.to_string())
}

/// An optional number from the query; `what` names it in the error.
fn num<T: std::str::FromStr>(call: &Call, key: &str, what: &str) -> Answer<Option<T>> {
    call.get(key)
        .map(|s| {
            s.trim()
                .parse::<T>()
                .map_err(|_| bad(format!("invalid {what} '{s}': not a number")))
        })
        .transpose()
}

fn required<T: std::str::FromStr>(call: &Call, key: &str, what: &str) -> Answer<T> {
    num(call, key, what)?.ok_or_else(|| bad(format!("{what} is required")))
}

/// `--format table` text of one record.
fn table<T: Serialize>(r: &T) -> String {
    let mut buf = Vec::new();
    match write_records(&mut buf, Format::Table, std::slice::from_ref(r)) {
        Ok(()) => String::from_utf8_lossy(&buf).into_owned(),
        Err(e) => format!("(cannot format the record: {e})"),
    }
}

/// `GET /api/info`: what the page needs to know about this server.
pub fn info(data_dir: Option<&Path>) -> Reply {
    Reply::json(&json!({
        "version": env!("CARGO_PKG_VERSION"),
        "losses": ccem::LossKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
        // Each loss's parameters (the registry's), so the page shows the right inputs.
        "loss_params": ccem::LossKind::ALL
            .iter()
            .map(|k| (k.as_str().to_string(), json!(k.params())))
            .collect::<serde_json::Map<String, serde_json::Value>>(),
        // The theory view takes every loss too (`ccem theory --loss`).
        "theory_losses": ccem::LossKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
        "max_file_bytes": MAX_FILE,
        "data_dir": data_dir.is_some(),
        "max_runs": super::train::MAX_RUNS,
        "batchings": ["shuffled", "fixed", "all", "hardest", "expected"],
    }))
}

/// The theory's inputs, parsed from the query and checked by the library by `ccem theory`'s
/// rules ([`TheoryOptions::resolve`]): every loss of the registry, with its parameters.
struct TheoryInput {
    n: usize,
    /// The loss with its parameters, built by the registry.
    loss: Loss,
    /// How the sigmoid's bias was given (`b`, `rb` or tied), for its phase boundaries.
    bias: BiasMode,
    /// Which theory answers.
    path: TheoryPath,
    batch: Option<usize>,
    d: Option<usize>,
}

/// The query keys: `loss` (default `sigmoid`), `n`, the loss's parameters `t` with `b` (a
/// number or `tied`) or `rb` (the relative bias), `tau`, `within_view`, and `batch`, `d`.
fn theory_input(call: &Call) -> Answer<TheoryInput> {
    let n: usize = required(call, "n", "N")?;
    ccem::error::check_batch(n).map_err(bad)?;
    let batch: Option<usize> = num(call, "batch", "the batch B")?;
    let d: Option<usize> = num(call, "d", "the dimension d")?;
    let kind = call
        .get("loss")
        .unwrap_or("sigmoid")
        .parse::<LossKind>()
        .map_err(bad)?;
    let t: Option<f64> = num(call, "t", "t")?;
    let rb: Option<f64> = num(call, "rb", "the relative bias rb")?;
    let tau: Option<f64> = num(call, "tau", "tau")?;
    let within_view: Option<f64> = num(call, "within_view", "the within-view weight")?;
    let b = call.get("b").map(BiasArg::from);
    let path = TheoryOptions {
        loss: kind,
        t: t.is_some(),
        b: b.is_some(),
        relative_bias: rb.is_some(),
        tau: tau.is_some(),
        within_view: within_view.is_some(),
        batch: batch.is_some(),
        d,
    }
    .resolve(within_view, Spelling::Keyword)
    .map_err(bad)?;
    let bias = parse_bias(b.as_ref(), rb, Spelling::Keyword).map_err(bad)?;
    // As `ccem theory`: the registry builds the loss (and checks every value), b from the bias
    // setting at t.
    let params = LossParams {
        t,
        b: t.map(|t| bias.bias(t)),
        relative_bias: None,
        tau,
        within_view,
    };
    let loss = Loss::build(kind, &params).map_err(bad)?;
    if let Some(b) = batch {
        ccem::theory::batch::check_mini_batch(n, b).map_err(bad)?;
    }
    Ok(TheoryInput {
        n,
        loss,
        bias,
        path,
        batch,
        d,
    })
}

/// `GET /api/theory?loss=&n=&t=&b=|rb=&tau=&within_view=&batch=&d=`: the optimum (the record
/// of `ccem theory --format json` and its table, [`TheoryRecord`]), the curve `l(c)`, the Gram
/// matrix of the optimal CCEM and, for `d` below what the CCEM needs, the margin bound.
pub fn theory(call: &Call) -> Reply {
    theory_answer(call).unwrap_or_else(|r| r)
}

fn theory_answer(call: &Call) -> Answer<Reply> {
    let inp = theory_input(call)?;
    let n = inp.n;
    let rec = TheoryRecord::new(&inp.loss, inp.bias, n, inp.batch).map_err(bad)?;
    let needed = rec.needed_dimension();
    // The curve: the loss's CCEM function (SPEC §9.1), negatives weighted as the record's.
    let zoo = ZooLoss::from_loss(&inp.loss).map_err(bad)?;
    let w = inp
        .batch
        .map_or(Ok(1.0), |b| zoo.batch_weight(n, b))
        .map_err(bad)?;
    let record = serde_json::to_value(&rec).map_err(bad)?;
    let (record, below) = match inp.d {
        Some(d) => (
            crate::cli::dimension::annotate_one(&record, d, |_| needed).map_err(bad)?,
            d < needed,
        ),
        None => (record, false),
    };
    Ok(Reply::json(&json!({
        "table": table(&record),
        "record": record,
        "curve": observe::curve(n, &zoo, w),
        "gram": observe::gram(n, rec.c_star()),
        "margin_bound": below.then(|| ccem::geometry::margin_bound(n)),
        "note": below.then_some(crate::cli::dimension::BELOW_NOTE),
    })))
}

/// `GET /api/phase?...` (the theory's query): the `(N, t)` phase map of the sigmoid loss around
/// the current point, with its boundaries (SPEC §3.2); for InfoNCE (`etf`), a note that every
/// cell is the ETF; for the other losses, a note.
pub fn phase(call: &Call) -> Reply {
    let inp = match theory_input(call) {
        Err(r) => return r,
        Ok(inp) => inp,
    };
    match (inp.path, inp.loss.tuned()) {
        (TheoryPath::Sigmoid, Some(Tuned::Sigmoid { t, .. })) => Reply::json(&json!({
            "map": observe::phase_map(inp.n, t, inp.bias, inp.batch),
            "point": [inp.n, t],
        })),
        (TheoryPath::InfoNce, _) => Reply::json(&json!({
            "map": null,
            "etf": true,
            "note": "InfoNCE: the optimum is the simplex ETF at every N and tau (SPEC §3)",
        })),
        _ => Reply::json(&json!({
            "map": null,
            "etf": false,
            "note": format!(
                "the (N, t) phase map is the sigmoid loss's (SPEC §3.2); the {} loss's phase \
                 at this point is in the readout (SPEC §9)",
                inp.loss.name()
            ),
        })),
    }
}

/// The inspection's parameters from the query (the defaults are `ccem inspect`'s).
fn inspect_config(call: &Call, max_memory: Option<&MemoryArg>) -> Answer<InspectConfig> {
    let mut cfg = InspectConfig {
        max_memory: parse_max_memory(max_memory, Spelling::Flag).map_err(|e| bad(e.to_string()))?,
        ..InspectConfig::default()
    };
    if let Some(t) = num(call, "t", "t")? {
        cfg.t = t;
    }
    cfg.b = num(call, "b", "b")?;
    if let Some(tau) = num(call, "tau", "tau")? {
        cfg.tau = tau;
    }
    cfg.normalize = !matches!(call.get("normalize"), Some("0" | "false" | "no"));
    Ok(cfg)
}

/// Inspects `(u, v)` and adds the histograms; `header` is `ccem inspect`'s first table line.
fn inspect_answer(u: Matrix, v: Matrix, cfg: &InspectConfig) -> Answer<Reply> {
    // The histograms see the rows as the inspection does (normalised unless told otherwise).
    let (hu, hv) = (u.clone().into_f64(), v.clone().into_f64());
    let rec = inspect(u, v, cfg).map_err(|e| {
        bad(format!(
            "cannot inspect the embedding: {}",
            Spelling::Flag.respell(e)
        ))
    })?;
    let (hu, hv) = if cfg.normalize {
        (
            ccem::loss::embedding::normalize_rows(hu.view(), "U")
                .map_err(bad)?
                .u,
            ccem::loss::embedding::normalize_rows(hv.view(), "V")
                .map_err(bad)?
                .u,
        )
    } else {
        (hu, hv)
    };
    let header = format!(
        "# {} pairs in R^{} ({}); rows {}\n",
        rec.n,
        rec.d,
        rec.precision,
        if cfg.normalize {
            "normalised to unit length"
        } else {
            "used as given (--no-normalize)"
        }
    );
    Ok(Reply::json(&json!({
        "table": header + &table(&rec),
        "record": rec,
        "hist": observe::histograms(hu.view(), hv.view()),
    })))
}

/// A unique scratch directory per upload.
static UPLOADS: AtomicU64 = AtomicU64::new(0);

/// Removes a directory when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `.npy` or `.csv` from a file name.
fn extension(name: &str) -> Answer<&'static str> {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".npy") {
        Ok("npy")
    } else if lower.ends_with(".csv") {
        Ok("csv")
    } else {
        Err(bad(format!(
            "'{name}': give a .npy or .csv file (N x d, float32 or float64)"
        )))
    }
}

/// Reads one matrix, its errors naming `name` (not the scratch path).
fn read(path: &Path, name: &str, cfg: &InspectConfig) -> Answer<Matrix> {
    ccem::io::read_matrix_any(path, cfg.max_memory).map_err(|e| {
        bad(Spelling::Flag
            .respell(e)
            .to_string()
            .replace(&path.display().to_string(), name))
    })
}

/// `POST /api/inspect?u_name=&v_name=&u_len=&t=&b=&tau=&normalize=`: the body is the bytes of
/// `U` followed by those of `V` (`u_len` bytes, then the rest).
pub fn inspect_upload(call: &Call, max_memory: Option<&MemoryArg>) -> Reply {
    inspect_upload_answer(call, max_memory).unwrap_or_else(|r| r)
}

fn inspect_upload_answer(call: &Call, max_memory: Option<&MemoryArg>) -> Answer<Reply> {
    let cfg = inspect_config(call, max_memory)?;
    let u_name = call.get("u_name").unwrap_or("U.npy");
    let v_name = call.get("v_name").unwrap_or("V.npy");
    let (eu, ev) = (extension(u_name)?, extension(v_name)?);
    let u_len: usize = required(call, "u_len", "u_len (the bytes of U in the body)")?;
    if u_len > call.body.len() {
        return Err(bad(format!(
            "u_len {u_len} is more than the {} bytes sent",
            call.body.len()
        )));
    }
    let (ub, vb) = call.body.split_at(u_len);
    for (name, bytes) in [(u_name, ub), (v_name, vb)] {
        if bytes.is_empty() {
            return Err(bad(format!("'{name}' is empty")));
        }
        if bytes.len() > MAX_FILE {
            return Err(Reply::error(
                413,
                format!(
                    "'{name}' is above the limit of {} MiB per file",
                    MAX_FILE >> 20
                ),
            ));
        }
    }
    let dir = std::env::temp_dir().join(format!(
        "ccem-explore-{}-{}",
        std::process::id(),
        UPLOADS.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| Reply::error(500, format!("scratch: {e}")))?;
    let scratch = Scratch(dir);
    let (pu, pv) = (
        scratch.0.join(format!("U.{eu}")),
        scratch.0.join(format!("V.{ev}")),
    );
    for (p, bytes) in [(&pu, ub), (&pv, vb)] {
        std::fs::write(p, bytes).map_err(|e| Reply::error(500, format!("scratch: {e}")))?;
    }
    let (u, v) = (read(&pu, u_name, &cfg)?, read(&pv, v_name, &cfg)?);
    drop(scratch);
    inspect_answer(u, v, &cfg)
}

/// A path under `--data-dir`: relative, inside the directory after resolving links, a regular
/// file, at most [`MAX_FILE`] bytes.
fn data_file(data_dir: Option<&Path>, rel: &str) -> Answer<PathBuf> {
    let Some(root) = data_dir else {
        return Err(Reply::error(
            403,
            "reading files by path needs `ccem explore --data-dir DIR`; upload them instead",
        ));
    };
    let p = Path::new(rel);
    if p.is_absolute()
        || p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(bad(format!(
            "'{rel}': give a path relative to the data directory, without '..'"
        )));
    }
    let full = root
        .join(p)
        .canonicalize()
        .map_err(|_| Reply::error(404, format!("'{rel}': no such file in the data directory")))?;
    if !full.starts_with(root) {
        return Err(Reply::error(
            403,
            format!("'{rel}' is outside the data directory"),
        ));
    }
    let meta = std::fs::metadata(&full).map_err(|e| bad(format!("'{rel}': {e}")))?;
    if !meta.is_file() {
        return Err(bad(format!("'{rel}' is not a regular file")));
    }
    if meta.len() > MAX_FILE as u64 {
        return Err(Reply::error(
            413,
            format!(
                "'{rel}' is above the limit of {} MiB per file",
                MAX_FILE >> 20
            ),
        ));
    }
    extension(rel)?;
    Ok(full)
}

/// `GET /api/inspect?u=&v=&...`: inspect two files under `--data-dir`.
pub fn inspect_path(call: &Call, data_dir: Option<&Path>, max_memory: Option<&MemoryArg>) -> Reply {
    (|| {
        let cfg = inspect_config(call, max_memory)?;
        let u = call.get("u").ok_or_else(|| bad("u (a path) is required"))?;
        let v = call.get("v").ok_or_else(|| bad("v (a path) is required"))?;
        let (pu, pv) = (data_file(data_dir, u)?, data_file(data_dir, v)?);
        inspect_answer(read(&pu, u, &cfg)?, read(&pv, v, &cfg)?, &cfg)
    })()
    .unwrap_or_else(|r| r)
}

/// The most files `GET /api/files` lists.
const MAX_LISTED: usize = 500;

/// `GET /api/files`: the `.npy`/`.csv` files under `--data-dir` (two levels deep).
pub fn files(data_dir: Option<&Path>) -> Reply {
    let Some(root) = data_dir else {
        return Reply::json(&json!({ "files": [] }));
    };
    let mut out: Vec<String> = Vec::new();
    let mut dirs = vec![(root.to_path_buf(), 0)];
    while let Some((dir, depth)) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(kind) = e.file_type() else { continue };
            let p = e.path();
            if kind.is_dir() && depth < 2 {
                dirs.push((p, depth + 1));
            } else if kind.is_file() && extension(&p.to_string_lossy()).is_ok() {
                if let Ok(rel) = p.strip_prefix(root) {
                    out.push(rel.to_string_lossy().into_owned());
                }
            }
            if out.len() >= MAX_LISTED {
                break;
            }
        }
    }
    out.sort();
    Reply::json(&json!({ "files": out }))
}
