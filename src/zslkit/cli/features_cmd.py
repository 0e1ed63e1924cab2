"""``zslkit features extract``: images (class folders or a path,class list) -> res101.mat (or npz)."""

from __future__ import annotations

import sys

from zslkit.cli import bounded, seed_type
from zslkit.errors import ConfigError
from zslkit.features.extract import FORMATS
from zslkit.features.sources import INTERPOLATIONS
from zslkit.runtime import device_description, resolve_device


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("features", help="extract image features with a pretrained backbone",
                              description="Turn images into pooled features of a pretrained network, in the xlsa17 "
                                          "res101.mat layout. See docs/features.md.")
    sub = p.add_subparsers(dest="features_command", metavar="ACTION")
    ex = sub.add_parser("extract", help="extract features of a folder of images (one sub-folder per class) or a "
                                        "path,class CSV/TSV list",
                        description="Extract features, batched and resumable: a rerun of an interrupted command "
                                    "continues where it stopped.")
    ex.add_argument("source", metavar="SOURCE", help="folder with one sub-folder per class, or a .csv/.tsv list of "
                                                     "path,class rows")
    ex.add_argument("--backbone", required=True, metavar="NAME",
                    help="resnet101 (the xlsa17 recipe) or another torchvision model, timm:NAME, "
                         "open_clip:ARCH/PRETRAINED")
    ex.add_argument("--weights", metavar="FILE", default=None,
                    help="local checkpoint instead of downloading the published weights (other key names of the same "
                         "architecture are matched by position, shapes checked); 'random' = untrained network")
    ex.add_argument("--image-size", type=bounded(int, min=1), default=None, metavar="N",
                    help="input side in pixels (default: the backbone's recipe, e.g. 224)")
    ex.add_argument("--crop-fraction", type=bounded(float, above=0, max=1), default=None, metavar="F",
                    help="resize the shorter side to N/F, then centre-crop N (default: the recipe's, e.g. 0.875; "
                         "1 = no margin cropped)")
    ex.add_argument("--interpolation", default=None, choices=INTERPOLATIONS,
                    help="resize interpolation (default: the recipe's)")
    ex.add_argument("--batch-size", type=bounded(int, min=1), default=64, metavar="B", help="images per forward pass (default 64)")
    ex.add_argument("--workers", type=bounded(int, min=0), default=None, metavar="W",
                    help="image-loading worker processes (default: min(4, CPUs - 1))")
    ex.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (float16 autocast on CUDA)")
    ex.add_argument("--out", required=True, metavar="OUT", help="output folder")
    ex.add_argument("--format", default="mat", choices=list(FORMATS),
                    help="mat: res101.mat in the xlsa17 layout (default); npz: features.npz")
    ex.add_argument("--skip-bad", action="store_true",
                    help="skip unreadable images (listed in provenance.json) instead of stopping with an error")
    ex.add_argument("--chunk-size", type=bounded(int, min=1), default=2048, metavar="N",
                    help="images per resumable chunk written to OUT/.partial (default 2048, rounded up to whole "
                         "batches)")
    ex.add_argument("--seed", type=seed_type(), default=0, help="seed of a random initialisation (--weights random)")
    ex.add_argument("--overwrite", action="store_true", help="replace finished features of another job in OUT")
    ex.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    ex.set_defaults(func=_extract)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _extract(args) -> int:
    # optional extra (vision): torchvision / timm / open_clip and PIL, imported when the command runs
    from zslkit.features.backbones import load_backbone
    from zslkit.features.extract import extract_features
    from zslkit.features.sources import list_images

    for name in ("batch_size", "image_size", "chunk_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if args.workers is not None and args.workers < 0:
        raise ConfigError(f"--workers must be 0 or more, got {args.workers}")
    if args.crop_fraction is not None and not 0 < args.crop_fraction <= 1:
        raise ConfigError(f"--crop-fraction must be in (0, 1], got {args.crop_fraction}")
    images = list_images(args.source)
    device = resolve_device(args.device)
    backbone = load_backbone(args.backbone, weights=args.weights, image_size=args.image_size,
                             crop_fraction=args.crop_fraction, interpolation=args.interpolation, seed=args.seed)
    p = backbone.preprocess
    print(f"zslkit features: {len(images)} images, {len(images.class_names)} classes from {images.source}")
    print(f"  backbone {backbone.spec} ({backbone.dim}-d), weights: {backbone.weights}")
    print(f"  preprocessing: {p.size}x{p.size}, shorter side {p.resize} ({p.interpolation}) + centre crop, "
          f"mean {p.mean} std {p.std}; device {device_description(device)}")
    try:
        prov = extract_features(images, backbone, args.out, batch_size=args.batch_size, workers=args.workers,
                                device=device, fmt=args.format, skip_bad=args.skip_bad, chunk_size=args.chunk_size,
                                progress=not args.no_progress, overwrite=args.overwrite)
    except KeyboardInterrupt:
        print(f"finished chunks are kept in {args.out}/.partial; run the same command again to resume",
              file=sys.stderr)
        raise
    if prov.get("up_to_date"):
        print(f"{args.out} already holds these features (same images, backbone, weights and preprocessing); "
              f"nothing to do")
    elif prov["images_from_earlier_runs"]:
        print(f"resumed: {prov['images_from_earlier_runs']} images were done by an earlier run")
    for item in prov["skipped"]:
        print(f"  skipped {item['file']}: {item['error']}")
    print(f"wrote {prov['num_features']} x {prov['feature_dim']} features to {args.out}/{prov['file']} "
          f"(+ classes.txt, provenance.json)")
    return 0
