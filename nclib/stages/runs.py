"""Plain-data run configs for the grids of :mod:`nclib.grid` (pre-training and transfer runs).

A config holds a base profile name, ``overrides`` that carry every setting the run depends on (so a worker rebuilds
exactly the same profile with :func:`nclib.config.load_profile`), and the run's own fields. Paths are left out:
they do not change results, so a cache can move; the worker gets them as keyword arguments.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from nclib import grid
from nclib.config import Profile, available_profiles, load_profile


def run_config(profile: Profile, sections: Sequence[str], drop: Sequence[str] = (), **fields: Any) -> dict[str, Any]:
    """Config of one run: base profile name, ``overrides`` with every setting of ``sections`` except the dotted
    keys in ``drop`` (settings the run does not depend on), and ``fields``."""
    overrides: dict[str, Any] = {"name": profile.name, "seed": profile.seed, "device": profile.device}
    overrides |= {s: dataclasses.asdict(getattr(profile, s)) for s in sections}
    for key in drop:
        *parents, last = key.split(".")
        section: dict[str, Any] = overrides
        for parent in parents:
            section = section[parent]
        section.pop(last)
    base = profile.name if profile.name in available_profiles() else "mini"
    return {"profile": base, "overrides": overrides, **fields}


def load(config: dict[str, Any], data_root: str | None, cache_dir: str | None) -> Profile:
    """The profile a run config describes, with the worker's paths. A track section whose zoo was dropped gets the
    run's ``model`` as its zoo (the zoo is not a setting of the run, but the profile must name a valid one)."""
    paths = {k: v for k, v in (("data_root", data_root), ("cache_dir", cache_dir)) if v is not None}
    overrides = {k: v | {"zoo": [config["model"]]} if k in ("image", "audio") and "zoo" not in v else v
                 for k, v in config["overrides"].items()}  # fmt: skip
    return load_profile(config["profile"], **overrides, **paths)


def runner(fn: Callable, profile: Profile) -> functools.partial:
    """``fn`` with the profile's paths bound: picklable, so it runs in a spawned process or on Dask."""
    return functools.partial(fn, data_root=str(profile.data_root), cache_dir=str(profile.cache_dir))


def missing(folder: Path, configs: Iterable[dict]) -> bool:
    """Whether any of ``configs`` has no result in ``folder`` yet."""
    return any(not (folder / f"{grid.key(c)}.json").exists() for c in configs)
