"""Bad input at every registered score: each case gives a finite value (documented in the score's docstring) or a
``ValueError`` whose message names the problem -- never NaN, inf or another exception -- and equivalent inputs
(pandas, torch, lists, relabelled classes, upcast dtypes) give the same value.

The tests iterate over ``REGISTRY`` and call each score as its ``needs`` say, so a new score is covered without
editing this file; the few tables below say which scores refuse a degenerate case. Every call also checks the
warnings: none, except the D >= N warnings of LogME and the H-score, which must appear exactly in their regime.
Hypothesis runs derandomized and without a database, so the suite is deterministic.
"""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nclib._checks import FEATURE_RANGE
from nclib.scores import REGISTRY

NAMES = list(REGISTRY)
SETTINGS = settings(deadline=None, derandomize=True, database=None, max_examples=25,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
EXAMPLES = {"nleep": 10, "ncti": 10}  # N-LEEP fits a Gaussian mixture, NCTI needs N, D >= 64: fewer examples
N_PARAMS = 1000  # the parameter count passed to "train_val" scores

# The arrays each kind of score takes; x2 is a second model of the zoo, xv / yv the held-out split.
INPUTS = {"features": ("x", "y"), "source_probs": ("probs", "y"), "source_labels": ("source", "y"),
          "zoo": ("x", "x2", "y"), "train_val": ("x", "y", "xv", "yv")}  # fmt: skip
FEATURES, LABELS = ("x", "x2", "xv"), ("y", "yv", "source")  # float arrays, integer arrays

# D >= N warnings: (regime, message) per score
WIDE = {"logme": (lambda n, d: d >= n, r"^logme: D = \d+ >= N = \d+: .* reduce D with PCA below N, or pass exact=True"),
        "hscore": (lambda n, d: d >= n - 1, r"^hscore: D = \d+ >= N - 1 = \d+: .* use shrinkage=True")}  # fmt: skip
SINGLETON_REFUSED = {"nc", "nc_demo", "gbc", "sfda", "ncti"}  # need >= 2 samples per class
CONSTANT_REFUSED = {"nc": "same mean", "nc_demo": "same mean", "nleep": "same features", "sfda": "singular",
                    "ncti": "singular", "hev": "same features"}  # fmt: skip


def entropy(y: np.ndarray) -> float:
    p = np.unique(y, return_counts=True)[1] / len(y)
    return float(-(p * np.log(p)).sum())


CONSTANT_VALUE = {  # documented values on constant features (probabilities: every row equal; one source label)
    "hscore": lambda y: 0.0, "hscore_shrink": lambda y: 0.0, "transrate": lambda y: 0.0,
    "gbc": lambda y: -len(np.unique(y)) * (len(np.unique(y)) - 1), "leep": lambda y: -entropy(y),
    "nce": lambda y: -entropy(y),
}  # fmt: skip


def needs(name: str) -> str:
    return REGISTRY[name].needs


def make(seed: int, counts: list[int], d: int, sep: float, z: int = 4) -> dict:
    """Gaussian classes (unit noise around centres of scale ``sep``) for every kind of input: features x, a second
    model x2 (another view of the same samples), Z-class source probabilities (a softmax of x) and their argmax,
    and a held-out split xv / yv drawn from the same classes."""
    rng = np.random.default_rng(seed)
    k = len(counts)
    y = rng.permutation(np.repeat(np.arange(k), counts))
    centres = sep * rng.normal(size=(k, d))
    x = rng.normal(size=(len(y), d)) + centres[y]
    logits = x @ rng.normal(size=(d, z))
    probs = np.exp(logits - logits.max(1, keepdims=True))
    yv = rng.permutation(np.arange(max(k, len(y) // 2)) % k)
    return {"x": x, "x2": x @ rng.normal(size=(d, d)) / math.sqrt(d) + rng.normal(size=x.shape), "y": y,
            "probs": probs / probs.sum(1, keepdims=True), "source": logits.argmax(1),
            "xv": rng.normal(size=(len(yv), d)) + centres[yv], "yv": yv}  # fmt: skip


@st.composite
def problems(draw, name: str, min_count: int = 5, wide: bool = False) -> dict:
    """A clean problem sized for the score: N-LEEP needs 5 samples per mixture component; NCTI needs N, D >= 64, and
    its models must differ (with N not well above 64, or separated classes, the LDA posteriors of both models
    saturate to 1 and its normalisation is 0 / 0), so its classes overlap, as much whatever D."""
    zoo = needs(name) == "zoo"
    k = draw(st.integers(2, 3 if zoo else 4))
    counts = [draw(st.integers(60, 68) if zoo else st.integers(min_count, min_count + 4)) for _ in range(k)]
    n = sum(counts)
    d = draw(st.integers(2, 5)) * n if wide else draw(st.integers(64, 70) if zoo else st.integers(2, 8))
    sep = 0.5 * math.sqrt(64 / d) if zoo else draw(st.sampled_from([0.5, 1.0, 3.0]))
    return make(draw(st.integers(0, 2**16)), counts, d, sep, z=d if wide else 4)


def arguments(name: str, a: dict) -> tuple:
    if needs(name) == "zoo":
        return {"a": a["x"], "b": a["x2"]}, a["y"]
    if needs(name) == "train_val":
        return a["x"], a["y"], a["xv"], a["yv"], N_PARAMS
    return tuple(a[k] for k in INPUTS[needs(name)])


def run(name: str, a: dict) -> list[float] | str:
    """The score's value(s) on the arrays ``a`` (one per model for a zoo score) or its ``ValueError``'s message;
    any other exception propagates. Checks that every value is a finite float and that the only warning is the
    score's D >= N warning, raised exactly in its regime."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out = REGISTRY[name](*arguments(name, a))
        except ValueError as exc:
            out = str(exc)
    regime, message = WIDE.get(name, (None, None))
    wide = [w for w in caught if message and re.search(message, str(w.message))]
    assert len(wide) == len(caught), [str(w.message) for w in caught]
    if isinstance(out, str):
        return out
    if regime is not None:
        shape = tuple(getattr(a["x"], "shape", None) or np.shape(a["x"]))  # DataFrame, tensor or list
        assert bool(wide) == regime(*shape), (shape, [str(w.message) for w in caught])
    values = list(out.values()) if isinstance(out, dict) else [out]
    assert all(type(v) is float and math.isfinite(v) for v in values), out
    return values


def value(name: str, a: dict) -> list[float]:
    out = run(name, a)
    assert not isinstance(out, str), out
    return out


def refused(name: str, a: dict, pattern: str) -> None:
    out = run(name, a)
    assert isinstance(out, str), f"{name} returned {out}, expected a ValueError matching {pattern!r}"
    assert re.search(pattern, out), out


def same_outcome(name: str, a: dict, b: dict, rel: float = 0.0) -> None:
    """``a`` and ``b`` give equal values (to ``rel``) or the same ValueError."""
    oa, ob = run(name, a), run(name, b)
    assert oa == (ob if isinstance(ob, str) or rel == 0 else pytest.approx(ob, rel=rel, abs=1e-12))


def check(name: str, strategy, prop) -> None:
    """Run ``prop`` on examples of ``strategy`` under the suite's settings (fewer examples for slow scores)."""
    settings(SETTINGS, max_examples=EXAMPLES.get(name, SETTINGS.max_examples))(given(strategy)(prop))()


def mapped(a: dict, keys, f) -> dict:
    """``a`` with ``f`` applied to the arrays ``keys`` (a score reads only those of its ``needs``)."""
    return a | {k: f(a[k]) for k in keys}


def used(name: str) -> tuple[str, ...]:
    return INPUTS[needs(name)]


@pytest.mark.parametrize("name", NAMES)
def test_clean_input_gives_finite_values(name):
    def prop(a):
        value(name, a)

    check(name, problems(name), prop)


@pytest.mark.parametrize("name", NAMES)
def test_nan_or_inf_is_refused(name):
    """A row of NaN / inf in any float input; NaN in labels (a float array) is refused as non-integer."""

    def prop(case):
        a, key, row, bad = case
        v = a[key].astype(np.float64)
        v[row % len(v)] = bad
        refused(name, a | {key: v}, r"integer|both be classes" if key in LABELS else r"NaN or inf in 1 row")

    check(name, st.tuples(problems(name), st.sampled_from(used(name)), st.integers(0, 10**6),
                          st.sampled_from([np.nan, np.inf, -np.inf])), prop)  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_empty_input_is_refused(name):
    """Every input empty, or one of them."""

    def prop(case):
        a, key = case
        refused(name, mapped(a, [key] if key else list(a), lambda v: v[:0]),
                r"is empty|has 0 (entries|rows)|got shape \(0,\)")  # fmt: skip

    check(name, st.tuples(problems(name), st.sampled_from([None, *used(name)])), prop)


@pytest.mark.parametrize("name", NAMES)
def test_one_class_is_refused(name):
    def prop(case):
        a, code = case
        refused(name, mapped(a, ["y", "yv"], lambda v: np.full_like(v, code)), r"at least 2 classes, got 1")

    check(name, st.tuples(problems(name), st.integers(-50, 50)), prop)


@pytest.mark.parametrize("name", NAMES)
def test_class_with_one_sample(name):
    """Refused by the scores that estimate a per-class spread; a finite value for the others."""

    def prop(case):
        a, i = case
        y = a["y"].copy()
        y[i % len(y)] = y.max() + 1
        if name in SINGLETON_REFUSED:
            refused(name, a | {"y": y}, r"at least 2 samples per class")
        else:
            value(name, a | {"y": y})

    check(name, st.tuples(problems(name, min_count=8), st.integers(0, 10**6)), prop)


@pytest.mark.parametrize("name", NAMES)
def test_d_much_larger_than_n(name):
    """D (or Z source classes) 2-5 x N: finite values; LogME and the H-score warn (checked by ``run``)."""

    def prop(a):
        value(name, a)

    check(name, problems(name, wide=True), prop)


@pytest.mark.parametrize("name", NAMES)
def test_constant_features(name):
    """Every row equal (probabilities: every row the same distribution; one source label): a documented value or
    a refusal naming the degeneracy. All-zero features, which LogME also refuses, included."""

    def prop(case):
        a, zero = case
        b = mapped(a, [*FEATURES, "probs"], lambda v: np.broadcast_to(v[0], v.shape).copy())
        b = mapped(b, FEATURES, np.zeros_like) if zero else b
        b["source"] = np.full_like(a["source"], 3)
        refusal = CONSTANT_REFUSED | ({"logme": "all zero"} if zero else {})
        if name in refusal:
            refused(name, b, refusal[name])
        elif name in CONSTANT_VALUE:
            assert value(name, b) == pytest.approx([CONSTANT_VALUE[name](a["y"])], abs=1e-12)
        else:
            value(name, b)

    check(name, st.tuples(problems(name), st.booleans()), prop)


@pytest.mark.parametrize("name", NAMES)
def test_constant_column(name):
    """A dead unit (one feature constant) or a source class never predicted: a finite value."""

    def prop(case):
        a, j, c = case
        b = dict(a)
        for k in FEATURES:
            b[k] = a[k].copy()
            b[k][:, j % a[k].shape[1]] = c
        probs = a["probs"].copy()
        probs[:, j % probs.shape[1]] = 0
        value(name, b | {"probs": probs / probs.sum(1, keepdims=True)})

    check(name, st.tuples(problems(name), st.integers(0, 100), st.sampled_from([0.0, 1.0, -7.5])), prop)


CASTS = {
    "float16": lambda v: v.astype(np.float16),
    "int8": lambda v: np.clip(np.round(4 * v), -127, 127).astype(np.int8),
    "uint16": lambda v: np.round(100 * (v - v.min())).astype(np.uint16),
    "bool": lambda v: v > 0,
}


@pytest.mark.parametrize("name", NAMES)
def test_low_precision_and_integer_inputs_are_upcast(name):
    """float16 features are scored as float32 and float16 probabilities as float64: the same value as upcasting
    first. Integer, unsigned and boolean features, one-hot integer probabilities and uint8 source labels equal
    their float64 (int64) casts."""

    def prop(case):
        a, kind = case
        low = mapped(a, FEATURES, CASTS[kind])
        up = mapped(low, FEATURES, lambda v: v.astype(np.float32 if kind == "float16" else np.float64))
        if kind == "float16":
            low["probs"] = a["probs"].astype(np.float16)
        else:
            low["probs"], low["source"] = np.eye(a["probs"].shape[1], dtype=np.int32)[a["source"]], a["source"].astype(
                np.uint8)  # fmt: skip
        same_outcome(name, low, up | {"probs": low["probs"].astype(np.float64), "source": a["source"]})

    check(name, st.tuples(problems(name), st.sampled_from(list(CASTS))), prop)


@pytest.mark.parametrize("name", NAMES)
def test_wrong_rank_is_refused(name):
    """1-D or 3-D features and probabilities, 2-D or 3-D labels: refused, naming the expected rank."""

    def prop(case):
        a, key, flat = case
        v = a[key]
        bad = (v[:, 0] if flat else v[None]) if v.ndim == 2 else (v[:, None] if flat else v[None, None])
        refused(name, a | {key: bad}, r"1-D|2-D")

    check(name, st.tuples(problems(name), st.sampled_from(used(name)), st.booleans()), prop)


@pytest.mark.parametrize("name", NAMES)
def test_any_integer_codes_name_the_classes(name):
    """Labels may be any distinct integers (non-contiguous, negative, huge, any integer dtype): the same value as
    codes 0..C-1, exactly when the codes keep the classes' order, to rounding otherwise. Strings and booleans are
    refused with a hint to encode them."""

    def prop(case):
        a, codes, dtype = case
        codes = np.asarray(codes, dtype=np.int64)
        if dtype != np.int64:
            codes = codes % 100 + np.arange(len(codes)) * 100  # distinct, within int16 / uint16
        k = int(a["y"].max()) + 1
        ordered, shuffled = np.sort(codes[:k]).astype(dtype), codes[:k].astype(dtype)
        same_outcome(name, mapped(a, ["y", "yv"], lambda v: ordered[v]), a)
        same_outcome(name, mapped(a, ["y", "yv"], lambda v: shuffled[v]), a, rel=1e-7)
        refused(name, mapped(a, ["y", "yv"], lambda v: np.array(list("abcd"))[v]), r"numeric.*np\.unique")
        refused(name, mapped(a, ["y", "yv"], lambda v: v > 0), r"must be integers")

    codes = st.lists(st.integers(-(10**15), 10**15), min_size=4, max_size=4, unique=True)
    check(name, st.tuples(problems(name), codes, st.sampled_from([np.int64, np.int16, np.uint16])), prop)


def containers(a: dict, kind: str) -> dict:
    """The arrays of ``a`` as pandas objects (labels as nullable Int64, Series with a shuffled index, which
    ``np.asarray`` ignores), torch tensors (contiguous, or column-major and requiring grad), lists or read-only numpy
    arrays (e.g. a memory map: scored without a copy and without torch's warning)."""
    if kind == "pandas":
        rng = np.random.default_rng(0)
        return {k: pd.DataFrame(v) if v.ndim == 2 else
                pd.Series(v, index=rng.permutation(len(v)), dtype="Int64" if k == "y" else None)
                for k, v in a.items()}  # fmt: skip
    if kind == "torch":
        return {k: torch.from_numpy(v) for k, v in a.items()}
    if kind == "torch_strided":
        return {k: torch.from_numpy(np.asfortranarray(v)).requires_grad_(v.dtype == np.float64) for k, v in a.items()}
    if kind == "list":
        return {k: v.tolist() for k, v in a.items()}
    out = {k: v.copy() for k, v in a.items()}
    for v in out.values():
        v.setflags(write=False)
    return out


@pytest.mark.parametrize("name", NAMES)
def test_containers_give_the_numpy_value(name):
    def prop(case):
        a, kind = case
        same_outcome(name, containers(a, kind), a, rel=1e-12)

    kinds = st.sampled_from(["pandas", "torch", "torch_strided", "list", "read_only"])
    check(name, st.tuples(problems(name), kinds), prop)


@pytest.mark.parametrize("name", NAMES)
def test_wrong_length_is_refused(name):
    def prop(case):
        a, key, delta = case
        v = a[key]
        bad = v[:delta] if delta < 0 else np.concatenate([v, v[:delta]])
        refused(name, a | {key: bad}, r"lengths must match|rows but there are|one entry per sample")

    check(name, st.tuples(problems(name), st.sampled_from(used(name)), st.sampled_from([-3, -1, 1, 2])), prop)


@pytest.mark.parametrize("name", [n for n in NAMES if needs(n) == "source_probs"])
def test_probs_off_the_simplex(name):
    """Rows that do not sum to 1, negative entries (logits), a zero row, no columns: refused, naming the problem."""
    cases = {"scaled": "must sum to 1", "logits": "negative", "zero_row": "must sum to 1", "no_columns": "empty"}

    def prop(case):
        a, kind, factor = case
        p = a["probs"]
        bad = {"scaled": p * factor, "logits": np.log(p), "zero_row": np.vstack([np.zeros_like(p[:1]), p[1:]]),
               "no_columns": p[:, :0]}[kind]  # fmt: skip
        refused(name, a | {"probs": bad}, cases[kind])

    check(name, st.tuples(problems(name), st.sampled_from(list(cases)), st.sampled_from([0.5, 0.99, 1.01, 3.0])),
          prop)  # fmt: skip


@pytest.mark.parametrize("name", [n for n in NAMES if "x" in used(n)])
def test_extreme_magnitudes(name):
    """Features scaled by 10^k, float64 or float32: beyond ``FEATURE_RANGE`` refused ("rescale"); within it a finite
    value, or a refusal naming the cause (LogME's reference cut-off on singular values; N-LEEP's mixture, whose fixed
    1e-6 covariance regulariser cannot hold a near-empty component of large features)."""

    def prop(case):
        a, k, single = case
        dtype = np.float32 if single else np.float64
        limit = FEATURE_RANGE[torch.float32 if single else torch.float64]
        b = mapped(a, FEATURES, lambda v: (v * 10.0 ** (k // 2 if single else k)).astype(dtype))
        top = max(float(np.abs(b[key]).max()) for key in FEATURES if key in used(name))
        out = run(name, b)
        if not 1 / limit <= top <= limit:
            assert isinstance(out, str) and "largest magnitude" in out, out
        elif isinstance(out, str):
            assert re.search({"logme": "cut-off 1e-10", "nleep": "ill-defined empirical covariance"}.get(name, "^$"),
                             out), out  # fmt: skip

    edges = st.sampled_from([-45, -31, -30, -26, -24, -13, 12, 24, 26, 30, 31, 45])  # 10^(k // 2) for float32
    check(name, st.tuples(problems(name), st.one_of(edges, st.integers(-45, 45)), st.booleans()), prop)
