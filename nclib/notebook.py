"""The setup every notebook of the book shares: one call after its ``parameters`` cell.

    prof, out = setup(profile, overrides, device, figures)

The parameters are those of the cell that papermill fills in (``python -m nclib.book``): a profile name or path,
overrides of its keys, a device that replaces the profile's, and the folder the notebook saves figures and tables in.
"""

from __future__ import annotations

from pathlib import Path

from nclib.config import Profile, load_profile


def select_profile(profile: str, overrides: dict, device: str | None) -> Profile:
    """The profile a notebook's parameters select: ``profile`` with ``overrides``; ``device``, when given, replaces
    its device."""
    return load_profile(profile, **{**overrides, **({"device": device} if device else {})})


def setup(profile: str, overrides: dict, device: str | None, figures: str) -> tuple[Profile, Path]:
    """The profile the parameters select (:func:`select_profile`) and the folder ``figures``, created if missing."""
    prof = select_profile(profile, overrides, device)
    out = Path(figures)
    out.mkdir(parents=True, exist_ok=True)
    return prof, out
