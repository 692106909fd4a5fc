"""The executed-notebook cache of `make book` (nclib.book.execute_cached): a second run with nothing changed
copies the executed notebook and its saved files back; a change to the notebook, the parameters, nclib's
code or a result library's version executes it again; a broken cached notebook is executed again, with a warning.
Parameters are checked against the notebook's parameters cell before anything runs. ``execute`` is replaced by a
fake that records its calls and writes what a notebook would (an .ipynb and a figure under its ``figures``
parameter)."""

from __future__ import annotations

import errno
import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pandas as pd
import pytest

import nclib.book as book
import nclib.claims
import nclib.pipeline
from nclib import cache

NOTEBOOK = '''# a notebook

```{code-cell} ipython3
:tags: [parameters]

profile = "mini"
overrides = {}
device = None
figures = "figures"
n_boot = 200
```

```{code-cell} ipython3
print(n_boot)
```
'''
ACCEPTED = "['device', 'figures', 'n_boot', 'overrides', 'profile']"


def run_number(path: Path) -> int:
    """The run that wrote the (fake) executed notebook at ``path``."""
    return int(nbformat.read(path, as_version=4).cells[0].source.split()[-1])


@pytest.fixture
def fake(tmp_path, monkeypatch):
    calls = []

    def execute(source, output, parameters=None, kernel=book.KERNEL):
        calls.append(dict(parameters))
        figures = Path(source).parent / parameters["figures"]
        figures.mkdir(parents=True, exist_ok=True)
        (figures / "fig.png").write_text(f"figure {len(calls)}")
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"run {len(calls)}")]), output)
        return Path(output)

    monkeypatch.setattr(book, "execute", execute)
    (tmp_path / "notebooks").mkdir()
    source = tmp_path / "notebooks" / "fig9.md"
    source.write_text(NOTEBOOK)
    return calls, source, tmp_path / "book" / "generated", tmp_path / "cache"


def test_second_run_copies_the_cached_execution_back(fake):
    calls, source, generated, cache = fake
    assert book.execute_cached(source, generated, {"profile": "mini"}, cache) is True
    first = (generated / "fig9.ipynb").read_text()
    (generated / "fig9.ipynb").unlink()
    (generated / "figures" / "fig9" / "fig.png").unlink()
    assert book.execute_cached(source, generated, {"profile": "mini"}, cache) is False
    assert len(calls) == 1
    assert (generated / "fig9.ipynb").read_text() == first
    assert (generated / "figures" / "fig9" / "fig.png").read_text() == "figure 1"
    assert calls[0]["figures"] == "../book/generated/figures/fig9"
    assert sorted(os.listdir(generated)) == ["fig9.ipynb", "figures"]  # no temp file left


def test_a_change_executes_again_and_drops_stale_figures(fake, monkeypatch):
    calls, source, generated, cache = fake
    book.execute_cached(source, generated, {"profile": "mini"}, cache)
    (generated / "figures" / "fig9" / "stale.png").write_text("from an older notebook")
    book.execute_cached(source, generated, {"profile": "mini", "n_boot": 50}, cache)  # parameters changed
    assert len(calls) == 2
    assert not (generated / "figures" / "fig9" / "stale.png").exists()
    source.write_text(NOTEBOOK.replace("# a notebook", "# a notebook, edited"))
    book.execute_cached(source, generated, {"profile": "mini", "n_boot": 50}, cache)
    assert len(calls) == 3
    monkeypatch.setattr(book, "notebook_code", lambda source: "nclib code changed")
    book.execute_cached(source, generated, {"profile": "mini", "n_boot": 50}, cache)
    assert len(calls) == 4
    version = book.importlib.metadata.version
    monkeypatch.setattr(book.importlib.metadata, "version", lambda lib: "0.0" if lib == "matplotlib" else version(lib))
    book.execute_cached(source, generated, {"profile": "mini", "n_boot": 50}, cache)
    assert len(calls) == 5
    assert run_number(generated / "fig9.ipynb") == 5


def test_an_interrupted_execution_leaves_no_cache_entry(fake, monkeypatch):
    calls, source, generated, cache = fake

    def broken(source, output, parameters=None, kernel=book.KERNEL):
        raise RuntimeError("kernel died")

    monkeypatch.setattr(book, "execute", broken)
    with pytest.raises(RuntimeError, match="kernel died"):
        book.execute_cached(source, generated, {"profile": "mini"}, cache)
    assert not list(cache.glob("book/fig9-*"))
    assert calls == []


@pytest.mark.parametrize("damage", ["truncate", "flip", "not a notebook"])
def test_a_broken_cached_notebook_is_executed_again_with_a_warning(fake, damage):
    calls, source, generated, cache = fake
    book.execute_cached(source, generated, {"profile": "mini"}, cache)
    (cached,) = cache.glob("book/fig9-*/fig9.ipynb")
    data = bytearray(cached.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[data.index(b'"cells"')] ^= 0xFF  # the opening quote: no longer UTF-8
    else:
        data = bytearray(b'{"cells": [], "metadata": {}}')  # valid JSON, but no nbformat version
    cached.write_bytes(bytes(data))
    (generated / "fig9.ipynb").unlink()
    with pytest.warns(UserWarning, match=rf"broken executed notebook {re.escape(str(cached))} .*recomputing"):
        assert book.execute_cached(source, generated, {"profile": "mini"}, cache) is True
    assert len(calls) == 2 and run_number(generated / "fig9.ipynb") == 2
    assert [p.name for p in (cache / "book").iterdir()] == [cached.parent.name]  # replaced, no temp folder
    assert run_number(cached) == 2
    assert book.execute_cached(source, generated, {"profile": "mini"}, cache) is False  # and trusted again
    assert len(calls) == 2


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"n_bot": 5}, rf"unknown parameter 'n_bot' \(value 5\) for notebook .*fig9\.md; its parameters cell defines "
                       rf"{re.escape(ACCEPTED)}; did you mean 'n_boot'\?"),
        ({"n_boot": "200"}, r"parameter 'n_boot' of notebook .*fig9\.md must be int \(its default is 200\), got '200'"),
        ({"n_boot": True}, r"parameter 'n_boot' .* must be int .*got True"),
        ({"overrides": "train__epochs=3"}, r"parameter 'overrides' .* must be dict"),
        ({"profile": "mnii"}, r"parameters of notebook .*fig9\.md: unknown profile 'mnii'.*did you mean 'mini'\?"),
        ({"overrides": {"train": {"epoch": 3}}}, r"unknown profile key 'train\.epoch' \(value 3\).*'epochs'"),
        ({"device": "tpu"}, r"device must be 'cpu' or 'cuda\[:N\]', got 'tpu'"),
        ({"figures": "elsewhere"}, r"parameter 'figures' \(value 'elsewhere'\) of notebook .*fig9\.md is set here, to "
                                   r".*book/generated/figures/fig9: leave it out"),
    ],
)
def test_bad_parameters_are_refused_before_anything_runs(fake, parameters, message):
    calls, source, generated, cache = fake
    with pytest.raises(ValueError, match=message):
        book.execute_cached(source, generated, parameters, cache)
    assert calls == [] and not cache.exists()


def test_a_default_of_none_takes_any_type_and_an_int_serves_for_a_float(fake, tmp_path):
    calls, source, generated, cache = fake
    source.write_text(NOTEBOOK.replace("n_boot = 200", "level = 0.95"))
    book.execute_cached(source, generated, {"device": "cpu", "level": 1}, cache)
    with pytest.raises(ValueError, match="must be float"):
        book.execute_cached(source, generated, {"level": "0.9"}, cache)
    assert len(calls) == 1
    bare = tmp_path / "notebooks" / "bare.md"
    bare.write_text("# no parameters cell\n")
    with pytest.raises(ValueError, match="unknown parameter 'profile'.*it has no parameters cell"):
        book.execute_cached(bare, generated, {"profile": "mini"}, cache)


def test_execute_checks_parameters_before_papermill(tmp_path, monkeypatch):
    def papermill(*_, **__):
        raise AssertionError("papermill ran")

    monkeypatch.setattr(book.papermill, "execute_notebook", papermill)
    source = Path(book.__file__).parents[1] / "notebooks" / "fig2_image_zoo.md"
    message = (r"unknown parameter 'n_bot' \(value 3\) for notebook .*fig2_image_zoo\.md; its parameters cell defines "
               r"\['device', 'figures', 'overrides', 'profile'\]")
    with pytest.raises(ValueError, match=message):
        book.execute(source, tmp_path / "out.ipynb", {"profile": "mini", "n_bot": 3})
    assert not (tmp_path / "out.ipynb").exists()


def test_an_unwritable_cache_is_named_and_left_clean(fake, monkeypatch):
    calls, source, generated, cache = fake
    cache.write_text("a file where the cache folder should be")
    with pytest.raises(OSError, match=r"cannot write .*fig9-.*set NCLIB_CACHE to a writable folder with free space"):
        book.execute_cached(source, generated, {"profile": "mini"}, cache)
    cache.unlink()
    real_copytree = shutil.copytree

    def full(src, dst, **kwargs):
        real_copytree(src, dst, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copytree", full)
    with pytest.raises(OSError, match=r"cannot write .*fig9-\w+ \(No space left on device\)") as info:
        book.execute_cached(source, generated, {"profile": "mini"}, cache)
    assert info.value.errno == errno.ENOSPC
    assert os.listdir(cache / "book") == []  # no entry, no temp folder
    monkeypatch.setattr(shutil, "copytree", real_copytree)
    assert book.execute_cached(source, generated, {"profile": "mini"}, cache) is True  # with room, it is cached
    assert book.execute_cached(source, generated, {"profile": "mini"}, cache) is False


@pytest.fixture
def two_notebooks(tmp_path, monkeypatch):
    """Two notebooks, one with the parameter ``n_boot``; ``main`` with the pipeline, the claims ledger (which would
    compute the mini profile's results) and the pool replaced."""
    (tmp_path / "a.md").write_text(NOTEBOOK)
    (tmp_path / "b.md").write_text(NOTEBOOK.replace("n_boot = 200\n", "").replace("print(n_boot)", "print(1)"))
    built, ran = [], []
    monkeypatch.setattr(nclib.pipeline, "build", built.append)
    monkeypatch.setattr(nclib.claims, "ledger", lambda p: pd.DataFrame({"claim": ["c"], "profile": [p.name]}))
    monkeypatch.chdir(tmp_path)  # main writes book/generated/claims.csv and reads _config.yml from the working folder
    shutil.copy(Path(__file__).resolve().parents[1] / "_config.yml", tmp_path / "_config.yml")
    monkeypatch.setattr(book, "_run", lambda source, parameters: ran.append((source.name, parameters)) or "ran")
    monkeypatch.setattr(book, "ProcessPoolExecutor", lambda jobs, mp_context: ThreadPoolExecutor(jobs))
    monkeypatch.delenv("NCLIB_DEVICE", raising=False)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):  # main sets them where unset
        monkeypatch.setenv(var, os.environ.get(var, "1"))
    return tmp_path, built, ran


def test_main_gives_each_notebook_the_keys_it_defines(two_notebooks):
    root, built, ran = two_notebooks
    (root / "p.yaml").write_text("profile: mini\nn_boot: 50\n")
    book.main([str(root / "p.yaml"), str(root / "a.md"), str(root / "b.md")])
    assert len(built) == 1 and built[0].name == "mini"
    assert sorted(ran) == [("a.md", {"profile": "mini", "n_boot": 50}), ("b.md", {"profile": "mini"})]
    assert (root / "book" / "generated" / "claims.csv").read_text() == "claim,profile\nc,mini\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("profile: mini\nn_bot: 50\n", r"unknown key 'n_bot' \(value 50\) in .*p\.yaml; for these notebooks it may "
                                       r"set \['device', 'n_boot', 'overrides', 'profile'\]; did you mean 'n_boot'\?"),
        ("figures: figs\n", r"unknown key 'figures' \(value 'figs'\) in .*p\.yaml; for these notebooks it may set "),
        ("profile: mini\nn_boot: fifty\n", r"parameter 'n_boot' of notebook .*a\.md must be int"),
        ("profile: mnii\n", r"unknown profile 'mnii'"),
        ("profile: mini\noverrides: {image: {zoo: [lite0, lite3]}}\n", r"unknown image model 'lite3'"),
        ("- profile\n", r"params file .*p\.yaml must be a YAML mapping"),
        ("profile: [mini\n", r"params file .*p\.yaml is not valid YAML"),
    ],
)
def test_main_refuses_a_bad_params_file_before_the_pipeline(two_notebooks, text, message):
    root, built, ran = two_notebooks
    (root / "p.yaml").write_text(text)
    with pytest.raises(ValueError, match=message):
        book.main([str(root / "p.yaml"), str(root / "a.md"), str(root / "b.md")])
    assert built == [] and ran == []


def test_notebook_code_is_the_digest_of_the_modules_it_imports(tmp_path):
    notebook = tmp_path / "nb.md"
    notebook.write_text("# imports\n\n```{code-cell} ipython3\n%pip install nclib\nfrom nclib import plots\n"
                        "from nclib.evaluate import kendall\n```\n\n```{code-cell} ipython3\nimport numpy\n```\n")
    assert book.notebook_code(notebook) == cache.code_digest("nclib", "nclib.evaluate", "nclib.plots")
    assert book.notebook_code(notebook) != cache.code_digest("nclib.evaluate")


def test_shared_cores_gives_each_kernel_its_share_and_restores_the_environment(monkeypatch):
    cores = os.cpu_count() or 1
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "7")  # the caller's choice stands
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "")  # set, even if empty: stands too
    with book.shared_cores(2):
        assert os.environ["OMP_NUM_THREADS"] == str(max(1, cores // 2))
        assert os.environ["MKL_NUM_THREADS"] == "7" and os.environ["OPENBLAS_NUM_THREADS"] == ""
    with pytest.raises(RuntimeError), book.shared_cores(cores + 1):
        assert os.environ["OMP_NUM_THREADS"] == "1"  # never 0 threads
        raise RuntimeError("a failed notebook")
    assert "OMP_NUM_THREADS" not in os.environ
    assert os.environ["MKL_NUM_THREADS"] == "7" and os.environ["OPENBLAS_NUM_THREADS"] == ""
