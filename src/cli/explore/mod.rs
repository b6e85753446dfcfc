//! `ccem explore`: a local web page over the library: the theory, a user's embeddings and a live
//! training run (docs/EXPLORE.md).
//!
//! The layout: [`server`] accepts connections (tiny_http, bound to 127.0.0.1 unless `--host`
//! says otherwise), refuses foreign `Host`/`Origin` headers and routes; [`api`] answers the JSON
//! endpoints by calling the library; [`observe`] computes what the page draws beyond the records
//! (the `l(c)` curve, the phase map, the Gram matrix, similarity histograms); [`train`] runs and
//! streams training; [`assets`] holds the page (HTML, JavaScript, CSS and the vendored uPlot
//! chart library), compiled into the binary so that the page works offline.

pub mod api;
pub mod assets;
pub mod http;
pub mod observe;
pub mod server;
pub mod train;

use anyhow::{bail, Context, Result};
use ccem::options::MemoryArg;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  ccem explore                        # http://127.0.0.1:8765/ (prints the URL)
  ccem explore --port 0 --open        # any free port, and open a browser
  ccem explore --data-dir runs/       # the Inspect view may read .npy/.csv files under runs/

The page has three views: Theory (the optimum, l(c), the (N, t) phase map, the Gram matrix),
Inspect (a pair U, V uploaded or read under --data-dir) and Train (a free-embedding run streamed
live, stoppable). The controls live in the URL: copy it to share a view. Ctrl-C stops the server.
Binding to another address than 127.0.0.1 (--host 0.0.0.0) lets anyone who can reach this machine
run computations and, with --data-dir, read the matrices under that directory.")]
pub struct ExploreArgs {
    /// Port to listen on (0: any free port)
    #[arg(long, default_value_t = 8765)]
    pub port: u16,
    /// Address to bind to (the default serves this machine only)
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Open the page in the default browser
    #[arg(long)]
    pub open: bool,
    /// A directory whose .npy/.csv files the Inspect view may read by relative path
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

pub fn run(a: &ExploreArgs, max_memory: Option<MemoryArg>) -> Result<()> {
    let data_dir = match &a.data_dir {
        Some(d) => {
            let c = d
                .canonicalize()
                .with_context(|| format!("invalid --data-dir {}", d.display()))?;
            if !c.is_dir() {
                bail!("invalid --data-dir {}: not a directory", d.display());
            }
            Some(c)
        }
        None => None,
    };
    let server = server::Server::start(&a.host, a.port, data_dir, max_memory)?;
    let url = server.url();
    outln!("ccem explore: {url}");
    if server.exposed() {
        outln!(
            "warning: bound to {}: anyone who can reach this address can run computations{}",
            a.host,
            if a.data_dir.is_some() {
                " and read the matrices under --data-dir"
            } else {
                ""
            }
        );
    } else {
        outln!("serving this machine only (127.0.0.1); Ctrl-C stops the server");
    }
    let stop = server.stopper();
    ctrlc::set_handler(move || stop.stop()).context("cannot install the Ctrl-C handler")?;
    if a.open {
        open_browser(&url);
    }
    server.wait();
    outln!("ccem explore: stopped");
    Ok(())
}

/// Asks the desktop to open `url` (best effort: a failure is reported, not fatal).
fn open_browser(url: &str) {
    let cmd = if cfg!(target_os = "macos") {
        ("open", vec![url])
    } else if cfg!(windows) {
        ("cmd", vec!["/C", "start", "", url])
    } else {
        ("xdg-open", vec![url])
    };
    if let Err(e) = std::process::Command::new(cmd.0)
        .args(&cmd.1)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        eprintln!(
            "cannot open a browser ({}: {e}); open {url} yourself",
            cmd.0
        );
    }
}
