"""Speed of every registered score against its naive numpy reference and the algorithmic floor (issue 2, Speed).

For each problem size, in one run: every score of ``nclib.scores.REGISTRY``; the naive numpy version of
the same reference algorithm (``benchmarks/naive.py``); and the floor on this machine, (a) one pass over
the matrix (its float32 column means) and (b) one float32 Gram X^T X plus one D x D symmetric eigh.
It prints ratios (seconds only in a secondary column) and the relative difference to the naive result.

Targets: NC <= 5x one pass; Gram-based scores (LogME, H-score, TransRate, GBC) <= 1.5x the Gram+eigh floor;
every score >= 2x faster than its naive reference with the same result to 1e-6 relative.

Data: ReLU of a rank-32 class-structured signal with decaying scales plus noise (float32, seeded); the
source probabilities for LEEP (and their argmax for NCE) come from a fixed random linear head with 1,000
source classes. NCTI scores a zoo: 3 random projections of the features; its per-model cost is reported.
Timings are the best of 3 runs, or of 1 for runs over 2 s.

    .venv/bin/python benchmarks/bench_scores.py            # 50,000 x 2,048 / 10 classes and 10,000 x 1,280 / 100
    .venv/bin/python benchmarks/bench_scores.py --quick    # small sizes: a smoke run
"""

from __future__ import annotations

import argparse
import gc
import os
import time
from collections.abc import Callable

import numpy as np
import torch

import naive
from nclib.scores import REGISTRY

FULL = [(50_000, 2_048, 10), (10_000, 1_280, 100)]
QUICK = [(4_000, 256, 10), (2_000, 160, 100)]
SOURCE_CLASSES = 1_000
ZOO = 3
SLOW = 2.0  # seconds: a run this long is timed once
GRAM_BASED = ("logme", "hscore", "hscore_shrink", "transrate", "gbc")
# (score, N): naive references left out of the full run, with the reason printed in the output
SKIP_NAIVE = {
    ("nleep", 50_000): "nclib runs the same scikit-learn PCA + GaussianMixture calls (~75 s each here)",
}


def embedding(n: int, d: int, n_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """N x D float32 ReLU features of a rank-32 class-structured signal (decaying scales) plus noise; balanced labels."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % n_classes)
    rank = 32
    centres = 1.5 * rng.standard_normal((n_classes, rank), dtype=np.float32)
    latent = rng.standard_normal((n, rank), dtype=np.float32) + centres[labels]
    mix = rng.standard_normal((rank, d), dtype=np.float32) / np.arange(1, rank + 1, dtype=np.float32)[:, None]
    x = latent @ mix
    x += 0.3
    x += 0.1 * rng.standard_normal((n, d), dtype=np.float32)
    return np.maximum(x, 0, out=x), labels


def source_probs(x: np.ndarray, seed: int = 1) -> np.ndarray:
    """Softmax of a fixed random linear source head with 1,000 classes (float32, N x 1,000)."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((x.shape[1], SOURCE_CLASSES), dtype=np.float32) * np.float32(3 / np.sqrt(x.shape[1]))
    logits = x @ w
    logits -= logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=1, keepdims=True)
    return logits


def zoo(x: np.ndarray, seed: int = 2) -> dict[str, np.ndarray]:
    """ZOO models: the features times different random D x D Gaussian projections."""
    rng = np.random.default_rng(seed)
    d = x.shape[1]
    return {
        f"proj{i}": x @ (rng.standard_normal((d, d), dtype=np.float32) * np.float32((1 + i) / np.sqrt(d)))
        for i in range(ZOO)
    }


def timed(fn: Callable[[], object], repeats: int = 3) -> tuple[object, float]:
    """(result, best wall time of ``repeats`` runs, or of one run if it takes over SLOW seconds)."""
    best, out = float("inf"), None
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
        if best > SLOW:
            break
    return out, best


def floors(x: np.ndarray) -> tuple[float, float]:
    """Seconds for one pass (column means) and for one float32 Gram plus one symmetric eigh, both with torch."""
    t = torch.from_numpy(x)
    _, one_pass = timed(lambda: t.mean(dim=0), repeats=5)
    _, gram_eigh = timed(lambda: torch.linalg.eigh(t.T @ t))
    return one_pass, gram_eigh


def rel_diff(got, ref) -> float:
    """|got - ref| / |ref|; for a zoo, the largest difference over the largest |ref|."""
    if isinstance(ref, dict):
        return max(abs(got[m] - ref[m]) for m in ref) / max(abs(v) for v in ref.values())
    return abs(got - ref) / abs(ref)


def verdict(name: str, per_pass: float, per_floor: float, speedup: float | None, diff: float | None) -> str:
    out = []
    if name == "nc":
        out.append(f"pass<=5 {'ok' if per_pass <= 5 else 'MISS'}")
    if name in GRAM_BASED:
        out.append(f"floor<=1.5 {'ok' if per_floor <= 1.5 else 'MISS'}")
    if speedup is not None:
        out.append(f"naive>=2 {'ok' if speedup >= 2 else 'MISS'}")
        out.append(f"1e-6 {'ok' if diff <= 1e-6 else 'MISS'}")
    return ", ".join(out)


def run(n: int, d: int, n_classes: int, full: bool) -> None:
    x, labels = embedding(n, d, n_classes)
    probs = source_probs(x)
    inputs = {"features": x, "source_probs": probs, "source_labels": probs.argmax(axis=1)}
    one_pass, gram_eigh = floors(x)
    print(f"\n{n:,} x {d:,} float32, {n_classes} classes; floor: one pass {one_pass * 1e3:.1f} ms, "
          f"float32 Gram + eigh {gram_eigh:.2f} s (Gram+eigh = {gram_eigh / one_pass:.0f} x one pass)")
    header = f"{'score':<14}{'/one pass':>10}{'/floor':>8}{'naive/score':>12}{'rel diff':>10}{'score s':>9}{'naive s':>9}"
    print(header + "   targets")
    print("-" * (len(header) + 40))
    skipped = []
    for name, score in REGISTRY.items():
        if score.needs == "zoo":
            inputs["zoo"] = zoo(x)
        data = inputs[score.needs]
        value, seconds = timed(lambda score=score, data=data: score(data, labels))
        reason = SKIP_NAIVE.get((name, n)) if full else None
        if reason is None:
            ref, naive_seconds = timed(lambda name=name, data=data: naive.NAIVE[name](data, labels))
        else:
            skipped.append(f"{name}: {reason}")
        if score.needs == "zoo":  # per-model cost
            seconds /= ZOO
            naive_seconds = naive_seconds / ZOO if reason is None else None
            del inputs["zoo"]
        speedup = None if reason else naive_seconds / seconds
        diff = None if reason else rel_diff(value, ref)
        print(
            f"{name + (' /model' if score.needs == 'zoo' else ''):<14}{seconds / one_pass:>10.1f}"
            f"{seconds / gram_eigh:>8.2f}{'skipped' if reason else f'{speedup:.1f}':>12}"
            f"{'-' if reason else f'{diff:.1e}':>10}{seconds:>9.3f}{'-' if reason else f'{naive_seconds:.3f}':>9}"
            f"   {verdict(name, seconds / one_pass, seconds / gram_eigh, speedup, diff)}"
        )
    for line in skipped:
        print(f"naive reference skipped for {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    print(f"CPU: {os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} threads; "
          f"load average at start {os.getloadavg()[0]:.2f}")
    start = time.perf_counter()
    for n, d, n_classes in QUICK if args.quick else FULL:
        run(n, d, n_classes, full=not args.quick)
    print(f"\nload average at end {os.getloadavg()[0]:.2f}; total {time.perf_counter() - start:.0f} s. "
          "Ratios: score time / floor time; naive/score: naive time / score time; rel diff: |score - naive| / |naive|.")


if __name__ == "__main__":
    main()
