"""Images/s of the paper's six image networks on this machine, and the hours the `paper` profile's stages take at them.

For every network of ``nclib.models.image.PAPER_ZOO`` (random weights: the ImageNet ones cannot be downloaded
offline, and weights do not change the speed), at 32 px and at the network's own input size (224; Xception 299),
on each device:

- embed: ``nclib.features.extract`` of a batch of 64 uint8 32 px images that ``to_model_input`` resizes on the device,
  as the embeddings stage does (eval, inference mode, channels-last; float16 autocast on CUDA);
- train: one fine-tuning step on 32 such images as ``nclib.train`` takes it (train mode, channels-last, bfloat16
  autocast on CUDA, cross-entropy, backward, Adam step);
- linear: ``nclib.train.train_linear`` on 4,000 embeddings of the network's width with 1,000 validation ones (the
  paper's 4:1 ratio of training to validation images), in training images per second of a whole epoch.

Each rate is the median over timed batches (epochs for linear) after warm-up ones, fewer at native size, per
wall-clock second and, on CPU, per CPU-second of this process: other processes' load lowers the first, hardly the
second (with ``--threads 1`` it is the rate of one core of its own). The hours of the `paper` profile
(``nclib/profiles/paper.yaml``: its split sizes, seeds and epochs, CIFAR-10 at 32 px) follow from the 32 px rates,
those of `paper-native` (every network at its own input size) from the native-size ones: embeddings of every
image of the three splits; linear heads; and fine-tuning, each epoch a training pass plus a validation pass at the
embed rate (the audio track is left out). Results go to stdout as
Markdown and to ``benchmarks/results/throughput-<host>-<date>.json``, with the load average before and after.

    .venv/bin/python benchmarks/bench_throughput.py              # CPU, and CUDA when available (~3 min, 2 idle cores)
    .venv/bin/python benchmarks/bench_throughput.py --threads 1  # a busy machine: no threads spinning on each other
    .venv/bin/python benchmarks/bench_throughput.py --device cuda --batches 20 --native-batches 10
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nclib.config import load_profile
from nclib.data.images import to_model_input
from nclib.features import extract
from nclib.models.image import PAPER_ZOO, build_image
from nclib.train import embedding_dim, replace_head, train_linear

N_CLASSES = 10  # CIFAR-10, the paper's image target task
LINEAR_TRAIN, LINEAR_VAL = 4_000, 1_000


def median_rate(step: Callable[[], int], device: torch.device, warmup: int, timed: int) -> tuple[float, float | None]:
    """Median images per wall-clock second of ``step`` (which returns how many images it processed) over ``timed``
    calls after ``warmup`` untimed ones, and, on CPU, the median images per CPU-second of this process (all its
    threads): a rate that other processes' load does not lower, as long as they leave it the memory bandwidth."""
    for _ in range(warmup):
        step()
    wall, cpu = [], []
    for _ in range(timed):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start, start_cpu = time.perf_counter(), time.process_time()
        n = step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        wall.append(n / (time.perf_counter() - start))
        cpu.append(n / max(time.process_time() - start_cpu, 1e-9))
    return statistics.median(wall), statistics.median(cpu) if device.type == "cpu" else None


def network_rates(name: str, size: int | None, device: torch.device, args: argparse.Namespace) -> dict[str, Any]:
    """Embed and train images/s of network ``name`` at ``size`` px (``None``: its own input size)."""
    model, prep = build_image(name, pretrained=False)
    size = size or prep["input_size"]
    transform = functools.partial(to_model_input, size=size, mean=prep["mean"], std=prep["std"])
    native = size == prep["input_size"]
    warmup, timed = (1, args.native_batches) if native else (2, args.batches)
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(0, 256, (args.embed_batch, 32, 32, 3), dtype=np.uint8))
    labels = torch.from_numpy(rng.integers(0, N_CLASSES, args.train_batch)).to(device)

    def embed() -> int:
        extract(model, images, batch_size=args.embed_batch, device=device, transform=transform)
        return len(images)

    embed_rate, embed_cpu = median_rate(embed, device, warmup, timed)
    replace_head(model, N_CLASSES, seed=0)
    model.to(device).train().to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    batch = images[: args.train_batch].to(device)

    def train() -> int:
        x = transform(batch).contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return len(batch)

    train_rate, train_cpu = median_rate(train, device, warmup, timed)
    row = {"model": name, "size": size, "native": native, "embedding_dim": embedding_dim(model), "warmup": warmup,
           "timed": timed, "embed_per_s": embed_rate, "train_per_s": train_rate}  # fmt: skip
    if device.type == "cpu":
        row |= {"embed_per_cpu_s": embed_cpu, "train_per_cpu_s": train_cpu}
    return row


def linear_rates(dim: int, device: torch.device, epochs: int) -> dict[str, float]:
    """Training images/s of one-epoch ``train_linear`` runs (each with its validation pass) on ``dim``-wide
    embeddings, ``epochs`` of them timed after one warm-up."""
    rng = np.random.default_rng(0)
    train, val = ((rng.normal(size=(n, dim)).astype(np.float32), rng.integers(0, N_CLASSES, n))
                  for n in (LINEAR_TRAIN, LINEAR_VAL))  # fmt: skip

    def epoch() -> int:
        train_linear(train, val, n_classes=N_CLASSES, epochs=1, lr=1e-4, batch_size=32, seed=0, device=device)
        return LINEAR_TRAIN

    wall, cpu = median_rate(epoch, device, 1, epochs)
    return {"linear_per_s": wall} | ({"linear_per_cpu_s": cpu} if cpu is not None else {})


def paper_hours(rows: list[dict[str, Any]], per: str = "s", native: bool = False) -> dict[str, float]:
    """Hours of each image stage of the `paper` profile (32 px; ``native=True``: `paper-native`, each network at
    its own size) at the rates of ``rows``: wall-clock hours from the rates per second (``per="s"``), core-hours
    from those per CPU-second (``"cpu_s"``). Linear heads train on embeddings, whose width, not the input size,
    sets their speed: both use the rate measured beside the native-size row."""
    p = load_profile("paper")
    n = {s: N_CLASSES * k for s, k in p.image.split.items()}
    seeds = len(p.train.seeds)
    linear_rate = {r["model"]: r[f"linear_per_{per}"] for r in rows if f"linear_per_{per}" in r}
    chosen = [r for r in rows if r["native"] == native]
    embed = sum(sum(n.values()) / r[f"embed_per_{per}"] for r in chosen)
    linear = sum(seeds * p.train.epochs * n["train"] / linear_rate[r["model"]] for r in chosen)
    finetune = sum(seeds * p.train.finetune_epochs * (n["train"] / r[f"train_per_{per}"]
                                                      + n["val"] / r[f"embed_per_{per}"]) for r in chosen)  # fmt: skip
    hours = {"embeddings": embed / 3600, "linear heads": linear / 3600, "fine-tuning": finetune / 3600}
    return hours | {"total": sum(hours.values())}


def stage_sizes() -> dict[str, str]:
    """What each stage of the `paper` profile computes, in words, for the table."""
    p = load_profile("paper")
    n = {s: N_CLASSES * k for s, k in p.image.split.items()}
    nets, seeds, total = len(p.image.zoo), len(p.train.seeds), sum(n.values())
    per_epoch = f"{n['train']:,} (+ {n['val']:,} val)"
    return {"embeddings": f"{nets} networks x {total:,} images",
            "linear heads": f"{nets} x {seeds} seeds x {p.train.epochs} epochs x {per_epoch}",
            "fine-tuning": f"{nets} x {seeds} seeds x {p.train.finetune_epochs} epochs x {per_epoch}",
            "total": ""}  # fmt: skip


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def markdown(result: dict[str, Any]) -> str:
    """The rates and the hours as two Markdown tables; a device not measured reads "not measured"."""
    measured = result["devices"]
    lines = ["| device | network | px | embed/s | train/s | linear/s | embed/CPU-s | train/CPU-s | linear/CPU-s |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for device in ("cpu", "cuda"):
        if device not in measured:
            lines.append(f"| {device} | all | | not measured | not measured | not measured | | | |")
        for r in measured.get(device, {}).get("rates", []):
            cells = [f"{r[k]:,.1f}" if k in r else "" for k in
                     ("embed_per_s", "train_per_s", "linear_per_s", "embed_per_cpu_s", "train_per_cpu_s",
                      "linear_per_cpu_s")]  # fmt: skip
            lines.append(f"| {device} | {r['model']} | {r['size']} | " + " | ".join(cells) + " |")
    for profile, suffix in (("paper, 32 px", "32"), ("paper-native", "native")):
        columns = [("cpu", f"paper_hours_{suffix}", "cpu wall-clock hours"),
                   ("cpu", f"paper_core_hours_{suffix}", "cpu core-hours"), ("cuda", f"paper_hours_{suffix}",
                                                                            "cuda hours")]  # fmt: skip
        lines += ["", f"| `{profile}` stage | images | " + " | ".join(c[2] for c in columns) + " |",
                  "| --- | --- | " + " | ".join("---:" for _ in columns) + " |"]
        for stage, what in stage_sizes().items():
            hours = [f"{measured[d][k][stage]:,.1f}" if d in measured else "not measured" for d, k, _ in columns]
            lines.append(f"| {stage} | {what} | " + " | ".join(hours) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", nargs="+", default=["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    parser.add_argument("--embed-batch", type=int, default=64)
    parser.add_argument("--train-batch", type=int, default=32)
    parser.add_argument("--batches", type=int, default=5, help="timed batches at 32 px (after 2 warm-up batches)")
    parser.add_argument("--native-batches", type=int, default=2, help="timed batches at native size (after 1)")
    parser.add_argument("--linear-epochs", type=int, default=3, help="timed epochs of train_linear (after 1)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results", help="folder of the JSON")
    args = parser.parse_args()
    if args.train_batch > args.embed_batch:
        parser.error("--train-batch must not exceed --embed-batch (the training batch is cut from the embed batch)")
    if "cuda" in args.device and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA GPU here")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    load_before, start = os.getloadavg(), time.perf_counter()
    result: dict[str, Any] = {
        "date": datetime.date.today().isoformat(), "host": platform.node(), "cpu": cpu_name(),
        "cores": os.cpu_count(), "threads": args.threads, "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0) if "cuda" in args.device else None,
        "embed_batch": args.embed_batch, "train_batch": args.train_batch, "devices": {},
    }  # fmt: skip
    for name in args.device:
        device = torch.device(name)
        rates = []
        for model in PAPER_ZOO:
            for size in (32, None):
                row = network_rates(model, size, device, args)
                if row["native"]:
                    row |= linear_rates(row["embedding_dim"], device, args.linear_epochs)
                rates.append(row)
                print(f"{name} {model} {row['size']} px: embed {row['embed_per_s']:.1f}/s, "
                      f"train {row['train_per_s']:.1f}/s", flush=True)
        result["devices"][name] = {"rates": rates}
        for suffix, native in (("32", False), ("native", True)):
            result["devices"][name][f"paper_hours_{suffix}"] = paper_hours(rates, native=native)
            if device.type == "cpu":
                result["devices"][name][f"paper_core_hours_{suffix}"] = paper_hours(rates, "cpu_s", native)
    result["load_average"] = {"before": load_before, "after": os.getloadavg()}
    result["wall_time_s"] = time.perf_counter() - start
    print()
    print(markdown(result))
    print(f"\n{result['cpu']}, {result['cores']} cores, {args.threads} torch threads, torch {result['torch']}; "
          f"load average (1, 5, 15 min) before {load_before}, after {result['load_average']['after']}; "
          f"{result['wall_time_s']:.0f} s")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"throughput-{result['host']}-{result['date']}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
