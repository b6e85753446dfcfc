"""ccem: the geometry of contrastive losses from numpy.

The sigmoid (SigLIP) and symmetric InfoNCE (CLIP) losses with exact gradients, the exact optimum
of the sigmoid loss (the double-Constant Embedding Model of Lee, Chang & Sohn, AISTATS 2024),
the measurement of any embedding against it, free-embedding and encoder experiments, resumable
sweeps and the figures of the ``ccem`` command-line tool.

Sign convention: the sigmoid loss has logits ``t * S_ij - b``. SigLIP's ``logit_scale`` (after
``exp``) is ``t`` and its ``logit_bias`` is ``-b``: a released model's bias of -12.7 is
``b = 12.7`` here.

Every function takes numpy arrays (float32 or float64, any memory layout) and returns numpy
arrays or dicts whose keys are those of the CLI's ``--format json``. Bad input raises
``TypeError`` (wrong dtype) or ``ValueError`` (bad values or shapes) with the library's message.
Long calls release the GIL.

The loss zoo (SPEC §1.6–1.7): ``loss(U, V, name, grad=..., **params)`` evaluates any loss by
name: ``"sigmoid"``, ``"infonce"``, ``"simclr"``, ``"dcl"``, ``"dhel"``, ``"spectral"``, with
``t=``/``b=``/``relative_bias=`` (sigmoid), ``tau=`` (the others but spectral) and
``within_view=`` (sigmoid, infonce).

Mini-batches (SPEC §8): ``theory(..., batch=B)`` is the optimum of the expected sigmoid loss
over uniformly drawn batches of ``B`` pairs (negatives weighted by ``(B-1)/(N-1)``);
``optimize``, ``train`` and ``sweep`` take ``batch=``, ``batching=`` (``"expected"``,
``"shuffled"``, ``"fixed"``, ``"all"``, ``"hardest"``) and ``neg_variance_weight=``, as the
CLI's ``--batch``, ``--batching`` and ``--neg-variance-weight``.

Example:
    >>> import ccem
    >>> ccem.theory(32768, 117.8, 12.9)["phase"]   # SigLIP's trained t and b
    'intermediate'
"""

from ccem._ccem import (
    __version__,
    ccem_embedding,
    infonce_loss,
    inspect,
    loss,
    optimize,
    plot,
    sigmoid_loss,
    sweep,
    theory,
    train,
)

__all__ = [
    "__version__",
    "ccem_embedding",
    "infonce_loss",
    "inspect",
    "loss",
    "optimize",
    "plot",
    "sigmoid_loss",
    "sweep",
    "theory",
    "train",
]
