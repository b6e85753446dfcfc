import numpy as np
import pytest

import ccem
from conftest import infonce_ref, same, sigmoid_ref, unit_rows

RNG = np.random.default_rng(11)


def stats(x):
    return x.mean(), x.std(), x.min(), x.max()


@pytest.mark.parametrize("normalize", [True, False])
def test_statistics_match_numpy(normalize):
    u, v = RNG.normal(size=(9, 12)), RNG.normal(size=(9, 12))
    r = ccem.inspect(u, v, t=3.0, b=2.0, tau=0.2, normalize=normalize)
    un, vn = (unit_rows(u), unit_rows(v)) if normalize else (u, v)
    s = un @ vn.T
    off = ~np.eye(9, dtype=bool)
    for key, x in [("s_pos", np.diag(s)), ("s_neg", s[off])]:
        for suffix, want in zip(["mean", "std", "min", "max"], stats(x)):
            assert r[f"{key}_{suffix}"] == pytest.approx(want, rel=1e-12, abs=1e-14), (key, suffix)
    gu, gv = un @ un.T, vn @ vn.T
    assert r["within_u_mean"] == pytest.approx(gu[off].mean(), abs=1e-14)
    assert r["within_v_std"] == pytest.approx(gv[off].std(), rel=1e-10)
    assert r["sigmoid_loss"] == pytest.approx(sigmoid_ref(un, vn, 3.0, 2.0, False), rel=1e-12)
    assert r["infonce_loss"] == pytest.approx(infonce_ref(un, vn, 0.2, False), rel=1e-12)
    assert (r["n"], r["d"], r["t"], r["b"], r["tau"]) == (9, 12, 3.0, 2.0, 0.2)
    assert r["infonce_loss_clip"] == r["infonce_loss"] / 2
    assert r["normalized"] is normalize
    th = ccem.theory(9, 3.0, 2.0)
    assert (r["theory_c_star"], r["theory_s_pos"], r["theory_phase"], r["theory_loss"]) == (
        th["c_star"], th["s_pos"], th["phase"], th["loss"])
    # d < N: the theory makes no prediction
    r = ccem.inspect(u[:, :5], v[:, :5], t=3.0, b=2.0)
    assert r["theory_c_star"] is None and r["meets_theory"] is None


def test_ccem_is_recognised():
    u, v = ccem.ccem_embedding(16, 20, 0.3, seed=4)
    r = ccem.inspect(u.astype(np.float32), v, t=2.0)
    assert r["c_fit"] == pytest.approx(0.3, abs=1e-6)
    assert r["gram_distance"] < 1e-6
    r = ccem.inspect(u, v, t=2.0)
    assert r["c_fit"] == pytest.approx(0.3, abs=1e-12)
    assert r["c_from_s_pos"] == pytest.approx(0.3, abs=1e-12)
    # Thm 5.2's slack is N c / (N - 1) on the CCEM (SPEC 9.6), null without normalisation.
    assert r["alignment_slack"] == pytest.approx(16 * 0.3 / 15, abs=1e-12)
    assert ccem.inspect(u, v, t=2.0, normalize=False)["alignment_slack"] is None


def test_matches_cli(cli, tmp_path):
    u, v = RNG.normal(size=(7, 5)), RNG.normal(size=(7, 5))
    np.save(tmp_path / "U.npy", u)
    np.save(tmp_path / "V.npy", np.asfortranarray(v))
    js = cli("inspect", "--u", tmp_path / "U.npy", "--v", tmp_path / "V.npy", "--t", 4, "--b", 1)
    py = ccem.inspect(u, v, t=4.0, b=1.0)
    assert list(py) == list(js)
    for k in js:
        assert same(py[k], js[k]), (k, py[k], js[k])


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(U=np.ones((3, 2), np.float16)), TypeError, "float32 or float64"),
        (dict(U=np.ones((3, 2), np.int64)), TypeError, "float32 or float64"),
        (dict(U=np.ones(3)), ValueError, "2-D"),
        (dict(U=np.ones((4, 2))), ValueError, "shape mismatch"),
        (dict(U=np.full((3, 2), np.nan)), ValueError, "non-finite"),
        (dict(U=np.ones((1, 2)), V=np.ones((1, 2))), ValueError, "too small"),
        (dict(t=-1.0), ValueError, "invalid t"),
        (dict(tau=0.0), ValueError, "invalid tau"),
        (dict(block=0), ValueError, "block"),
    ],
)
def test_bad_input(kwargs, error, message):
    args = dict(U=RNG.normal(size=(3, 2)), V=RNG.normal(size=(3, 2)))
    args.update(kwargs)
    u, v = args.pop("U"), args.pop("V")
    with pytest.raises(error, match=message):
        ccem.inspect(u, v, **args)


def test_float32_and_options_match_cli(cli, tmp_path):
    rng = np.random.default_rng(12)
    u = rng.normal(size=(30, 6)).astype(np.float32)
    v = (u + 0.6 * rng.normal(size=(30, 6))).astype(np.float32)
    np.save(tmp_path / "U.npy", u)
    np.save(tmp_path / "V.npy", v)
    for extra, kw in [((), {}), (("--precision", "f64", "--quantile", "histogram"),
                                 dict(precision="f64", quantile="histogram"))]:
        js = cli("inspect", "--u", tmp_path / "U.npy", "--v", tmp_path / "V.npy", "--t", 3,
                 "--margin-quantile", 0.1, *extra)
        py = ccem.inspect(u, v, t=3.0, margin_quantile=0.1, **kw)
        assert list(py) == list(js)
        for k in js:
            assert same(py[k], js[k]), (k, py[k], js[k])
    assert ccem.inspect(u, v)["precision"] == "f32"
    assert ccem.inspect(u, v.astype(np.float64))["precision"] == "f64"
    exact = ccem.inspect(u, v, quantile="exact")
    hist = ccem.inspect(u, v, quantile="histogram")
    assert (exact["passes"], hist["passes"]) == (2, 1)
    assert abs(exact["margin_quantile"] - hist["margin_quantile"]) <= hist["margin_quantile_error"]
    for bad, msg in [(dict(precision="half"), "invalid precision"),
                     (dict(quantile="approx"), "invalid quantile method"),
                     (dict(margin_quantile=0.9), "margin quantile"),
                     (dict(block=0), "block")]:
        with pytest.raises(ValueError, match=msg):
            ccem.inspect(u, v, **bad)


@pytest.mark.parametrize("n", [300, 4100])
def test_float32_statistics_and_quantiles_match_numpy(n):
    # An independent reference in float64 from the same float32 inputs; N = 4100 is above the
    # exact-quantile limit, so the default there is the histogram with its stated error.
    rng = np.random.default_rng(n)
    u = rng.normal(size=(n, 24)).astype(np.float32)
    v = (u + 0.9 * rng.normal(size=(n, 24))).astype(np.float32)
    r = ccem.inspect(u, v, t=4.0, b=1.0, tau=0.1, margin_quantile=0.02)
    assert r["precision"] == "f32"
    un, vn = unit_rows(u.astype(np.float64)), unit_rows(v.astype(np.float64))
    s = un @ vn.T
    off = ~np.eye(n, dtype=bool)
    neg = s[off]
    tol = 1e-5
    assert r["s_pos_mean"] == pytest.approx(np.diag(s).mean(), abs=tol)
    assert r["s_neg_mean"] == pytest.approx(neg.mean(), abs=tol)
    assert r["s_neg_std"] == pytest.approx(neg.std(), rel=tol)
    assert r["within_u_std"] == pytest.approx((un @ un.T)[off].std(), rel=tol)
    assert r["sigmoid_loss"] == pytest.approx(sigmoid_ref(un, vn, 4.0, 1.0, False), rel=tol)
    assert r["infonce_loss"] == pytest.approx(infonce_ref(un, vn, 0.1, False), rel=tol)
    want = (np.quantile(np.diag(s), 0.02) - np.quantile(neg, 0.98)) / 2
    err = r["margin_quantile_error"]
    assert (err == 0) == (n <= 4096)
    assert abs(r["margin_quantile"] - want) <= err + 1e-6  # + float32 products
    assert r["margin"] == pytest.approx((np.diag(s).min() - neg.max()) / 2, abs=1e-6)


def test_too_large_is_refused_not_an_abort():
    # 300,000 pairs in R^300,000 would need terabytes: a clear error before any allocation.
    with pytest.raises(ValueError, match="memory"):
        ccem.ccem_embedding(300_000, 300_000, 0.1)
    with pytest.raises(ValueError, match="memory"):
        ccem.optimize(n=200_000, d=200_000, t=1.0)
