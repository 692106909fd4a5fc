"""Tests for nclib.scores.hev against a naive computation (scipy optimises the Gaussian marginal likelihood
directly; explicit matrix inverses for the predictive), and its properties: invariances, the size prior, the drop
from training to validation data, the label-free and regression modes, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, stats
from sklearn.cluster import KMeans

from nclib.scores import REGISTRY, hev, score_zoo
from nclib.scores.hev import hev_terms


def _data(seed: int, n: int, m: int, d: int, k: int = 3, sep: float = 2.0):
    rng = np.random.default_rng(seed)
    centres = sep * rng.normal(size=(k, d))
    y, yv = rng.permutation(np.arange(n) % k), rng.permutation(np.arange(m) % k)
    return rng.normal(size=(n, d)) + centres[y], y, rng.normal(size=(m, d)) + centres[yv], yv


def _naive_terms(x, t, v, tv) -> tuple[float, float]:
    """(E_train, E_val) per column, averaged. The evidence is maximised by Nelder-Mead on the Gaussian marginal
    log N(Q^T t; 0, I/b + Q^T F F^T Q/a) of the centred data in the N - 1 directions Q orthogonal to the constant,
    F the centred features on their leading min(rank, N - 2) principal directions (an SVD)."""
    mu = x.mean(0)
    _, sv, vt = np.linalg.svd(x - mu, full_matrices=False)
    pcs = vt[: min(int((sv > sv[0] * 1e-6).sum()), len(x) - 2)].T  # leading principal directions, at most N - 2
    f, g = (x - mu) @ pcs, (v - mu) @ pcs
    t, tv = np.atleast_2d(t.T).T, np.atleast_2d(tv.T).T
    shift = t.mean(0)
    q = np.linalg.svd(np.ones((1, len(x))))[2][1:].T  # N x (N - 1), orthonormal, orthogonal to the constant
    e_tr, e_val = [], []
    for c in range(t.shape[1]):
        y, yv = t[:, c] - shift[c], tv[:, c] - shift[c]

        def neg(p, y=q.T @ (t[:, c] - shift[c])):
            a, b = np.exp(p)
            cov = np.eye(len(y)) / b + q.T @ f @ f.T @ q / a
            return -stats.multivariate_normal(np.zeros(len(y)), cov).logpdf(y)

        best = optimize.minimize(neg, np.zeros(2), method="Nelder-Mead",
                                 options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 4000})  # fmt: skip
        a, b = np.exp(best.x)
        e_tr.append(-best.fun / (len(x) - 1))
        a_inv = np.linalg.inv(a * np.eye(f.shape[1]) + b * f.T @ f)
        mean = b * a_inv @ f.T @ y
        var = 1 / b + np.einsum("jd,de,je->j", g, a_inv, g)
        e_val.append(stats.norm(g @ mean, np.sqrt(var)).logpdf(yv).mean())
    return float(np.mean(e_tr)), float(np.mean(e_val))


def _one_hot(y, k):
    return np.eye(k)[y]


@pytest.mark.parametrize(("n", "m", "d"), [(40, 15, 5), (12, 9, 30)], ids=["n_gt_d", "d_gt_n"])
def test_matches_naive_marginal_likelihood(n, m, d):
    x, y, v, yv = _data(0, n, m, d)
    e_tr, e_val = _naive_terms(x, _one_hot(y, 3), v, _one_hot(yv, 3))
    terms = hev_terms(x, y, v, yv, 5000)
    assert [terms["e_train"], terms["e_val"]] == pytest.approx([e_tr, e_val], abs=1e-6)
    assert terms["size_penalty"] == pytest.approx(0.5 * math.log(5000) / n, rel=1e-12)
    for n_params in (1, 5000):
        expected = min(e_tr, e_val) - 0.5 * math.log(n_params) / n
        assert hev(x, y, v, yv, n_params) == pytest.approx(expected, abs=1e-6)


def test_only_a_drop_is_charged():
    x, y, v, yv = _data(1, 40, 20, 5)
    e_tr, e_val = _naive_terms(x, _one_hot(y, 3), v, _one_hot(yv, 3))
    shuffled = np.random.default_rng(0).permutation(yv)  # validation labels that the features cannot predict
    e_tr_s, e_val_s = _naive_terms(x, _one_hot(y, 3), v, _one_hot(shuffled, 3))
    assert e_val_s < e_tr_s  # a drop ...
    assert hev(x, y, v, shuffled, 1, size_prior=0) == pytest.approx(e_val_s, abs=1e-6)  # ... is charged
    assert hev(x, y, v, shuffled, 1) < hev(x, y, v, yv, 1)
    # the training data as validation data: in-sample predictions beat the evidence, which is kept
    e_tr_in, e_val_in = _naive_terms(x, _one_hot(y, 3), x, _one_hot(y, 3))
    assert e_val_in > e_tr_in and e_tr_in == pytest.approx(e_tr, abs=1e-9)
    assert hev(x, y, x, y, 1, size_prior=0) == pytest.approx(e_tr, abs=1e-6)


def test_size_prior_is_monotone_and_exact():
    x, y, v, yv = _data(2, 40, 12, 6)
    sizes = [1, 10, 10_000, 25_000_000]
    values = [hev(x, y, v, yv, p) for p in sizes]
    assert all(a > b for a, b in zip(values, values[1:], strict=False))
    assert values[0] - values[2] == pytest.approx(0.5 * math.log(10_000) / 40, rel=1e-12)
    assert hev(x, y, v, yv, 10, size_prior=0) == pytest.approx(hev(x, y, v, yv, 10**6, size_prior=0), abs=1e-15)
    assert hev(x, y, v, yv, 10, size_prior=2.0) < hev(x, y, v, yv, 10)


def test_invariant_to_rotation_scale_shift_and_class_names():
    x, y, v, yv = _data(3, 50, 20, 8)
    base = hev(x, y, v, yv, 100)
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(8, 8)))
    shift = np.random.default_rng(2).normal(size=8) * 10
    assert hev(x @ q, y, v @ q, yv, 100) == pytest.approx(base, rel=1e-9)
    assert hev(7.5 * x, y, 7.5 * v, yv, 100) == pytest.approx(base, rel=1e-9)
    assert hev(x + shift, y, v + shift, yv, 100) == pytest.approx(base, rel=1e-9)
    assert hev(x.astype(np.float32), y, v.astype(np.float32), yv, 100) == pytest.approx(base, rel=1e-5)
    rename = np.array([7, 2, 40])
    assert hev(x, rename[y], v, rename[yv], 100) == pytest.approx(base, rel=1e-12)


def test_better_separated_classes_score_higher():
    close, far = _data(4, 60, 30, 6, sep=0.3), _data(4, 60, 30, 6, sep=3.0)
    assert hev(*far, 10) > hev(*close, 10)


def test_label_free_mode_is_k_means_targets():
    x, _, v, _ = _data(5, 60, 24, 4, sep=4.0)
    km = KMeans(3, n_init=4, random_state=0).fit(x - x.mean(0))  # D = 4 < 64: all principal coordinates, a rotation
    expected = hev(x, km.labels_, v, km.predict(v - x.mean(0)), 50)
    assert hev(x, None, v, None, 50, n_clusters=3) == pytest.approx(expected, rel=1e-12)
    noise = np.random.default_rng(6).normal(size=(84, 4))
    assert hev(x, None, v, None, 50, n_clusters=3) > hev(noise[:60], None, noise[60:], None, 50, n_clusters=3)


def test_regression_mode():
    rng = np.random.default_rng(7)
    x, v, w = rng.normal(size=(50, 5)), rng.normal(size=(20, 5)), rng.normal(size=5)
    t, tv = x @ w + 0.3 * rng.normal(size=50), v @ w + 0.3 * rng.normal(size=20)
    e_tr, e_val = _naive_terms(x, (t - t.mean()) / t.std(ddof=1), v, (tv - t.mean()) / t.std(ddof=1))
    assert hev(x, t, v, tv, 3) == pytest.approx(min(e_tr, e_val) - 0.5 * math.log(3) / 50, abs=1e-6)
    assert hev(x, 1000 * t - 5, v, 1000 * tv - 5, 3) == pytest.approx(hev(x, t, v, tv, 3), rel=1e-9)  # units
    unrelated = rng.normal(size=70)
    assert hev(x, unrelated[:50], v, unrelated[50:], 3) < hev(x, t, v, tv, 3)


def test_target_the_features_do_not_explain():
    """A target orthogonal to the constant and to every centred feature: the evidence is maximised as alpha -> inf
    (no head), by the noise-only model. The standardised target has ||t||^2 = N - 1 = dof, so beta = 1 and
    E_train = (log(dof / ||t||^2) - 1 - log(2 pi)) / 2 = -(1 + log(2 pi)) / 2; E_val is the validation targets'
    standard normal log-density. (Also what a class with one training sample can look like.)"""
    rng = np.random.default_rng(10)
    x, v = rng.normal(size=(30, 4)), rng.normal(size=(12, 4))
    basis = np.linalg.qr(np.column_stack([np.ones(30), x - x.mean(0)]))[0]
    t = rng.normal(size=30)
    t -= basis @ (basis.T @ t)
    tv = rng.normal(size=12)
    terms = hev_terms(x, t, v, tv, 10)
    assert terms["e_train"] == pytest.approx(-(1 + math.log(2 * math.pi)) / 2, abs=1e-9)
    assert terms["e_val"] == pytest.approx(stats.norm.logpdf((tv - t.mean()) / t.std(ddof=1)).mean(), abs=1e-9)


def test_registered_and_scored_over_a_zoo():
    score = REGISTRY["hev"]
    assert score.needs == "train_val" and score.higher_is_better
    x, y, v, yv = _data(8, 30, 12, 5)
    features, held = {"a": x, "b": 2 * x[:, :3]}, ({"a": v, "b": 2 * v[:, :3]}, yv)
    out = score_zoo(features, y, names=["hev"], held_out=held, n_params={"a": 10, "b": 20})
    assert out["hev"] == {"a": hev(x, y, v, yv, 10), "b": hev(2 * x[:, :3], y, 2 * v[:, :3], yv, 20)}
    assert score_zoo(features, y, names=["hev"]) == {"hev": {}}  # no validation data: left out, like LEEP
    assert list(score_zoo(features, y, names=["hev"], held_out=held, n_params={"a": 10})["hev"]) == ["a"]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"v": np.ones((5, 4))}, "dimensions"),
        ({"n_params": 0}, "n_params"),
        ({"n_params": 2.5}, "n_params"),
        ({"n_params": True}, "n_params"),
        ({"size_prior": -1.0}, "size_prior"),
        ({"yv": None}, "both"),
        ({"yv": np.full(12, 9)}, "never occur"),
        ({"yv": np.linspace(0, 1, 12)}, "both be classes"),
        ({"y": np.zeros(30), "yv": np.zeros(12)}, "constant"),
        ({"x": np.ones((2, 5)), "y": np.arange(2)}, "at least 3"),
        ({"y": np.arange(29)}, "one entry per sample"),
        ({"x": np.full((30, 5), np.nan)}, "NaN"),
        ({"x": np.full((30, 5), 0.1)}, "same features"),
        ({"y": np.arange(30) % 3 + 2**32, "yv": np.arange(12) % 3 + 7}, "never occur"),
        ({"n_clusters": 3}, "n_clusters is for labels=None"),
        ({"y": None, "yv": None}, "n_clusters must be"),
        ({"y": None, "yv": None, "n_clusters": 1}, "n_clusters must be"),
    ],
)
def test_bad_input(change, match):
    x, y, v, yv = _data(9, 30, 12, 5)
    args = {"x": x, "y": y, "v": v, "yv": yv, "n_params": 10} | change
    kwargs = {k: args.pop(k) for k in ("size_prior", "n_clusters") if k in args}
    with pytest.raises(ValueError, match=match):
        hev(args["x"], args["y"], args["v"], args["yv"], args["n_params"], **kwargs)
