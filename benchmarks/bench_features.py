"""Images/s of ``nclib.features.extract`` against a bare ``model(x)`` loop on the same batches.

Target: ``extract`` (hooks, pooling, source-head softmax, copies to numpy, progress bar) keeps at
least 90 % of the bare forward throughput. Both loops start from the same CPU batches, use
channels-last, ``torch.inference_mode`` and, on CUDA, float16 autocast; they alternate, and the
median over repeats is reported because a shared machine's speed drifts.

    .venv/bin/python benchmarks/bench_features.py                    # EfficientNet-Lite0, 64 px, CPU
    .venv/bin/python benchmarks/bench_features.py --device cuda --size 224 --n 4096
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from nclib.features import extract


def lite0() -> torch.nn.Module:
    """The mini zoo's EfficientNet-Lite0; timm's identical architecture if nclib.models is not importable."""
    try:
        from nclib.models.image import build_image

        return build_image("lite0")[0]
    except ImportError:
        import timm

        model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
        model.penultimate, model.has_source_head = "global_pool", True
        return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=64, help="input pixels")
    parser.add_argument("--n", type=int, default=1024, help="images per pass")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = torch.device(args.device)
    model = lite0().eval().to(device).to(memory_format=torch.channels_last)
    x = torch.randn(args.n, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    batches = list(x.split(args.batch_size))

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def bare() -> float:
        sync()
        start = time.perf_counter()
        with torch.inference_mode(), torch.autocast(device.type, torch.float16, enabled=device.type == "cuda"):
            for b in batches:
                model(b.to(device).contiguous(memory_format=torch.channels_last))
        sync()
        return args.n / (time.perf_counter() - start)

    def ours() -> float:
        sync()
        start = time.perf_counter()
        emb = extract(model, x, batch_size=args.batch_size, device=device)
        sync()
        assert emb.features.shape[0] == args.n
        return args.n / (time.perf_counter() - start)

    bare(), ours()  # warm-up
    pairs = [(bare(), ours()) for _ in range(args.repeats)]
    b, e = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
    ratio = statistics.median(p[1] / p[0] for p in pairs)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"EfficientNet-Lite0, {args.size} px, batch {args.batch_size}, {args.n} images, {name}")
    print(f"bare model(x): {b:8.1f} images/s (median of {args.repeats})")
    print(f"extract:       {e:8.1f} images/s (features + source probabilities)")
    print(f"ratio:         {ratio:8.1%} (median of paired runs; target >= 90 %): {'OK' if ratio >= 0.9 else 'BELOW'}")


if __name__ == "__main__":
    main()
