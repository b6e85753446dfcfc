//! One option resolver for both front ends: the command line (`src/cli/`) and Python
//! (`python/src/`) fill the same raw-options struct per command ([`OptimizeOptions`],
//! [`TrainOptions`], [`SweepOptions`], [`TheoryOptions`], [`InspectOptions`]) and call its
//! `resolve`, which checks every option and every combination once and returns the library's
//! validated configuration. Neither front end re-checks a value, so they accept exactly the same
//! combinations with the same values.
//!
//! Errors name the options in the spelling of the front end that asked ([`Spelling`]):
//! `--relative-bias` on the command line, `relative_bias` in Python.
//!
//! The rules where the front ends used to disagree (issue 17), as a user would expect them:
//! - `t` is the sigmoid loss's scale and `tau` InfoNCE's temperature; `train` and `sweep` also
//!   take `t` as InfoNCE's temperature, as the paper's script does (`train` refuses both), in
//!   both front ends (Python's `train(loss="infonce", t=0.5)` used to raise).
//! - A learnt bias starts from `init_b`: `learn_b` with a fixed bias (`b`, or a relative bias
//!   with a value) is refused; `relative_bias` without a value (`--relative-bias`,
//!   `relative_bias=True`) learns `r_b = b / t` instead of `b`.
//! - `b` is a number or `tied` (`b = t`), parsed once ([`parse_bias`]).
//! - `threads = 0`, `d = 0` and non-finite numbers are refused.
//!
//! Output paths are checked before any work starts ([`OutputPaths`]).

use crate::base::Precision;
use crate::batch::MiniBatch;
use crate::encoder::{self, EncoderConfig};
use crate::error::{check_finite, Error, Result};
use crate::geometry::{QuantileLevel, DEFAULT_MARGIN_QUANTILE};
use crate::grid::{parse_int_grid, parse_real_grid};
use crate::inspect::{InspectConfig, QuantileMode, DEFAULT_INSPECT_BLOCK};
use crate::io::MatrixFormat;
use crate::limits::{MemoryLimit, MAX_MEMORY};
use crate::loss::{Loss, LossKind, LossParams};
use crate::optim::{self, FreeConfig, OptimizerKind, Schedule};
use crate::sweep::{Mode, RunOptions, Shard, SweepSpec};
use crate::theory::BiasMode;
use crate::valid::Valid;
use std::path::{Path, PathBuf};

/// How a front end spells an option's name in messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spelling {
    /// The command line: `relative_bias` is `--relative-bias`.
    Flag,
    /// Python's keyword arguments: `relative_bias` is `relative_bias`.
    Keyword,
}

impl Spelling {
    /// The option `name` (the library's, `snake_case`) in this spelling.
    pub fn name(self, name: &str) -> String {
        match self {
            Spelling::Flag => format!("--{}", name.replace('_', "-")),
            Spelling::Keyword => name.to_string(),
        }
    }

    /// Several names joined by `/`.
    fn names(self, names: &[&str]) -> String {
        names
            .iter()
            .map(|n| self.name(n))
            .collect::<Vec<_>>()
            .join("/")
    }

    /// A switch turned on: `--learn-t` or `learn_t=True`.
    fn on(self, name: &str) -> String {
        match self {
            Spelling::Flag => self.name(name),
            Spelling::Keyword => format!("{name}=True"),
        }
    }

    /// An option given with a value: `--n 5` or `n=5`.
    fn given(self, name: &str, value: impl std::fmt::Display) -> String {
        match self {
            Spelling::Flag => format!("{} {value}", self.name(name)),
            Spelling::Keyword => format!("{name}={value}"),
        }
    }

    /// An option as a user sets it, without a value: `--max-memory` or `max_memory=`.
    fn setting(self, name: &str) -> String {
        match self {
            Spelling::Flag => self.name(name),
            Spelling::Keyword => format!("{name}="),
        }
    }

    /// `e` with the option it names spelled this way: the library's errors that name an
    /// option outside a resolver ([`Error::TooLarge`]'s `max_memory`) name it in its own
    /// spelling; each front end passes every error through this.
    pub fn respell(self, e: Error) -> Error {
        match e {
            Error::TooLarge {
                what,
                bytes,
                limit,
                limit_source,
                explicit,
                option,
            } => Error::TooLarge {
                what,
                bytes,
                limit,
                limit_source,
                explicit,
                option: self.setting(&option),
            },
            Error::Config(m) => Error::Config(crate::error::spell_options(&m, |n| self.name(n))),
            e => e,
        }
    }
}

/// A memory limit as given (`max_memory`): a size as text (`512M`, `1.5G`, `1000000`, as
/// typed on the command line) or a number of bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemoryArg {
    /// A size with an optional unit ([`crate::limits::parse_bytes`]).
    Text(String),
    /// Bytes (`>= 1`).
    Bytes(i64),
}

impl From<&str> for MemoryArg {
    fn from(s: &str) -> Self {
        MemoryArg::Text(s.to_string())
    }
}

impl From<i64> for MemoryArg {
    fn from(b: i64) -> Self {
        MemoryArg::Bytes(b)
    }
}

/// The memory limit of the option `max_memory`: the memory available when none is given
/// ([`MemoryLimit::Available`]).
///
/// # Errors
/// A size that [`crate::limits::parse_bytes`] refuses, or fewer than 1 byte, named in `sp`'s
/// spelling.
pub fn parse_max_memory(arg: Option<&MemoryArg>, sp: Spelling) -> Result<MemoryLimit> {
    let bad = |value: String| {
        config(format!(
            "invalid {}: use a size such as 512M, 8G or 1.5G, or a number of bytes >= 1",
            sp.given(MAX_MEMORY, value)
        ))
    };
    match arg {
        None => Ok(MemoryLimit::Available),
        Some(MemoryArg::Text(s)) => MemoryLimit::parse(s).map_err(|_| bad(format!("'{s}'"))),
        Some(&MemoryArg::Bytes(b)) => u64::try_from(b)
            .map_err(|_| bad(b.to_string()))
            .and_then(|b| MemoryLimit::bytes(b).map_err(|_| bad(b.to_string()))),
    }
}

fn config(msg: String) -> Error {
    Error::Config(msg)
}

/// A bias as given: text (`tied` or a number, as typed on the command line) or a number.
#[derive(Clone, Debug, PartialEq)]
pub enum BiasArg {
    /// `tied` (any case) or a number.
    Text(String),
    /// A number.
    Value(f64),
}

impl From<f64> for BiasArg {
    fn from(v: f64) -> Self {
        BiasArg::Value(v)
    }
}

impl From<&str> for BiasArg {
    fn from(s: &str) -> Self {
        BiasArg::Text(s.to_string())
    }
}

/// The bias setting of `b` (a number or `tied`) and a relative bias `r_b` (`b = r_b t`): tied
/// when neither is given. The one place a bias option is parsed.
///
/// # Errors
/// Both given; `b` neither a number nor `tied`; a non-finite value.
pub fn parse_bias(b: Option<&BiasArg>, relative: Option<f64>, sp: Spelling) -> Result<BiasMode> {
    match (b, relative) {
        (Some(_), Some(_)) => Err(config(format!(
            "give either {} or {}, not both",
            sp.name("b"),
            sp.name("relative_bias")
        ))),
        (None, None) => Ok(BiasMode::Tied),
        (None, Some(r)) => Ok(BiasMode::Relative(check_finite("relative_bias", r)?)),
        (Some(BiasArg::Value(v)), None) => Ok(BiasMode::Fixed(check_finite("b", *v)?)),
        (Some(BiasArg::Text(s)), None) => {
            if s.trim().eq_ignore_ascii_case("tied") {
                return Ok(BiasMode::Tied);
            }
            let v: f64 = s.trim().parse().map_err(|_| {
                config(format!(
                    "invalid {} '{s}': give a number or 'tied'",
                    sp.name("b")
                ))
            })?;
            Ok(BiasMode::Fixed(check_finite("b", v)?))
        }
    }
}

/// A grid of values as given: the command line's spelling (`4..50`, `0.1..5:10`, `1,2,5`) or
/// the values themselves (Python's sequences and arrays).
#[derive(Clone, Debug, PartialEq)]
pub enum GridArg<T> {
    /// A grid spelled as text ([`crate::grid`]).
    Text(String),
    /// The values.
    Values(Vec<T>),
}

impl GridArg<f64> {
    /// The values of a grid of reals.
    ///
    /// # Errors
    /// A malformed or empty grid, a non-finite value.
    pub fn reals(&self, name: &str, sp: Spelling) -> Result<Vec<f64>> {
        match self {
            GridArg::Text(s) => parse_real_grid(s),
            GridArg::Values(v) => {
                if v.is_empty() {
                    return Err(config(format!("{}: the grid is empty", sp.name(name))));
                }
                if let Some(x) = v.iter().find(|x| !x.is_finite()) {
                    return Err(config(format!(
                        "{}: {x} is not a finite number",
                        sp.name(name)
                    )));
                }
                Ok(v.clone())
            }
        }
    }
}

impl GridArg<usize> {
    /// The values of a grid of integers.
    ///
    /// # Errors
    /// A malformed or empty grid.
    pub fn ints(&self, name: &str, sp: Spelling) -> Result<Vec<usize>> {
        match self {
            GridArg::Text(s) => parse_int_grid(s),
            GridArg::Values(v) if v.is_empty() => {
                Err(config(format!("{}: the grid is empty", sp.name(name))))
            }
            GridArg::Values(v) => Ok(v.clone()),
        }
    }
}

/// The options that choose a run's loss (`optimize`; `train` takes the fixed ones only).
#[derive(Clone, Debug, PartialEq)]
pub struct LossOptions {
    /// Which loss.
    pub loss: LossKind,
    /// The sigmoid scale `t` (fixed).
    pub t: Option<f64>,
    /// The sigmoid bias `b` (fixed; default `b = t`).
    pub b: Option<BiasArg>,
    /// A relative bias `b = r_b t`: `Some(None)` makes `r_b` the parameter (learnt with
    /// `learn_b`), `Some(Some(r))` fixes it.
    pub relative_bias: Option<Option<f64>>,
    /// The temperature `tau` of the losses that have one (`infonce`, `simclr`, `dcl`, `dhel`).
    pub tau: Option<f64>,
    /// The weight `W >= 0` of within-view negatives, for the losses that take it (`sigmoid`,
    /// `infonce`; default `0`).
    pub within_view: Option<f64>,
    /// Learn `t = exp(t')`.
    pub learn_t: bool,
    /// Learn the bias.
    pub learn_b: bool,
    /// The start of a learnt `t` (default [`optim::SIGLIP_INIT_T`]).
    pub init_t: Option<f64>,
    /// The start of a learnt `b` (default [`optim::SIGLIP_INIT_B`]).
    pub init_b: Option<f64>,
}

/// The parameters `kind` takes, in `sp`'s spelling (`--tau, --within-view`), or `no parameter`.
fn takes_list(kind: LossKind, sp: Spelling) -> String {
    if kind.params().is_empty() {
        "no parameter".to_string()
    } else {
        kind.params()
            .iter()
            .map(|p| sp.name(p))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The registered losses that take the parameter `param` (`sigmoid, infonce`).
fn losses_taking(param: &str) -> String {
    LossKind::ALL
        .iter()
        .filter(|k| k.takes(param))
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Refuses the options given (`given[i]` true) that `kind` does not take, naming the loss, the
/// option and what the loss takes: one rule for every loss and every command
/// ([`LossKind::takes`]). The sigmoid's `t`, `b`, `relative_bias` go together.
fn refuse_foreign(kind: LossKind, given: &[(&str, bool)], sp: Spelling) -> Result<()> {
    let name = kind.as_str();
    let sigmoid_given: Vec<&str> = given
        .iter()
        .filter(|(p, g)| *g && matches!(*p, "t" | "b" | "relative_bias") && !kind.takes(p))
        .map(|(p, _)| *p)
        .collect();
    if !sigmoid_given.is_empty() {
        return Err(config(format!(
            "{} are for the sigmoid loss; the {name} loss takes {}",
            sp.names(&["t", "b", "relative_bias"]),
            takes_list(kind, sp)
        )));
    }
    if let Some((p, _)) = given.iter().find(|(p, g)| *g && !kind.takes(p)) {
        return Err(config(format!(
            "{} is for the losses that take it ({}); the {name} loss takes {}",
            sp.name(p),
            losses_taking(p),
            takes_list(kind, sp)
        )));
    }
    Ok(())
}

impl LossOptions {
    /// No option given, for `loss`.
    pub fn new(loss: LossKind) -> Self {
        LossOptions {
            loss,
            t: None,
            b: None,
            relative_bias: None,
            tau: None,
            within_view: None,
            learn_t: false,
            learn_b: false,
            init_t: None,
            init_b: None,
        }
    }

    /// The loss to start from (fixed `t`, `b`, or the starts of the learnt ones), built by
    /// [`Loss::build`], the one resolver of every loss's parameters.
    ///
    /// The rules are the same for every loss, read off the registry ([`LossKind::takes`]):
    /// an option of a parameter the loss does not take is refused, naming the loss, the option
    /// and what the loss takes; a loss with a temperature needs `tau`; a loss with a scale
    /// (the sigmoid) needs `t` or `learn_t`, and only it has learnt scalars.
    ///
    /// # Errors
    /// An option the loss does not take, a missing `t` or `tau`, a fixed value given with a
    /// learnt one (`t` with `learn_t`, `b` or a relative bias value with `learn_b`), a start
    /// without the learning (`init_t` without `learn_t`), an invalid value (`tau <= 0`, a
    /// negative `within_view`: the message names the loss and the parameter).
    pub fn resolve(&self, sp: Spelling) -> Result<Loss> {
        let o = |n: &str| sp.name(n);
        let kind = self.loss;
        let name = kind.as_str();
        refuse_foreign(
            kind,
            &[
                ("t", self.t.is_some()),
                ("b", self.b.is_some()),
                ("relative_bias", self.relative_bias.is_some()),
                ("tau", self.tau.is_some()),
                ("within_view", self.within_view.is_some()),
            ],
            sp,
        )?;
        // Learnt scalars: the scale and bias of a loss with a scale `t` (the sigmoid).
        let learns = self.learn_t || self.learn_b || self.init_t.is_some() || self.init_b.is_some();
        if learns && !kind.takes("t") {
            return Err(config(format!(
                "{} are for the sigmoid loss; the {name} loss takes {}",
                sp.names(&["learn_t", "learn_b", "init_t", "init_b"]),
                takes_list(kind, sp)
            )));
        }
        if kind.takes("tau") && self.tau.is_none() {
            return Err(config(format!(
                "{} is required for the {name} loss (e.g. {})",
                o("tau"),
                sp.given("tau", 0.5)
            )));
        }
        let (t, b) = if kind.takes("t") {
            let (t, b) = self.scale_and_bias(sp)?;
            (Some(t), Some(b))
        } else {
            (None, None)
        };
        Loss::build(
            kind,
            &LossParams {
                t,
                b,
                relative_bias: None,
                tau: self.tau,
                within_view: self.within_view,
            },
        )
    }

    /// The sigmoid's scale `t` and bias `b` (fixed, or the starts of the learnt ones).
    fn scale_and_bias(&self, sp: Spelling) -> Result<(f64, f64)> {
        let o = |n: &str| sp.name(n);
        let t = if self.learn_t {
            if self.t.is_some() {
                return Err(config(format!(
                    "{} fixes the scale; with {} give its start as {} (default 10)",
                    o("t"),
                    sp.on("learn_t"),
                    o("init_t")
                )));
            }
            self.init_t.unwrap_or(optim::SIGLIP_INIT_T)
        } else {
            if self.init_t.is_some() {
                return Err(config(format!(
                    "{} is the start of a learnt scale: add {}, or fix it with {}",
                    o("init_t"),
                    sp.on("learn_t"),
                    o("t")
                )));
            }
            self.t.ok_or_else(|| {
                config(format!(
                    "{} is required for the sigmoid loss (e.g. {}), or learn it with {}",
                    o("t"),
                    sp.given("t", 1),
                    sp.on("learn_t")
                ))
            })?
        };
        let rel_value = self.relative_bias.flatten();
        if self.b.is_some() && self.relative_bias.is_some() {
            return Err(config(format!(
                "give either {} or {}, not both",
                o("b"),
                o("relative_bias")
            )));
        }
        let b = if self.learn_b {
            if self.b.is_some() || rel_value.is_some() {
                return Err(config(format!(
                    "{b} and {r} with a value fix the bias; with {l} give its start as \
                     {i} (default 10), and learn r_b = b/t with {r} alone ({r1})",
                    b = o("b"),
                    r = o("relative_bias"),
                    l = sp.on("learn_b"),
                    i = o("init_b"),
                    r1 = match sp {
                        Spelling::Flag => "--relative-bias without a value",
                        Spelling::Keyword => "relative_bias=True",
                    }
                )));
            }
            self.init_b.unwrap_or(optim::SIGLIP_INIT_B)
        } else {
            if self.init_b.is_some() {
                return Err(config(format!(
                    "{} is the start of a learnt bias: add {}, or fix it with {}",
                    o("init_b"),
                    sp.on("learn_b"),
                    o("b")
                )));
            }
            parse_bias(self.b.as_ref(), rel_value, sp)?.bias(t)
        };
        Ok((t, b))
    }
}

/// The learning-rate schedule of `optimize` by name: `step` (the default), `constant` or
/// `cosine` ([`Schedule::named`]).
pub const DEFAULT_LR_SCHEDULE: &str = "step";

/// The mini-batch options shared by `optimize`, `train` and `sweep` (SPEC §8).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct MiniBatchOptions {
    /// Mini-batch size `B` (`None`: the full batch).
    pub batch: Option<usize>,
    /// The strategy's name ([`crate::batch::Batching`]).
    pub batching: Option<String>,
    /// Weight of the negative-variance penalty (`0`: none).
    pub neg_variance_weight: f64,
}

impl MiniBatchOptions {
    fn resolve(&self, n: usize, loss: &Loss) -> Result<Option<MiniBatch>> {
        check_finite("neg_variance_weight", self.neg_variance_weight)?;
        MiniBatch::from_options(n, self.batch, self.batching.as_deref(), loss)
    }
}

/// Where a command saves its matrices; checked before the work ([`OutputPaths::check`]).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct OutputPaths {
    /// The final `U` (`.npy` or `.csv`).
    pub save_u: Option<PathBuf>,
    /// The final `V` (`.npy` or `.csv`).
    pub save_v: Option<PathBuf>,
}

impl OutputPaths {
    /// Checks every output path before the work: the extension picks the format (`.npy` or
    /// `.csv`, anything else refused), `U` and `V` go to different files, the parent directory
    /// exists and is writable, and the path is not a directory. An existing file is replaced
    /// (atomically, by [`crate::io::write_matrix`]), as `--save-u` always did.
    ///
    /// # Errors
    /// The first path that breaks a rule, named.
    pub fn check(&self, sp: Spelling) -> Result<()> {
        let named = [("save_u", &self.save_u), ("save_v", &self.save_v)];
        for (name, p) in named {
            if let Some(p) = p {
                check_output_path(p, &sp.name(name))?;
            }
        }
        if let (Some(u), Some(v)) = (&self.save_u, &self.save_v) {
            if same_file(u, v) {
                return Err(config(format!(
                    "{} and {} are the same file '{}': V would replace U; give two paths",
                    sp.name("save_u"),
                    sp.name("save_v"),
                    v.display()
                )));
            }
        }
        Ok(())
    }

    /// Writes `u` and `v` where asked (each atomically, [`crate::io::write_matrix`]).
    ///
    /// # Errors
    /// A file that cannot be written.
    pub fn write(&self, u: &ndarray::Array2<f64>, v: &ndarray::Array2<f64>) -> Result<()> {
        if let Some(p) = &self.save_u {
            crate::io::write_matrix(p, u)?;
        }
        if let Some(p) = &self.save_v {
            crate::io::write_matrix(p, v)?;
        }
        Ok(())
    }
}

/// Whether `a` and `b` name the same file (also through `.`/`..`, links or the case-blind
/// spelling of an existing file).
fn same_file(a: &Path, b: &Path) -> bool {
    if a == b {
        return true;
    }
    let canon = |p: &Path| -> Option<PathBuf> {
        let parent = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Some(parent.canonicalize().ok()?.join(p.file_name()?))
    };
    match (canon(a), canon(b)) {
        (Some(x), Some(y)) => {
            x == y
                || (x.exists()
                    && y.exists()
                    && x.canonicalize()
                        .ok()
                        .is_some_and(|cx| y.canonicalize().ok().is_some_and(|cy| cx == cy)))
        }
        _ => false,
    }
}

/// Checks one output path of a matrix (see [`OutputPaths::check`]); `what` names the option.
///
/// # Errors
/// A wrong extension, a missing or unwritable parent directory, a directory at `path`.
pub fn check_output_path(path: &Path, what: &str) -> Result<MatrixFormat> {
    let format = MatrixFormat::from_path(path).map_err(|e| config(format!("{what}: {e}")))?;
    if path.is_dir() {
        return Err(config(format!(
            "{what}: '{}' is a directory; give a file name",
            path.display()
        )));
    }
    let parent = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(config(format!(
            "{what}: cannot save to '{}': the directory '{}' does not exist",
            path.display(),
            parent.display()
        )));
    }
    // Writable: create (and remove) a probe file beside it, as the atomic write will.
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let probe = parent.join(format!(".{name}.probe{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
        }
        Err(e) => {
            return Err(config(format!(
                "{what}: cannot save to '{}': the directory '{}' is not writable ({e})",
                path.display(),
                parent.display()
            )))
        }
    }
    if std::fs::metadata(path).is_ok_and(|m| m.permissions().readonly()) {
        return Err(config(format!(
            "{what}: '{}' exists and is read-only",
            path.display()
        )));
    }
    Ok(format)
}

/// The raw options of `optimize` (free embeddings minimising a loss).
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizeOptions {
    /// Batch size `N`.
    pub n: usize,
    /// Dimension (default `N`).
    pub d: Option<usize>,
    /// The loss and its learnt scalars.
    pub loss: LossOptions,
    /// The optimiser.
    pub optimizer: OptimizerKind,
    /// Initial learning rate (default: the optimiser's).
    pub lr: Option<f64>,
    /// `step` (default), `constant` or `cosine`.
    pub lr_schedule: Option<String>,
    /// SGD momentum.
    pub momentum: f64,
    /// Maximum steps per start (default [`optim::DEFAULT_STEPS`], or
    /// [`optim::DEFAULT_STEPS_LEARNT`] when `t` or `b` is learnt).
    pub steps: Option<usize>,
    /// Relative gradient tolerance.
    pub grad_tol: f64,
    /// Random starts (default [`optim::DEFAULT_RESTARTS`]).
    pub restarts: Option<usize>,
    /// Seed.
    pub seed: u64,
    /// Mini-batches.
    pub mini_batch: MiniBatchOptions,
    /// The level of `margin_quantile`.
    pub margin_quantile: f64,
    /// Where to save `U`, `V`.
    pub outputs: OutputPaths,
    /// The most memory the run may use (`max_memory`; default: the memory available).
    pub max_memory: Option<MemoryArg>,
}

impl OptimizeOptions {
    /// `n` pairs with `loss` and every other option at its default.
    pub fn new(n: usize, loss: LossOptions) -> Self {
        OptimizeOptions {
            n,
            d: None,
            loss,
            optimizer: optim::DEFAULT_OPTIMIZER,
            lr: None,
            lr_schedule: None,
            momentum: 0.0,
            steps: None,
            grad_tol: optim::DEFAULT_GRAD_TOL,
            restarts: None,
            seed: 0,
            mini_batch: MiniBatchOptions::default(),
            margin_quantile: DEFAULT_MARGIN_QUANTILE,
            outputs: OutputPaths::default(),
            max_memory: None,
        }
    }

    /// The checked run, its quantile level and output paths.
    ///
    /// # Errors
    /// Any invalid option or combination (see the module docs), named in `sp`'s spelling.
    pub fn resolve(&self, sp: Spelling) -> Result<ResolvedOptimize> {
        let level = QuantileLevel::new(self.margin_quantile)?;
        let loss = self.loss.resolve(sp)?;
        let d = check_dimension(self.d, self.n, sp)?;
        let mut cfg = FreeConfig::new(self.n, d, loss, self.seed);
        cfg.optimizer = self.optimizer;
        cfg.lr = self.lr.unwrap_or(self.optimizer.default_lr());
        cfg.momentum = self.momentum;
        cfg.steps = self
            .steps
            .unwrap_or(if self.loss.learn_t || self.loss.learn_b {
                optim::DEFAULT_STEPS_LEARNT
            } else {
                optim::DEFAULT_STEPS
            });
        cfg.schedule = Schedule::named(
            self.lr_schedule.as_deref().unwrap_or(DEFAULT_LR_SCHEDULE),
            cfg.steps,
        )?;
        cfg.grad_tol = self.grad_tol;
        cfg.restarts = self.restarts.unwrap_or(optim::DEFAULT_RESTARTS);
        cfg.learn_t = self.loss.learn_t;
        cfg.learn_b = self.loss.learn_b;
        cfg.relative_bias = self.loss.relative_bias.is_some();
        cfg.batch = self.mini_batch.resolve(self.n, &loss)?;
        cfg.neg_variance_weight = self.mini_batch.neg_variance_weight;
        cfg.max_memory = parse_max_memory(self.max_memory.as_ref(), sp)?;
        let config = cfg.check()?;
        self.outputs.check(sp)?;
        Ok(ResolvedOptimize {
            config,
            level,
            outputs: self.outputs.clone(),
        })
    }
}

/// `d` (default `n`), which must be `>= 1`.
fn check_dimension(d: Option<usize>, n: usize, sp: Spelling) -> Result<usize> {
    match d {
        Some(0) => Err(config(format!(
            "invalid {}: the dimension must be >= 1",
            sp.given("d", 0)
        ))),
        Some(d) => Ok(d),
        None => Ok(n),
    }
}

/// A checked `optimize` run.
#[derive(Clone, Debug)]
pub struct ResolvedOptimize {
    /// The run.
    pub config: Valid<FreeConfig>,
    /// The quantile level of `margin_quantile`.
    pub level: QuantileLevel,
    /// Where to save `U`, `V` (checked).
    pub outputs: OutputPaths,
}

/// The raw options of `train` (the paper's encoder).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainOptions {
    /// Batch size `N`.
    pub n: usize,
    /// Embedding dimension (default `N`).
    pub d: Option<usize>,
    /// Encoder layers.
    pub layers: usize,
    /// The loss (fixed `t`, `b` or `tau`; nothing learnt).
    pub loss: LossOptions,
    /// SGD steps.
    pub steps: usize,
    /// Learning rate.
    pub lr: f64,
    /// Seed.
    pub seed: u64,
    /// Mini-batches.
    pub mini_batch: MiniBatchOptions,
    /// The level of `margin_quantile`.
    pub margin_quantile: f64,
    /// Where to save `U`, `V`.
    pub outputs: OutputPaths,
    /// The most memory the run may use (`max_memory`; default: the memory available).
    pub max_memory: Option<MemoryArg>,
}

impl TrainOptions {
    /// `n` pairs with `loss` and every other option at its default.
    pub fn new(n: usize, loss: LossOptions) -> Self {
        TrainOptions {
            n,
            d: None,
            layers: encoder::DEFAULT_LAYERS,
            loss,
            steps: encoder::DEFAULT_STEPS,
            lr: encoder::DEFAULT_LR,
            seed: 0,
            mini_batch: MiniBatchOptions::default(),
            margin_quantile: DEFAULT_MARGIN_QUANTILE,
            outputs: OutputPaths::default(),
            max_memory: None,
        }
    }

    /// The checked run.
    ///
    /// For a loss with a temperature (InfoNCE, SimCLR, DCL, DHEL), `t` is the temperature (the
    /// paper's script), as `tau`.
    ///
    /// # Errors
    /// Any invalid option or combination, named in `sp`'s spelling (`t` and `tau` both given for
    /// a loss with a temperature); `train` learns no scalar.
    pub fn resolve(&self, sp: Spelling) -> Result<ResolvedTrain> {
        let level = QuantileLevel::new(self.margin_quantile)?;
        let l = &self.loss;
        if l.learn_t || l.learn_b || l.init_t.is_some() || l.init_b.is_some() {
            return Err(config(format!(
                "train takes a fixed loss: {} are options of optimize",
                sp.names(&["learn_t", "learn_b", "init_t", "init_b"])
            )));
        }
        if l.relative_bias.is_some() && l.loss.takes("relative_bias") {
            return Err(config(format!(
                "train takes a fixed bias {}; {} is an option of optimize and sweep",
                sp.name("b"),
                sp.name("relative_bias")
            )));
        }
        // The paper's script: for a loss with a temperature and no scale (InfoNCE and its
        // family), train's `t` is the temperature.
        let mut l = l.clone();
        if l.loss.takes("tau") && !l.loss.takes("t") && l.t.is_some() {
            if l.tau.is_some() {
                return Err(config(format!(
                    "{} and {} both give the {} loss's temperature: give {} alone",
                    sp.name("t"),
                    sp.name("tau"),
                    l.loss,
                    sp.name("tau")
                )));
            }
            l.tau = l.t.take();
        }
        let loss = l.resolve(sp)?;
        let d = check_dimension(self.d, self.n, sp)?;
        let config = EncoderConfig {
            n: self.n,
            d,
            layers: self.layers,
            steps: self.steps,
            lr: self.lr,
            seed: self.seed,
            batch: self.mini_batch.resolve(self.n, &loss)?,
            neg_variance_weight: self.mini_batch.neg_variance_weight,
            max_memory: parse_max_memory(self.max_memory.as_ref(), sp)?,
        }
        .check()?;
        // A loss of the joint views adds its 2N x 2N buffers to the run's memory.
        config.check_loss(&loss)?;
        self.outputs.check(sp)?;
        Ok(ResolvedTrain {
            config,
            loss,
            level,
            outputs: self.outputs.clone(),
        })
    }
}

/// A checked `train` run.
#[derive(Clone, Debug)]
pub struct ResolvedTrain {
    /// The run.
    pub config: Valid<EncoderConfig>,
    /// The loss.
    pub loss: Loss,
    /// The quantile level of `margin_quantile`.
    pub level: QuantileLevel,
    /// Where to save `U`, `V` (checked).
    pub outputs: OutputPaths,
}

/// The raw options of `sweep`.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepOptions {
    /// Free embeddings or the encoder.
    pub mode: Mode,
    /// Which loss (`t` is then the sigmoid scale or the temperature `tau` of a loss that has
    /// one).
    pub loss: LossKind,
    /// Batch sizes.
    pub n: GridArg<usize>,
    /// The swept values of `t` (the sigmoid's scale; for a loss with a temperature, an alias of
    /// `tau`). `None` with `tau`, or for a loss without parameters (`spectral`).
    pub t: Option<GridArg<f64>>,
    /// The swept values of the temperature `tau` (a loss that has one).
    pub tau: Option<GridArg<f64>>,
    /// The weight `W >= 0` of within-view negatives (`sigmoid`, `infonce`).
    pub within_view: Option<f64>,
    /// The sigmoid bias (default tied).
    pub b: Option<BiasArg>,
    /// A relative bias `b = r_b t`.
    pub relative_bias: Option<f64>,
    /// Seeds per cell.
    pub seeds: usize,
    /// Base seed.
    pub seed: u64,
    /// `d = round(d_ratio N)` (default 1).
    pub d_ratio: Option<f64>,
    /// A grid of dimensions (instead of `d_ratio`).
    pub d: Option<GridArg<usize>>,
    /// Steps.
    pub steps: Option<usize>,
    /// Learning rate.
    pub lr: Option<f64>,
    /// Encoder layers.
    pub layers: Option<usize>,
    /// Free embeddings: the optimiser's name.
    pub optimizer: Option<String>,
    /// Free embeddings: random starts.
    pub restarts: Option<usize>,
    /// Free embeddings: the gradient tolerance.
    pub grad_tol: Option<f64>,
    /// Mini-batches.
    pub mini_batch: MiniBatchOptions,
    /// `I/K`: this directory's shard.
    pub shard: Option<String>,
    /// Worker threads (default: all cores).
    pub threads: Option<usize>,
    /// The most memory the sweep may use (`max_memory`; default: the memory available).
    pub max_memory: Option<MemoryArg>,
}

impl SweepOptions {
    /// A sweep of `mode` and `loss` over the grids `n`, `t`, every other option at its default.
    pub fn new(mode: Mode, loss: LossKind, n: GridArg<usize>, t: GridArg<f64>) -> Self {
        SweepOptions {
            mode,
            loss,
            n,
            t: Some(t),
            tau: None,
            within_view: None,
            b: None,
            relative_bias: None,
            seeds: 1,
            seed: 0,
            d_ratio: None,
            d: None,
            steps: None,
            lr: None,
            layers: None,
            optimizer: None,
            restarts: None,
            grad_tol: None,
            mini_batch: MiniBatchOptions::default(),
            shard: None,
            threads: None,
            max_memory: None,
        }
    }

    /// The checked sweep and its thread count.
    ///
    /// # Errors
    /// Any invalid option or combination, named in `sp`'s spelling.
    pub fn resolve(&self, sp: Spelling) -> Result<ResolvedSweep> {
        let kind = self.loss;
        if !kind.takes("b") && (self.b.is_some() || self.relative_bias.is_some()) {
            return Err(config(format!(
                "{} are for the sigmoid loss; the {kind} loss has no bias{}",
                sp.names(&["b", "relative_bias"]),
                if kind.takes("tau") {
                    format!(" (its swept {} is the temperature tau)", sp.name("tau"))
                } else {
                    String::new()
                }
            )));
        }
        let bias = parse_bias(self.b.as_ref(), self.relative_bias, sp)?;
        if self.threads == Some(0) {
            return Err(config(format!(
                "invalid {}: need at least one worker thread",
                sp.given("threads", 0)
            )));
        }
        if self.d.is_some() && self.d_ratio.is_some() {
            return Err(config(format!(
                "give either {} or {}, not both",
                sp.name("d"),
                sp.name("d_ratio")
            )));
        }
        let neg = self.mini_batch.neg_variance_weight;
        check_finite("neg_variance_weight", neg)?;
        let spec = SweepSpec {
            mode: self.mode,
            objective: self.loss,
            ns: self.n.ints("n", sp)?,
            ts: self.swept(sp)?,
            bias,
            seeds: self.seeds,
            base_seed: self.seed,
            d_ratio: self.d_ratio.unwrap_or(1.0),
            ds: self.d.as_ref().map(|d| d.ints("d", sp)).transpose()?,
            within_view: self.within_view,
            run: RunOptions {
                steps: self.steps,
                lr: self.lr,
                layers: self.layers,
                optimizer: self.optimizer.clone(),
                restarts: self.restarts,
                grad_tol: self.grad_tol,
                batch: self.mini_batch.batch,
                batching: self
                    .mini_batch
                    .batching
                    .as_deref()
                    .map(str::parse)
                    .transpose()?,
                neg_variance_weight: (neg != 0.0).then_some(neg),
                max_memory: parse_max_memory(self.max_memory.as_ref(), sp)?,
            },
            shard: self.shard.as_deref().map(Shard::parse).transpose()?,
        }
        .check()?;
        Ok(ResolvedSweep {
            spec,
            threads: self.threads,
        })
    }
}

impl SweepOptions {
    /// The swept values: `tau` (or `t`, its alias) for a loss with a temperature, `t` for the
    /// sigmoid's scale, the single value `0` for a loss without parameters.
    fn swept(&self, sp: Spelling) -> Result<Vec<f64>> {
        let kind = self.loss;
        let has_tau = kind.takes("tau");
        match (&self.t, &self.tau) {
            (Some(_), Some(_)) => Err(config(format!(
                "give either {} or {} (its alias), not both",
                sp.name("tau"),
                sp.name("t")
            ))),
            (None, Some(tau)) if has_tau => tau.reals("tau", sp),
            (None, Some(_)) => Err(config(format!(
                "the {kind} loss has no temperature {}",
                sp.name("tau")
            ))),
            (Some(t), None) if has_tau || kind.takes("t") => t.reals("t", sp),
            (Some(_), None) => Err(config(format!(
                "the {kind} loss has no parameter to sweep: leave out {}",
                sp.name("t")
            ))),
            (None, None) if has_tau => Err(config(format!(
                "the {kind} loss needs the temperatures {} to sweep",
                sp.name("tau")
            ))),
            (None, None) if kind.takes("t") => Err(config(format!(
                "the {kind} loss needs the scales {} to sweep",
                sp.name("t")
            ))),
            (None, None) => Ok(vec![0.0]),
        }
    }
}

/// A checked sweep.
#[derive(Clone, Debug)]
pub struct ResolvedSweep {
    /// The sweep.
    pub spec: Valid<SweepSpec>,
    /// Worker threads (`None`: all cores).
    pub threads: Option<usize>,
}

/// Which options of `theory` were given: the values themselves are grids on the command line
/// and broadcast arrays in Python, each front end reads them, and this checks the combination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TheoryOptions {
    /// Which loss.
    pub loss: LossKind,
    /// `t` given.
    pub t: bool,
    /// `b` given (`tied` counts as given).
    pub b: bool,
    /// `relative_bias` given.
    pub relative_bias: bool,
    /// `tau` given.
    pub tau: bool,
    /// `within_view` given.
    pub within_view: bool,
    /// `batch` given.
    pub batch: bool,
    /// The dimension `d`, if given.
    pub d: Option<usize>,
}

pub use crate::theory::record::TheoryPath;

impl TheoryOptions {
    /// No option given, for `loss`.
    pub fn new(loss: LossKind) -> Self {
        TheoryOptions {
            loss,
            t: false,
            b: false,
            relative_bias: false,
            tau: false,
            within_view: false,
            batch: false,
            d: None,
        }
    }

    /// Checks the combination, by the same rules as [`LossOptions::resolve`] (the registry's
    /// [`LossKind::takes`]), and says which theory answers: `within_view` is the weight given
    /// (`None`: not given; its value is checked by the loss).
    ///
    /// # Errors
    /// An option the loss does not take, a missing `t` or `tau`, both `b` and `relative_bias`,
    /// `batch` with an InfoNCE-based loss (no closed form), `d = 0`.
    pub fn resolve(&self, within_view: Option<f64>, sp: Spelling) -> Result<TheoryPath> {
        use crate::theory::zoo::{family_of, Family};
        if self.d == Some(0) {
            return Err(config(format!(
                "invalid {}: the dimension must be >= 1",
                sp.given("d", 0)
            )));
        }
        let kind = self.loss;
        let name = kind.as_str();
        refuse_foreign(
            kind,
            &[
                ("t", self.t),
                ("b", self.b),
                ("relative_bias", self.relative_bias),
                ("tau", self.tau),
                ("within_view", self.within_view),
            ],
            sp,
        )?;
        if kind.takes("t") && !self.t {
            return Err(config(format!(
                "{} is required for the {name} loss (e.g. {})",
                sp.name("t"),
                sp.given("t", 1)
            )));
        }
        if kind.takes("tau") && !self.tau {
            return Err(config(format!(
                "{} is required for the {name} loss (e.g. {})",
                sp.name("tau"),
                sp.given("tau", 0.07)
            )));
        }
        if self.b && self.relative_bias {
            return Err(config(format!(
                "give either {} or {}, not both",
                sp.name("b"),
                sp.name("relative_bias")
            )));
        }
        if let Some(w) = within_view {
            crate::loss::params::check_within(name, w)?;
        }
        let family = family_of(kind);
        if self.batch && family != Family::Additive {
            return Err(crate::theory::zoo::no_weighted_form(name));
        }
        // The theory the loss states ([`TheoryPath::of`]): it depends on the loss and its
        // within-view weight, not on the values of the grid, so it is asked of the loss at
        // t = tau = 1 (b tied). A loss that cannot be built so has no theory of SPEC §3.
        let probe = LossParams {
            t: kind.takes("t").then_some(1.0),
            b: kind.takes("b").then_some(1.0),
            tau: kind.takes("tau").then_some(1.0),
            within_view,
            ..LossParams::default()
        };
        Ok(Loss::build(kind, &probe).map_or(TheoryPath::Zoo, |l| TheoryPath::of(&l)))
    }
}

/// The raw options of `inspect` (the matrices themselves are read by the front end).
#[derive(Clone, Debug, PartialEq)]
pub struct InspectOptions {
    /// The sigmoid scale (default 10, SigLIP's initial value).
    pub t: f64,
    /// The sigmoid bias (default `b = t`).
    pub b: Option<BiasArg>,
    /// InfoNCE's temperature (default 0.07).
    pub tau: f64,
    /// Put the rows on the unit sphere first.
    pub normalize: bool,
    /// The level of `margin_quantile`.
    pub margin_quantile: f64,
    /// `f32` or `f64` (default: the matrices' own).
    pub precision: Option<String>,
    /// `exact` or `histogram` (default: exact up to `N = 4096`).
    pub quantile: Option<String>,
    /// Rows per block.
    pub block: usize,
    /// A registry loss to evaluate too (its name), with `t`, `b`, `tau` as it takes them.
    pub loss: Option<String>,
    /// The within-view weight `W` of that loss (`sigmoid`, `infonce`).
    pub within_view: Option<f64>,
    /// The most memory the passes may use (`max_memory`; default: the memory available).
    pub max_memory: Option<MemoryArg>,
}

/// `inspect`'s default `t` (SigLIP's initial scale).
pub const DEFAULT_INSPECT_T: f64 = 10.0;
/// `inspect`'s default `tau` (CLIP's initial temperature).
pub const DEFAULT_INSPECT_TAU: f64 = 0.07;

impl Default for InspectOptions {
    fn default() -> Self {
        InspectOptions {
            t: DEFAULT_INSPECT_T,
            b: None,
            tau: DEFAULT_INSPECT_TAU,
            normalize: true,
            margin_quantile: DEFAULT_MARGIN_QUANTILE,
            precision: None,
            quantile: None,
            block: DEFAULT_INSPECT_BLOCK,
            loss: None,
            within_view: None,
            max_memory: None,
        }
    }
}

impl InspectOptions {
    /// The checked configuration (checked again with the matrices by
    /// [`crate::inspect::inspect_with`]).
    ///
    /// # Errors
    /// An invalid `t`, `b`, `tau`, quantile level, precision, quantile mode or `block = 0`; an
    /// unknown loss name, or a parameter the named loss refuses (`within_view`).
    pub fn resolve(&self, sp: Spelling) -> Result<InspectConfig> {
        let b = match &self.b {
            None => None,
            Some(b) => match parse_bias(Some(b), None, sp)? {
                BiasMode::Fixed(v) => Some(v),
                _ => None,
            },
        };
        Loss::sigmoid(self.t, b.unwrap_or(self.t))?;
        Loss::infonce(self.tau)?;
        QuantileLevel::new(self.margin_quantile)?;
        if self.block == 0 {
            return Err(config(format!(
                "invalid {}: a block needs at least one row",
                sp.given("block", 0)
            )));
        }
        let precision = self
            .precision
            .as_deref()
            .map(str::parse::<Precision>)
            .transpose()?;
        let quantile = self
            .quantile
            .as_deref()
            .map(str::parse::<QuantileMode>)
            .transpose()?;
        // The named loss takes inspect's t, b and tau as far as it uses them.
        let loss = match self.loss.as_deref() {
            None => {
                if self.within_view.is_some() {
                    return Err(config(format!(
                        "{} needs {}: it is the within-view weight of that loss",
                        sp.name("within_view"),
                        sp.name("loss")
                    )));
                }
                None
            }
            Some(name) => {
                let kind: LossKind = name.parse()?;
                let params = LossParams {
                    t: kind.takes("t").then_some(self.t),
                    b: kind.takes("b").then_some(b.unwrap_or(self.t)),
                    relative_bias: None,
                    tau: kind.takes("tau").then_some(self.tau),
                    within_view: self.within_view,
                };
                Some(Loss::build(kind, &params)?)
            }
        };
        Ok(InspectConfig {
            t: self.t,
            b,
            tau: self.tau,
            margin_quantile: self.margin_quantile,
            normalize: self.normalize,
            block: self.block,
            precision,
            quantile,
            parallel: true,
            loss,
            max_memory: parse_max_memory(self.max_memory.as_ref(), sp)?,
        })
    }
}

#[cfg(test)]
mod tests;
