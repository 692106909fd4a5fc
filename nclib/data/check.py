"""Is every dataset a profile needs here? :func:`check` answers for all of them at once, before any work.

The image dataset, each audio source task and the downstream task: a real dataset is looked for in the folders
its loader reads (``images.locate``, ``audio.locate``; file tests only, no audio read, no network), and described
by its loader's own facts (``images.DATASETS``, ``audio.DATASETS``), so the check and the loaders' error messages
say the same; a synthetic task (``mini``) needs its Debian packages (:func:`nclib.data.synth.missing_packages`).
:func:`report` writes the findings as the text of ``python -m nclib.data check PROFILE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from nclib.config import Profile
from nclib.data import audio, images, synth


@dataclass(frozen=True)
class Finding:
    """One dataset a profile needs, whether it is here, and if not, what to put where."""

    role: str  # image, a source task (scenes, music, speech) or downstream
    dataset: str  # the profile's name for it
    title: str
    found: bool
    where: str  # found: the folder that holds it; missing: the folders looked in (synthetic: the packages)
    layout: str  # the files expected there, <root> standing for the folder
    source: str  # how to get it
    download_mb: int | None = None  # its loader downloads it (about this many MB) when it is missing
    fixture: bool = False  # found, and it is nclib's fixture data (nclib.data.fixtures), not the real dataset

    @property
    def ok(self) -> bool:
        """Here, or downloaded by its loader when first needed."""
        return self.found or self.download_mb is not None


def check(profile: Profile) -> list[Finding]:
    """A finding for each dataset ``profile`` needs: its image dataset, each audio source, then the downstream."""
    tasks = [*profile.audio.sources.items(), ("downstream", profile.audio.downstream.dataset)]
    return [_real("image", profile.image.dataset, images, profile.data_root)] + [
        _synthetic(role, name) if name in synth.SYNTH_TASKS else _real(role, name, audio, profile.data_root)
        for role, name in tasks
    ]


def _real(role: str, name: str, module: ModuleType, data_root: Path) -> Finding:
    """The finding for a dataset read from files by a loader of ``module`` (:mod:`images` or :mod:`audio`)."""
    folders, found = module.locate(name, data_root)
    facts = module.DATASETS[name]
    root = found or folders[-1]
    source = facts["source"].replace("<data_root>", str(data_root)).replace("<root>", str(root))
    where = str(found) if found else ", ".join(map(str, folders))
    fixture = found is not None and (found / images.FIXTURE_MARKER).is_file()
    return Finding(role, name, facts["title"], found is not None, where, facts["layout"], source,
                   facts.get("download_mb"), fixture)  # fmt: skip


def _synthetic(role: str, name: str) -> Finding:
    """The finding for a task :mod:`nclib.data.synth` generates: here when its Debian packages are installed."""
    packages, missing = synth.PACKAGES[name], synth.missing_packages(name)
    where = ", ".join(f"{p} {'missing' if p in missing else 'installed'}" for p in packages)
    return Finding(role, name, "synthetic audio", not missing, f"Debian packages {where}",
                   f"generated from the Debian packages {', '.join(packages)}, cached under cache_dir/synth/",
                   f"sudo apt-get install -y {' '.join(missing or packages)}   (or: make system)")  # fmt: skip


def report(profile: Profile, findings: list[Finding]) -> str:
    """The findings as text: a line per dataset, with folder, layout and source under each one not here."""
    lines = [f"Datasets of profile {profile.name} (data_root {profile.data_root}):"]
    for f in findings:
        lines.append(f"  {f.role:<11} {f.dataset:<20} {f.title}: {_status(f)}")
        if not f.found:
            lines.append(f"      looked in: {f.where}")
            layout = [line.strip() for line in f.layout.splitlines()]
            lines += [f"      {'layout:' if i == 0 else '':<10} {line}" for i, line in enumerate(layout)]
            lines.append(f"      get it:    {f.source}")
    n = len(findings)
    missing = [f.dataset for f in findings if not f.ok]
    fetched = [f.dataset for f in findings if f.ok and not f.found]
    if missing:
        summary = f"{len(missing)} of {n} datasets missing: {', '.join(missing)}"
    else:
        summary = f"{n - len(fetched)} of {n} datasets are here" if fetched else f"All {n} datasets are here"
    if fetched:
        summary += f"; {', '.join(fetched)} will be downloaded when first needed"
    if fixtures := [f.dataset for f in findings if f.fixture]:
        summary += (f"; {', '.join(fixtures)} {'is' if len(fixtures) == 1 else 'are'} nclib's fixture data "
                    "(python -m nclib.data fixtures), not the real data: for the dry run only")
    return "\n".join([*lines, summary + "."])


def _status(f: Finding) -> str:
    """``found (where)``, ``missing, will be downloaded (~N MB)`` or ``MISSING``."""
    if f.found:
        return f"found, nclib fixture data ({f.where})" if f.fixture else f"found ({f.where})"
    return f"missing, will be downloaded (~{f.download_mb} MB)" if f.ok else "MISSING"
