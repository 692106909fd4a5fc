"""Datasets of both profiles, and the safety helper every loader uses.

Nothing from outside is trusted blindly: archives are checked member by member before anything
is extracted (:func:`safe_extract`), and downloaded or packaged files are checked against known
digests (:func:`nclib.cache.file_digest`).
"""

from __future__ import annotations

import os
import posixpath
import tarfile
import zipfile
from pathlib import Path


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Extract a tar (any compression) or zip archive into ``dest``; return ``dest``.

    Every member is checked before anything is written: absolute paths, ``..`` escapes, links
    pointing outside ``dest`` and device or FIFO files raise ``ValueError`` and nothing is extracted.
    """
    archive, dest = Path(archive), Path(dest)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                _check(archive, name, f"member {name!r}")
            dest.mkdir(parents=True, exist_ok=True)
            z.extractall(dest)
        return dest
    if not tarfile.is_tarfile(archive):
        raise ValueError(f"{archive} is neither a tar nor a zip archive")
    with tarfile.open(archive) as t:
        for m in t.getmembers():
            _check(archive, m.name, f"member {m.name!r}")
            if m.issym():
                _check(archive, posixpath.join(posixpath.dirname(m.name), m.linkname), f"symlink {m.name!r}")
            elif m.islnk():
                _check(archive, m.linkname, f"hard link {m.name!r}")
            elif not (m.isfile() or m.isdir()):
                raise ValueError(f"refusing to extract {archive}: member {m.name!r} is a device or FIFO")
        dest.mkdir(parents=True, exist_ok=True)
        t.extractall(dest, filter="data")  # the standard library's own checks, as a second line of defence
    return dest


def _check(archive: Path, name: str, what: str) -> None:
    """Raise ``ValueError`` if archive path ``name`` is absolute or climbs out of the extraction folder."""
    path = posixpath.normpath(name.replace("\\", "/"))
    if path.startswith("/") or path == ".." or path.startswith("../") or ":" in path.split("/")[0]:
        raise ValueError(f"refusing to extract {archive}: {what} points outside the target folder ({name!r})")
