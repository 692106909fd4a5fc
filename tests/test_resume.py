"""Kill and resume: the mini pipeline's ``build`` SIGKILLed again and again, in every stage, then let finish.

The killed-and-resumed build must end with exactly the numbers of an uninterrupted build (in its own fresh cache),
keep every file that was finished when a kill landed (same inode, mtime and bytes: finished work is not redone)
and leave no temp file. Kills are placed by observed progress -- the number of finished files in a cache folder --
never by sleeping, so they land in the same stages whatever the machine's load.

Each build is a fresh process forked from a server that has imported nclib (importing torch, timm and scipy takes
~6 s here, longer than most stages); it runs with one torch thread and its grids in one thread, as
tests/test_pipeline.py does. The uninterrupted build runs alongside, from its own server.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nclib
from nclib.data import synth

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        any(synth.missing_packages(t) for t in ("synth_scenes", "synth_music", "synth_speech", "synth_voice_quality")),
        reason="the mini audio needs the Debian packages espeak-ng, fluidsynth, fluid-soundfont-gm, sonic-pi-samples",
    ),
]

OVERRIDES = {  # tests/test_pipeline.py's reduced profile: the whole pipeline in seconds
    "image": {"split": {"train": 7, "val": 3, "test": 3}, "zoo": ["digits_cnn", "lite0_block4"], "input_size": 32},
    "audio": {"downstream": {"n_positive": 66, "n_negative": 30}, "pretrain": {"epochs": 2, "checkpoints": [1]},
              "synth_per_class": 8, "zoo": ["dcase_asc", "cnn_music", "cnn_speech", "crnn_music", "crnn_speech",
                                            "cnn_music@1"]},
    "train": {"epochs": 2, "finetune_epochs": 2, "dynamics_epochs": 3, "seeds": [0], "finetune_train": 3},
    "collapse": {"per_class": 4, "epochs": 2},
}
STAGES = [("image", "linear"), ("image", "finetune"), ("audio", "linear"), ("audio", "finetune")]
# Kill as soon as folder/ holds n finished files (and the build has finished one itself). In build order: the source
# audio; pre-training right after a weights file (before its JSON); embeddings
# (during the downstream audio, then the audio models); the image grids; image scores; the audio grids.
KILLS = [("synth", 1), ("pretrain", 1), ("pretrain", 7), ("embeddings", 2), ("embeddings", 10), ("transfer", 2),
         ("scores", 3), ("transfer", 8)]  # fmt: skip
TIMEOUT_S = 600

SERVER = textwrap.dedent(
    """
    import json, os, sys, traceback
    from concurrent.futures import ThreadPoolExecutor

    import pandas as pd
    import torch

    torch.set_num_threads(1)
    import nclib
    from nclib import pipeline
    from nclib.config import load_profile

    cache_dir, overrides, out, code = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
    assert nclib.__file__.startswith(code), nclib.__file__


    def build():
        profile = load_profile("mini", cache_dir=cache_dir, **overrides)
        with ThreadPoolExecutor(1) as executor:
            pipeline.build(profile, executor)
        tables = {"table1": pipeline.audio_zoo(profile), "dynamics": pipeline.training_dynamics(profile),
                  "trajectory": pipeline.collapse_trajectory(profile)["diagnostics"]}
        for track, strategy in STAGES:
            tables[track, strategy] = pipeline.transfer_results(profile, track, strategy).drop(columns="wall_time_s")
        for track in ("image", "audio"):
            tables[track, "scores"] = pipeline.zoo_scores(profile, track)
        pd.to_pickle(tables, out)


    while sys.stdin.readline():  # one line: one build, in a forked process of its own session; replies pid, status
        pid = os.fork()
        if pid == 0:
            os.setsid()
            os.dup2(2, 1)
            try:
                build()
                status = 0
            except BaseException:
                traceback.print_exc()
                status = 1
            sys.stderr.flush()
            os._exit(status)
        print(pid, flush=True)
        print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
    """
).replace("STAGES", repr(STAGES))


def _is_temp(name: str) -> bool:
    # nclib.cache writes through .<name>.<random>.tmp; a run in progress keeps <key>.ckpt.pt until it finishes
    return name.endswith((".tmp", ".ckpt.pt"))


def _walk(root: Path) -> list[Path]:
    return [Path(d, f) for d, _, files in os.walk(root) for f in files]


def _finished(root: Path) -> dict[str, os.stat_result]:
    """Relative path -> stat of every finished (non-temp) file under ``root``."""
    return {p.relative_to(root).as_posix(): p.stat() for p in _walk(root) if not _is_temp(p.name)}


def _snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    """Relative path -> (inode, mtime_ns, sha256) of every finished file."""
    return {rel: (st.st_ino, st.st_mtime_ns, hashlib.sha256((root / rel).read_bytes()).hexdigest())
            for rel, st in _finished(root).items()}  # fmt: skip


def _count(root: Path, folder: str | None = None) -> int:
    return sum(folder is None or rel.split("/")[0] == folder for rel in _finished(root))


class Builds:
    """A server that forks one ``pipeline.build`` of the reduced mini profile per :meth:`start` into ``cache``
    (a session of its own, so a kill takes its audio-synthesis workers too); the tables it ends with go to ``out``."""

    def __init__(self, tmp: Path, name: str, code: Path) -> None:
        self.cache, self.out, self.log = tmp / name, tmp / f"{name}.pkl", tmp / f"{name}.log"
        cmd = [sys.executable, "-c", SERVER, str(self.cache), json.dumps(OVERRIDES), str(self.out), str(code)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(code), *sys.path]), "OMP_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1", "TQDM_DISABLE": "1"}  # fmt: skip
        with open(self.log, "w") as log:
            self.server = subprocess.Popen(cmd, env=env, cwd=code, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                           stderr=log, bufsize=0, start_new_session=True)  # fmt: skip
        self.pid: int | None = None

    def _reply(self, deadline: float) -> int:
        ready = select.select([self.server.stdout], [], [], max(0.0, deadline - time.monotonic()))[0]
        line = self.server.stdout.readline() if ready else b""
        assert line, f"no reply from the build server:\n{self.log.read_text()[-3000:]}"
        return int(line)

    def start(self, deadline: float) -> None:
        self.server.stdin.write(b"build\n")
        self.pid = self._reply(deadline)

    def ended(self) -> bool:
        return bool(select.select([self.server.stdout], [], [], 0)[0])

    def kill_when(self, folder: str, n: int, deadline: float) -> None:
        """SIGKILL the build as soon as ``folder`` holds ``n`` finished files and it has finished a file itself."""
        before = _count(self.cache)
        while not (_count(self.cache, folder) >= n and _count(self.cache) > before):
            assert not self.ended(), f"the build ended before {folder}/ held {n} files:\n{self.log.read_text()}"
            assert time.monotonic() < deadline, f"no progress to {folder}/ >= {n} files"
            time.sleep(0.005)
        os.killpg(self.pid, signal.SIGKILL)
        status, self.pid = self._reply(deadline), None
        assert status == -signal.SIGKILL, self.log.read_text()[-3000:]

    def wait(self, deadline: float) -> dict:
        status, self.pid = self._reply(deadline), None
        assert status == 0, self.log.read_text()[-3000:]
        return pd.read_pickle(self.out)

    def close(self) -> None:
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
        self.server.stdin.close()
        try:
            self.server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.server.pid, signal.SIGKILL)
            self.server.wait()


def _stage(reference_order: list[str], done: dict) -> str:
    """The stage a kill interrupted: the folder of the first file, in the uninterrupted build's order, not done."""
    return next((rel.split("/")[0] for rel in reference_order if rel not in done), "end")


def test_killed_build_resumes_to_the_uninterrupted_numbers(tmp_path):
    deadline = time.monotonic() + TIMEOUT_S
    code = tmp_path / "code"  # both builds run this copy: the cache keys hold the code, which may be edited meanwhile
    shutil.copytree(Path(nclib.__file__).parent, code / "nclib", ignore=shutil.ignore_patterns("__pycache__"))
    reference, resumed = Builds(tmp_path, "reference", code), Builds(tmp_path, "resumed", code)
    snapshots, temps_at_kills = [], []
    try:
        reference.start(deadline)
        for folder, n in KILLS:
            resumed.start(deadline)
            resumed.kill_when(folder, n, deadline)
            snapshots.append(_snapshot(resumed.cache))
            temps_at_kills.append(sorted(p.name for p in _walk(resumed.cache) if _is_temp(p.name)))
        resumed.start(deadline)  # the last start runs to the end
        got, expected = resumed.wait(deadline), reference.wait(deadline)
    finally:
        reference.close()
        resumed.close()

    # (a) the same numbers: every table; the same cache entries, with the same arrays
    assert set(got) == set(expected)
    for k, table in expected.items():
        pd.testing.assert_frame_equal(got[k], table, check_exact=True, obj=str(k))
    ref_files = _finished(reference.cache)
    assert set(_finished(resumed.cache)) == set(ref_files)
    for rel in ref_files:
        if rel.endswith(".npz"):
            with np.load(reference.cache / rel) as a, np.load(resumed.cache / rel) as b:
                assert a.files == b.files and all(np.array_equal(a[f], b[f]) for f in a.files), rel

    # (b) work finished before a kill is not redone: its files are untouched
    order = sorted(ref_files, key=lambda rel: ref_files[rel].st_mtime_ns)
    stages = [_stage(order, snap) for snap in snapshots]
    now = _snapshot(resumed.cache)
    for (folder, n), stage, snap in zip(KILLS, stages, snapshots, strict=True):
        rewritten = sorted(rel for rel, stat in snap.items() if now[rel] != stat)
        assert not rewritten, f"kill at {folder}/ >= {n} (during {stage}): finished files rewritten: {rewritten}"

    # (c) no temp file survives the resumed build; and the kills landed in every stage
    assert not [p for p in _walk(resumed.cache) if _is_temp(p.name)], f"temp files at the kills: {temps_at_kills}"
    landed = list(zip(KILLS, stages, strict=True))
    assert {"synth", "pretrain", "embeddings", "transfer", "scores"} <= set(stages), landed
