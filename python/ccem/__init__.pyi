"""Type stubs of ccem (the functions live in the Rust extension ccem._ccem)."""

import os
from typing import Any, Literal, Optional, Sequence, Tuple, Union, overload

import numpy as np
import numpy.typing as npt

__version__: str

_Float = Union[float, int]
_ArrayLike = Union[_Float, Sequence[Any], npt.NDArray[Any]]
_Matrix = Union[npt.NDArray[np.float32], npt.NDArray[np.float64]]
_Grid = Union[str, _Float, Sequence[_Float], npt.NDArray[Any]]
_Path = Union[str, "os.PathLike[str]"]
_LossName = Literal["sigmoid", "infonce", "simclr", "dcl", "dhel", "spectral"]
_Batching = Literal["expected", "shuffled", "fixed", "all", "hardest"]
# The most memory a call may use: a size ("512M", "8G") or a number of bytes; None: the memory
# available (as `ccem --max-memory`).
_MaxMemory = Union[str, int, None]

def theory(
    n: _ArrayLike,
    t: Optional[_ArrayLike] = None,
    b: Union[_ArrayLike, Literal["tied"], None] = None,
    *,
    relative_bias: Optional[_ArrayLike] = None,
    loss: _LossName = "sigmoid",
    tau: Optional[_ArrayLike] = None,
    within_view: Optional[float] = None,
    boundaries: bool = True,
    batch: Optional[_ArrayLike] = None,
    d: Optional[int] = None,
) -> dict[str, Any]:
    """The exact optimum: a dict of scalars, or of numpy arrays when an argument is an array.

    Keys (sigmoid): n, t, b, c_star, delta_star, s_pos, s_neg, loss, phase, t_etf_boundary,
    t_antipodal_boundary, and with ``batch=B`` (the optimum of the expected loss over
    mini-batches of B, as ``ccem theory --batch B``) batch, w; (infonce): n, tau, c_star,
    delta_star, s_pos, s_neg, loss, phase. With ``d=D`` (as ``ccem theory --d D``): d,
    ccem_applies, margin_bound, max_margin. "No value" is None in a dict of scalars, NaN in
    arrays. SigLIP's logit_scale is t and its logit_bias is -b.
    """

@overload
def sigmoid_loss(
    U: _Matrix,
    V: _Matrix,
    t: float,
    b: Optional[float] = None,
    *,
    grad: Literal[False] = False,
    normalize: bool = True,
    precision: Optional[Literal["f32", "f64", "float32", "float64"]] = None,
    max_memory: _MaxMemory = None,
) -> float: ...
@overload
def sigmoid_loss(
    U: _Matrix,
    V: _Matrix,
    t: float,
    b: Optional[float] = None,
    *,
    grad: Literal[True],
    normalize: bool = True,
    precision: Optional[Literal["f32", "f64", "float32", "float64"]] = None,
    max_memory: _MaxMemory = None,
) -> Tuple[float, _Matrix, _Matrix]: ...
@overload
def infonce_loss(
    U: _Matrix,
    V: _Matrix,
    tau: float,
    *,
    grad: Literal[False] = False,
    normalize: bool = True,
    convention: Literal["paper", "clip"] = "paper",
    precision: Optional[Literal["f32", "f64", "float32", "float64"]] = None,
    max_memory: _MaxMemory = None,
) -> float: ...
@overload
def infonce_loss(
    U: _Matrix,
    V: _Matrix,
    tau: float,
    *,
    grad: Literal[True],
    normalize: bool = True,
    convention: Literal["paper", "clip"] = "paper",
    precision: Optional[Literal["f32", "f64", "float32", "float64"]] = None,
    max_memory: _MaxMemory = None,
) -> Tuple[float, _Matrix, _Matrix]: ...
@overload
def loss(
    U: _Matrix,
    V: _Matrix,
    name: _LossName,
    *,
    grad: Literal[False] = False,
    normalize: bool = True,
    precision: Optional[Literal["f32", "f64", "float32", "float64"]] = None,
    t: Optional[float] = None,
    b: Optional[float] = None,
    relative_bias: Optional[float] = None,
    tau: Optional[float] = None,
    within_view: Optional[float] = None,
    max_memory: _MaxMemory = None,
) -> float: ...
@overload
def loss(
    U: _Matrix,
    V: _Matrix,
    name: _LossName,
    *,
    grad: Literal[True],
    normalize: bool = True,
    precision: Optional[Literal["f32", "f64", "float32", "float64"]] = None,
    t: Optional[float] = None,
    b: Optional[float] = None,
    relative_bias: Optional[float] = None,
    tau: Optional[float] = None,
    within_view: Optional[float] = None,
    max_memory: _MaxMemory = None,
) -> Tuple[float, _Matrix, _Matrix]: ...
def ccem_embedding(
    n: int, d: int, c: float, *, seed: Optional[int] = None, max_memory: _MaxMemory = None
) -> Tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The CCEM (U, V) with parameter c in [0, 1], rotated at random when a seed is given."""

def inspect(
    U: _Matrix,
    V: _Matrix,
    *,
    t: float = 10.0,
    b: Union[float, Literal["tied"], None] = None,
    tau: float = 0.07,
    normalize: bool = True,
    margin_quantile: float = 0.05,
    precision: Optional[Literal["f32", "f64", "float32", "float64"]] = None,
    quantile: Optional[Literal["exact", "histogram"]] = None,
    block: int = 1024,
    loss: Optional[str] = None,
    within_view: Optional[float] = None,
    max_memory: _MaxMemory = None,
) -> dict[str, Any]:
    """Measure (U, V) against the CCEM and the theory: the keys of `ccem inspect --format json`."""

def optimize(
    n: int,
    *,
    d: Optional[int] = None,
    loss: _LossName = "sigmoid",
    t: Optional[float] = None,
    b: Union[float, Literal["tied"], None] = None,
    tau: Optional[float] = None,
    relative_bias: Union[float, bool, None] = None,
    within_view: Optional[float] = None,
    learn_t: bool = False,
    learn_b: bool = False,
    init_t: Optional[float] = None,
    init_b: Optional[float] = None,
    optimizer: Literal["adam", "sgd"] = "adam",
    lr: Optional[float] = None,
    lr_schedule: Literal["step", "constant", "cosine"] = "step",
    momentum: float = 0.0,
    steps: Optional[int] = None,
    grad_tol: float = 1e-7,
    restarts: int = 1,
    seed: int = 0,
    batch: Optional[int] = None,
    batching: Optional[_Batching] = None,
    neg_variance_weight: float = 0.0,
    margin_quantile: float = 0.05,
    max_memory: _MaxMemory = None,
) -> dict[str, Any]:
    """Free-embedding optimisation: the keys of `ccem optimize --format json` plus "U", "V".

    ``batch``/``batching``/``neg_variance_weight``: mini-batch training, as ``--batch``,
    ``--batching``, ``--neg-variance-weight``.
    """

def max_margin(
    n: int,
    d: Optional[int] = None,
    *,
    seed: int = 0,
    restarts: Optional[int] = None,
    hops: Optional[int] = None,
    steps: Optional[int] = None,
    lr: Optional[float] = None,
    polish: bool = True,
    margin_quantile: float = 0.05,
    max_memory: _MaxMemory = None,
) -> dict[str, Any]:
    """The largest margin of n pairs in R^d: the keys of `ccem max-margin --format json` plus "U", "V"."""

def train(
    n: int,
    *,
    d: Optional[int] = None,
    layers: int = 2,
    loss: _LossName = "sigmoid",
    t: Optional[float] = None,
    b: Union[float, Literal["tied"], None] = None,
    tau: Optional[float] = None,
    within_view: Optional[float] = None,
    steps: int = 100,
    lr: float = 0.5,
    seed: int = 0,
    batch: Optional[int] = None,
    batching: Optional[_Batching] = None,
    neg_variance_weight: float = 0.0,
    margin_quantile: float = 0.05,
    max_memory: _MaxMemory = None,
) -> dict[str, Any]:
    """The paper's encoder, one run: the keys of `ccem train --format json` plus "U", "V".

    ``batch``/``batching``/``neg_variance_weight``: mini-batch training, as ``ccem train``.
    """

def sweep(
    out: _Path,
    *,
    mode: Literal["free", "encoder"],
    n: _Grid,
    t: Optional[_Grid] = None,
    loss: Literal["sigmoid", "infonce", "simclr", "dcl", "dhel", "spectral"] = "sigmoid",
    tau: Optional[_Grid] = None,
    within_view: Optional[float] = None,
    b: Union[float, Literal["tied"], None] = None,
    relative_bias: Optional[float] = None,
    seeds: int = 1,
    seed: int = 0,
    d_ratio: Optional[float] = None,
    d: Optional[_Grid] = None,
    steps: Optional[int] = None,
    lr: Optional[float] = None,
    layers: Optional[int] = None,
    optimizer: Optional[Literal["adam", "sgd"]] = None,
    restarts: Optional[int] = None,
    grad_tol: Optional[float] = None,
    shard: Optional[str] = None,
    threads: Optional[int] = None,
    batch: Optional[int] = None,
    batching: Optional[_Batching] = None,
    neg_variance_weight: float = 0.0,
    max_memory: _MaxMemory = None,
) -> dict[str, npt.NDArray[Any]]:
    """A resumable sweep into `out`; returns results.csv as a dict of numpy columns."""

def plot(
    kind: Literal["phase", "theory", "margin", "diff", "curves", "loss-curve", "loss_curve"],
    *,
    out: _Path,
    input: Optional[_Path] = None,
    input2: Optional[_Path] = None,
    title: Optional[str] = None,
    title2: Optional[str] = None,
    vmin: Optional[float] = None,
    vmax: Optional[float] = None,
    curves: Optional[bool] = None,
    objective: Optional[str] = None,
    mode: Optional[str] = None,
    n: Optional[_Grid] = None,
    t: Optional[_Grid] = None,
    b: Union[float, Literal["tied"], None] = None,
    relative_bias: Optional[float] = None,
    quantity: Optional[Literal["s_pos", "c_star", "delta"]] = None,
    delta_max: Optional[float] = None,
    limit: Optional[float] = None,
    relative: Optional[bool] = None,
    d: Optional[_Grid] = None,
    restarts: Optional[int] = None,
    steps_per_stage: Optional[int] = None,
    seed: Optional[int] = None,
    max_memory: _MaxMemory = None,
) -> None:
    """Draw one of the CLI's figures (`ccem plot KIND`) into `out` (.png or .svg).

    Each kind takes the options of `ccem plot KIND` (defaults as there: vmin 0, vmax 1,
    curves True, delta_max 3, relative False); an option of another kind raises ValueError.
    """
