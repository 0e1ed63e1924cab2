"""Images/s of ``zslkit features extract`` against the backbone's own batched forward pass on tensors
already in memory (the limit: no decoding, resizing, loading or writing).

    python benchmarks/bench_features.py --device cpu --threads 2           # EfficientNet-Lite0, 224 px, batch 64
    python benchmarks/bench_features.py --device cuda --images 4096 --backbone resnet101

Images are PNG files written to a temporary folder (Fashion-MNIST from the Debian package when present, else
random pictures), 28 x 28 grey or ``--source-size`` colour; weights are random (speed does not depend on them).
The extraction is timed from the image folder to the written res101.mat (image listing, decoding, resizing,
DataLoader workers, forward, chunk files, final file), without building the model. The two are timed in
alternation, ``--rounds`` times each; the ratio is taken between the best rounds (least disturbed by other
processes on a shared machine), medians are reported too.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import sync, write_result  # noqa: E402


def write_images(root: Path, n: int, source_size: int) -> str:
    from PIL import Image

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    import fashion_mnist_images as fm

    if source_size == 28 and (fm.IDX_DIR / "train-images-idx3-ubyte.gz").is_file():
        fm.write_folder(root, per_class=n // 10, seed=0)
        return f"Fashion-MNIST 28x28 grey PNG ({n // 10 * 10})"
    rng = np.random.default_rng(0)
    for i in range(n):
        folder = root / f"class{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (source_size, source_size, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return f"random {source_size}x{source_size} colour PNG ({n})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backbone", default="timm:efficientnet_lite0")
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--source-size", type=int, default=28, help="side of the PNG files (28 = Fashion-MNIST)")
    ap.add_argument("--images", type=int, default=640)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: zslkit's default)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (CPU)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from zslkit.features.backbones import load_backbone
    from zslkit.features.extract import default_workers, extract_features
    from zslkit.features.sources import list_images
    from zslkit.runtime import device_description, resolve_device

    device = resolve_device(args.device)
    workers = default_workers() if args.workers is None else args.workers
    bb = load_backbone(args.backbone, weights="random", image_size=args.image_size)
    module = bb.module.to(device).eval()
    if device.type == "cuda":
        module = module.to(memory_format=torch.channels_last)
    with tempfile.TemporaryDirectory() as tmp:
        source = write_images(Path(tmp) / "img", args.images, args.source_size)
        images = list_images(Path(tmp) / "img")
        n = len(images)
        x = torch.randn(args.batch_size, 3, args.image_size, args.image_size, device=device)
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        autocast = torch.autocast("cuda", dtype=torch.float16) if device.type == "cuda" else torch.autocast(
            "cpu", enabled=False)

        def forward_only() -> float:
            sync(device)
            start = time.perf_counter()
            with torch.inference_mode(), autocast:
                for i in range(0, n, args.batch_size):
                    module(x[:min(args.batch_size, n - i)]).float().cpu()
            sync(device)
            return n / (time.perf_counter() - start)

        def extraction(r: int) -> float:
            start = time.perf_counter()
            extract_features(list_images(Path(tmp) / "img"), bb, Path(tmp) / f"out{r}", batch_size=args.batch_size,
                             workers=workers, device=device, progress=False)
            return n / (time.perf_counter() - start)

        forward_only()  # warm-up (allocator, cuDNN autotuning)
        limit, ours = [], []
        for r in range(args.rounds):
            limit.append(forward_only())
            ours.append(extraction(r))
            print(f"round {r}: forward only {limit[-1]:.1f} img/s, zslkit features extract {ours[-1]:.1f} img/s",
                  flush=True)
    lim, got = max(limit), max(ours)
    result = {"backbone": args.backbone, "feature_dim": bb.dim, "image_size": args.image_size, "images": n,
              "source": source, "batch_size": args.batch_size, "workers": workers, "device": device_description(device),
              "torch_threads": torch.get_num_threads(), "rounds": args.rounds,
              "forward_only_img_per_s": round(lim, 2), "extract_img_per_s": round(got, 2),
              "fraction_of_limit": round(got / lim, 3), "statistic": "best of rounds",
              "median_fraction_of_limit": round(statistics.median(ours) / statistics.median(limit), 3),
              "all_forward_only": [round(v, 2) for v in limit],
              "all_extract": [round(v, 2) for v in ours], "target_fraction": 0.8}
    print(f"\n{args.backbone} {args.image_size}px batch {args.batch_size} on {result['device']}: "
          f"extract {got:.1f} img/s = {100 * got / lim:.0f}% of the forward-only limit {lim:.1f} img/s (target 80%)")
    write_result(result, args.out, f"features_{device.type}.json")


if __name__ == "__main__":
    main()
