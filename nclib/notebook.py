"""The setup every notebook of the book shares: one call after its ``parameters`` cell.

    prof, out = setup(profile, overrides, device, figures)

The parameters are those of the cell that papermill fills in (``python -m nclib.book``): a profile name or path,
overrides of its keys, a device that replaces the profile's, and the folder the notebook saves figures and tables in.
"""

from __future__ import annotations

from pathlib import Path

from IPython.display import display

from nclib.config import DRY_RUN, Profile, load_profile

DRY_RUN_NOTICE = (f"Made by the {DRY_RUN} profile: the paper's code path on fixture data with random image weights "
                  "and a few epochs. Its numbers mean nothing; the page shows only that the paper's setup runs.")


def select_profile(profile: str, overrides: dict, device: str | None) -> Profile:
    """The profile a notebook's parameters select: ``profile`` with ``overrides``; ``device``, when given, replaces
    its device."""
    return load_profile(profile, **{**overrides, **({"device": device} if device else {})})


def setup(profile: str, overrides: dict, device: str | None, figures: str) -> tuple[Profile, Path]:
    """The profile the parameters select (:func:`select_profile`) and the folder ``figures``, created if missing.

    On the dry run (profile name ``DRY_RUN``) it also displays ``DRY_RUN_NOTICE`` as a warning box, so that every
    page of that book says its numbers mean nothing.
    """
    prof = select_profile(profile, overrides, device)
    if prof.name == DRY_RUN:
        display({"text/html": f'<div class="admonition warning"><p class="admonition-title">Dry run</p><p>'
                              f"{DRY_RUN_NOTICE}</p></div>",
                 "text/plain": f"Dry run. {DRY_RUN_NOTICE}"}, raw=True)  # fmt: skip
    out = Path(figures)
    out.mkdir(parents=True, exist_ok=True)
    return prof, out
