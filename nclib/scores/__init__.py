"""Transferability scores and their registry.

Every score is a plain function. ``REGISTRY`` records, for each, its citation, its
direction (higher or lower is better) and what it needs, so evaluation and the
notebooks never keep their own list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from nclib.scores.gbc import gbc
from nclib.scores.hev import hev
from nclib.scores.hscore import hscore
from nclib.scores.leep import leep, nce, nleep
from nclib.scores.logme import logme
from nclib.scores.nc import nc
from nclib.scores.ncti import ncti
from nclib.scores.sfda import sfda
from nclib.scores.transrate import transrate

Needs = Literal["features", "source_probs", "source_labels", "zoo", "train_val"]


@dataclass(frozen=True)
class Score:
    """A registered score: ``fn`` called as described by ``needs``.

    needs = "features":      fn(features, labels) -> float
    needs = "source_probs":  fn(source_probs, labels) -> float
    needs = "source_labels": fn(source_labels, labels) -> float
    needs = "zoo":           fn({model: features}, labels) -> {model: float}
    needs = "train_val":     fn(features, labels, val_features, val_labels, n_params) -> float
    """

    name: str
    fn: Callable
    citation: str
    higher_is_better: bool
    needs: Needs
    kwargs: Mapping | None = None  # fixed keyword arguments, e.g. shrinkage=True

    def __call__(self, data, labels, *held_out):
        return self.fn(data, labels, *held_out, **(self.kwargs or {}))


def _entries() -> dict[str, Score]:
    s = [
        Score(
            "nc", nc, "Suresh, Abrol & Thakur, Pitfalls in Measuring Neural Transferability (Eq. 2)", False, "features"
        ),
        Score(
            "nc_demo",
            nc,
            "Suresh, Abrol & Thakur, the authors' public demo of Eq. 2 (github.com/AnshThakur/NC_Scores_Demo)",
            False,
            "features",
            {"variant": "demo"},
        ),
        Score("leep", leep, "Nguyen et al., LEEP, ICML 2020", True, "source_probs"),
        Score("nleep", nleep, "Li et al., Ranking Neural Checkpoints (N-LEEP), CVPR 2021", True, "features"),
        Score(
            "nce", nce, "Tran, Nguyen & Hassner, Transferability and Hardness (NCE), ICCV 2019", True, "source_labels"
        ),
        Score("logme", logme, "You et al., LogME, ICML 2021 / JMLR 2022", True, "features"),
        Score(
            "hscore",
            hscore,
            "Bao et al., An information-theoretic approach to transferability (H-score), ICIP 2019",
            True,
            "features",
        ),
        Score(
            "hscore_shrink",
            hscore,
            "Ibrahim, Ponomareva & Mazumder, Newer is not always better (regularised H-score), ICLR 2023",
            True,
            "features",
            {"shrinkage": True},
        ),
        Score(
            "transrate",
            transrate,
            "Huang et al., Frustratingly easy transferability estimation (TransRate), ICML 2022",
            True,
            "features",
        ),
        Score(
            "gbc",
            gbc,
            "Pandy et al., Transferability estimation using Bhattacharyya class separability (GBC), CVPR 2022",
            True,
            "features",
        ),
        Score("sfda", sfda, "Shao et al., Not all models are equal (SFDA), ECCV 2022", True, "features"),
        Score(
            "ncti",
            ncti,
            "Wang et al., How far pre-trained models are from neural collapse (NCTI), ICCV 2023",
            True,
            "zoo",
        ),
        Score(
            "hev",
            hev,
            "This book: held-out evidence with a size prior, after Suresh, Abrol & Thakur (Section 5.2)",
            True,
            "train_val",
        ),
    ]
    return {score.name: score for score in s}


REGISTRY: dict[str, Score] = _entries()


def score_zoo(
    features: Mapping[str, object],
    labels,
    source_probs: Mapping[str, object] | None = None,
    names: list[str] | None = None,
    held_out: tuple[Mapping[str, object], object] | None = None,
    n_params: Mapping[str, int] | None = None,
) -> dict[str, dict[str, float]]:
    """Every registered score (or those in ``names``) of every model of a zoo.

    ``features`` maps model -> N x D embeddings of the target training data;
    ``source_probs`` maps model -> N x Z source-head softmax outputs, for the scores that
    need them (models without a source head are left out of those scores); ``held_out`` is
    ({model: M x D validation embeddings}, M validation labels) and ``n_params`` maps model -> parameter
    count, for the "train_val" scores (models without both are left out of those scores).
    Returns {score: {model: value}}, ready for ``nclib.evaluate.correlation_table``.
    """
    out: dict[str, dict[str, float]] = {}
    for name in names or list(REGISTRY):
        score = REGISTRY[name]
        if score.needs == "zoo":
            out[name] = score(features, labels)
        elif score.needs == "features":
            out[name] = {model: score(x, labels) for model, x in features.items()}
        elif score.needs == "train_val":
            val, val_labels = held_out or ({}, None)
            params = n_params or {}
            out[name] = {model: score(x, labels, val[model], val_labels, int(params[model]))
                         for model, x in features.items() if model in val and model in params}  # fmt: skip
        else:
            probs = {m: p for m, p in (source_probs or {}).items() if p is not None}
            if score.needs == "source_labels":
                probs = {m: _argmax(p) for m, p in probs.items()}
            out[name] = {model: score(p, labels) for model, p in probs.items()}
    return out


def _argmax(probs):
    return probs.argmax(1)


__all__ = [
    "REGISTRY", "Score", "gbc", "hev", "hscore", "leep", "logme", "nc", "nce", "ncti", "nleep", "sfda", "transrate",
]  # fmt: skip
