import numpy as np
import pytest

import ccem
from conftest import fd_grad, infonce_ref, sigmoid_ref

RNG = np.random.default_rng(7)
U0 = RNG.normal(size=(6, 4))
V0 = RNG.normal(size=(6, 4))

CASES = [
    ("sigmoid", (2.0, 1.5), sigmoid_ref),
    ("sigmoid", (10.0, 10.0), sigmoid_ref),
    ("sigmoid", (0.7, -0.4), sigmoid_ref),
    ("infonce", (0.5,), infonce_ref),
    ("infonce", (0.07,), infonce_ref),
]


def call(kind, u, v, params, **kw):
    return (ccem.sigmoid_loss if kind == "sigmoid" else ccem.infonce_loss)(u, v, *params, **kw)


@pytest.mark.parametrize("kind, params, ref", CASES)
@pytest.mark.parametrize("normalize", [True, False])
def test_value_matches_numpy(kind, params, ref, normalize):
    u, v = (U0, V0) if normalize else (U0 / 3, V0 / 3)
    got = call(kind, u, v, params, normalize=normalize)
    assert isinstance(got, float)
    assert got == pytest.approx(ref(u, v, *params, normalize=normalize), rel=1e-12)


@pytest.mark.parametrize("kind, params, ref", CASES)
@pytest.mark.parametrize("normalize", [True, False])
def test_gradients_match_finite_differences(kind, params, ref, normalize):
    u, v = (U0, V0) if normalize else (U0 / 3, V0 / 3)
    loss, du, dv = call(kind, u, v, params, grad=True, normalize=normalize)
    assert loss == pytest.approx(ref(u, v, *params, normalize=normalize), rel=1e-12)
    fu = fd_grad(lambda x: ref(x, v, *params, normalize=normalize), u)
    fv = fd_grad(lambda y: ref(u, y, *params, normalize=normalize), v)
    for g, f in [(du, fu), (dv, fv)]:
        assert g.shape == f.shape and g.dtype == np.float64
        assert np.abs(g - f).max() <= 1e-6 * np.abs(f).max()


def test_normalised_gradient_is_tangent_and_scale_free():
    # L depends on x only through x/|x|: dL/dx is orthogonal to x and scales like 1/|x|.
    _, du, _ = ccem.sigmoid_loss(U0, V0, 2.0, 1.0, grad=True)
    assert np.abs((du * U0).sum(1)).max() < 1e-14
    _, du3, _ = ccem.sigmoid_loss(3 * U0, V0, 2.0, 1.0, grad=True)
    np.testing.assert_allclose(du3, du / 3, rtol=1e-12, atol=1e-16)


def test_float32_runs_in_float32_with_float32_gradients():
    u32, v32 = U0.astype(np.float32), V0.astype(np.float32)
    loss, du, dv = ccem.sigmoid_loss(u32, v32, 2.0, 1.0, grad=True)
    assert du.dtype == np.float32 and dv.dtype == np.float32 and isinstance(loss, float)
    # float32 products, float64 sums: within the stated tolerances of float64 ...
    ref = ccem.sigmoid_loss(u32.astype(np.float64), v32.astype(np.float64), 2.0, 1.0, grad=True)
    assert loss == pytest.approx(ref[0], rel=1e-5)
    assert np.linalg.norm(du - ref[1]) <= 1e-4 * np.linalg.norm(ref[1])
    # ... and precision="f64" is the float64 computation itself, still in float32 out.
    loss64, du64, _ = ccem.sigmoid_loss(u32, v32, 2.0, 1.0, grad=True, precision="f64")
    assert loss64 == ref[0] and du64.dtype == np.float32
    np.testing.assert_array_equal(du64, ref[1].astype(np.float32))
    # precision="f32" on float64 arrays: the float32 path, float64 gradients out.
    l32, d32, _ = ccem.sigmoid_loss(u32.astype(np.float64), v32.astype(np.float64), 2.0, 1.0,
                                    grad=True, precision="float32")
    assert l32 == loss and d32.dtype == np.float64
    np.testing.assert_array_equal(d32.astype(np.float32), du)
    _, du, dv = ccem.infonce_loss(u32, V0, 0.3, grad=True)  # each follows its input
    assert du.dtype == np.float32 and dv.dtype == np.float64
    with pytest.raises(ValueError, match="invalid precision 'f16'"):
        ccem.sigmoid_loss(U0, V0, 1.0, precision="f16")


@pytest.mark.parametrize("kind, params, ref", CASES)
@pytest.mark.parametrize("normalize", [True, False])
def test_float32_path_matches_numpy(kind, params, ref, normalize):
    rng = np.random.default_rng(3)
    u = rng.normal(size=(64, 16)).astype(np.float32)
    v = (u + 0.5 * rng.normal(size=(64, 16))).astype(np.float32)
    if not normalize:
        u, v = u / 5, v / 5
    got, du, dv = call(kind, u, v, params, grad=True, normalize=normalize)
    want = ref(u.astype(np.float64), v.astype(np.float64), *params, normalize=normalize)
    assert got == pytest.approx(want, rel=1e-5)
    _, du64, dv64 = call(kind, u, v, params, grad=True, normalize=normalize, precision="f64")
    for g, r in [(du, du64), (dv, dv64)]:
        assert np.linalg.norm(g - r) <= 1e-4 * np.linalg.norm(r)


@pytest.mark.parametrize(
    "make",
    [
        lambda a: np.asfortranarray(a),
        lambda a: np.repeat(a, 2, axis=1)[:, ::2],  # non-contiguous columns
        lambda a: np.ascontiguousarray(a[::-1])[::-1],  # negative strides
        lambda a: np.ascontiguousarray(a.T).T,  # a transposed view
        lambda a: a.tolist(),  # anything numpy.asarray takes
    ],
)
def test_any_memory_layout(make):
    want = ccem.infonce_loss(U0, V0, 0.2, grad=True)
    got = ccem.infonce_loss(make(U0), make(V0), 0.2, grad=True)
    assert got[0] == want[0]
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[2], want[2])


def test_default_bias_is_tied():
    assert ccem.sigmoid_loss(U0, V0, 3.0) == ccem.sigmoid_loss(U0, V0, 3.0, 3.0)


@pytest.mark.parametrize("dtype", [np.float16, np.int64, np.int32, np.uint8, object, np.complex128, bool])
def test_wrong_dtype_is_type_error(dtype):
    with pytest.raises(TypeError, match="float32 or float64"):
        ccem.sigmoid_loss(U0.astype(dtype), V0, 1.0)
    with pytest.raises(TypeError, match="float32 or float64"):
        ccem.infonce_loss(U0, V0.astype(dtype), 0.1, grad=True)


def test_not_an_array_is_type_error():
    with pytest.raises(TypeError):
        ccem.sigmoid_loss("abc", V0, 1.0)
    with pytest.raises(TypeError):
        ccem.sigmoid_loss(None, V0, 1.0)


@pytest.mark.parametrize(
    "u, v, params, message",
    [
        (U0, V0[:5], (1.0,), "shape mismatch: U is 6 x 4 but V is 5 x 4"),
        (U0, V0[:, :3], (1.0,), "shape mismatch"),
        (U0[0], V0[0], (1.0,), "2-D array"),
        (U0[None], V0[None], (1.0,), "2-D array"),
        (U0[:1], V0[:1], (1.0,), "N = 1 is too small"),
        (np.where(np.eye(6, 4) > 0, np.nan, U0), V0, (1.0,), "U holds a non-finite value at row 0"),
        (U0, np.where(np.eye(6, 4) > 0, np.inf, V0), (1.0,), "V holds a non-finite value"),
        (np.vstack([U0[:5], np.zeros(4)]), V0, (1.0,), "row 5 of U has norm 0"),
        (U0, V0, (-1.0,), "invalid t = -1"),
        (U0, V0, (float("nan"),), "invalid t"),
        (U0, V0, (1.0, float("inf")), "invalid b"),
    ],
)
def test_bad_values_are_value_errors(u, v, params, message):
    with pytest.raises(ValueError, match=message):
        ccem.sigmoid_loss(u, v, *params)
    with pytest.raises(ValueError):
        ccem.sigmoid_loss(u, v, *params, grad=True)


@pytest.mark.parametrize("tau", [0.0, -0.1, float("nan"), float("inf")])
def test_bad_tau(tau):
    with pytest.raises(ValueError, match="invalid tau"):
        ccem.infonce_loss(U0, V0, tau)


def test_empty_and_zero_dimension():
    with pytest.raises(ValueError, match="too small"):
        ccem.sigmoid_loss(np.zeros((0, 3)), np.zeros((0, 3)), 1.0)
    with pytest.raises(ValueError, match="norm 0"):
        ccem.sigmoid_loss(np.zeros((4, 0)), np.zeros((4, 0)), 1.0)


def test_ccem_embedding():
    n, d, c = 10, 12, 0.3
    u, v = ccem.ccem_embedding(n, d, c)
    assert u.shape == v.shape == (n, d) and u.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(u, axis=1), 1, atol=1e-14)
    s = u @ v.T
    np.testing.assert_allclose(np.diag(s), 1 - 2 * c, atol=1e-14)
    off = s[~np.eye(n, dtype=bool)]
    np.testing.assert_allclose(off, -(1 - c) / (n - 1) - c, atol=1e-14)
    ur, vr = ccem.ccem_embedding(n, d, c, seed=3)
    np.testing.assert_allclose(ur @ vr.T, s, atol=1e-13)  # a rotation keeps the Gram matrix
    assert np.abs(ur - u).max() > 0.1
    np.testing.assert_array_equal(ccem.ccem_embedding(n, d, c, seed=3)[0], ur)  # seeded


@pytest.mark.parametrize(
    "args, message",
    [((10, 9, 0.1), "d = 9 is smaller than the batch size N = 10"), ((1, 4, 0.1), "too small"),
     ((4, 4, 1.5), "invalid c"), ((-4, 4, 0.5), "invalid n = -4"), ((4, -4, 0.5), "invalid d"), ((4, 4, float("nan")), "invalid c")],
)
def test_ccem_embedding_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        ccem.ccem_embedding(*args)


def test_infonce_clip_convention():
    u, v = np.random.default_rng(5).normal(size=(2, 6, 4))
    paper = ccem.infonce_loss(u, v, 0.3, grad=True)
    clip = ccem.infonce_loss(u, v, 0.3, grad=True, convention="clip")
    assert clip[0] == paper[0] / 2
    assert np.array_equal(clip[1], paper[1] / 2) and np.array_equal(clip[2], paper[2] / 2)
    assert ccem.infonce_loss(u, v, 0.3, convention="paper") == paper[0]
    with pytest.raises(ValueError, match="convention"):
        ccem.infonce_loss(u, v, 0.3, convention="mean")


@pytest.mark.parametrize("order", [">", "<"])
def test_either_byte_order(order):
    u, v = np.random.default_rng(6).normal(size=(2, 5, 3))
    want = ccem.sigmoid_loss(u, v, 2.0, 1.0, grad=True)
    for dtype in ["f8", "f4"]:
        uo, vo = u.astype(order + dtype), v.astype(order + dtype)
        got = ccem.sigmoid_loss(uo, vo, 2.0, 1.0, grad=True)
        ref = ccem.sigmoid_loss(u.astype(dtype), v.astype(dtype), 2.0, 1.0, grad=True)
        assert got[0] == ref[0]
        assert got[1].dtype == np.dtype(dtype) and np.array_equal(got[1], ref[1])
    assert got[0] == pytest.approx(want[0], rel=1e-6)
