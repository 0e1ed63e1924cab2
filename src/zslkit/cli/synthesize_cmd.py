"""``zslkit synthesize RUN_DIR --classes EMBEDDINGS --per-class N --out FILE``: features from a trained generator.

The run directory's ``model.pt`` must hold a generative model (one with a ``synthesize`` method: cycle-WGAN /
f-CLSWGAN). Class embeddings come from a ``.npy``, ``.npz``, ``.csv``, ``.txt`` or ``.mat`` file holding a C x A matrix (one row per
class, A = the model's embedding dimension). The output format follows the extension of ``--out``:

* ``.npz``: ``features`` (M x D float32), ``labels`` (M, 0-based rows of the embeddings file),
  ``class_embeddings`` (C x A), ``zslkit_provenance`` (a JSON string: see ``provenance_record``);
* ``.h5`` / ``.hdf5``: cycle-WGAN's pseudo-feature layout (routines/augment_features.py): ``/train/X``,
  ``/train/Y`` (1-based class ids = row + 1), ``/train/A/continuous`` (per-sample embedding) and string scalars
  ``/info/{dataset,num_features,domain,architecture,architecture_file,timestamp,zslkit_provenance}``.

``--epoch E`` synthesises with the generator kept at GAN epoch E (``zslkit train --savepoints``) instead of the final
one (the reference's ``augment_features.py`` asks which savepoint to use).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from zslkit.cli import bounded, seed_type
from zslkit.data.arrays import read_matrix
from zslkit.data.layouts import refuse_overwrite
from zslkit.data.matio import file_sha256
from zslkit.errors import ConfigError, DataError, RunDirError
from zslkit.methods.base import ZSLMethod
from zslkit.methods.registry import available_methods, get_method
from zslkit.runs import atomic_write_bytes, now_iso

FORMATS = {".npz": "npz", ".h5": "h5", ".hdf5": "h5"}


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "synthesize", help="generate visual features for classes from a trained cycle-WGAN / f-CLSWGAN run",
        description="Generate synthetic visual features for the classes described in EMBEDDINGS with the generator "
                    "saved in RUN_DIR/model.pt. Output: .npz (features, labels, class_embeddings) or the "
                    "cycle-WGAN .h5 pseudo-feature layout, chosen by the extension of --out.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory holding model.pt")
    p.add_argument("--classes", required=True, metavar="EMBEDDINGS",
                   help="class embeddings, C x A (one row per class): .npy, .npz, .csv, .txt or .mat")
    p.add_argument("--classes-key", help="array name inside a .npz/.mat embeddings file")
    p.add_argument("--per-class", required=True, type=bounded(int, min=1), metavar="N", help="features to generate per class")
    p.add_argument("--out", required=True, metavar="FILE", help="output file: .npz, .h5 or .hdf5")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--seed", type=seed_type(), default=0, help="seed of the noise (default 0)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    p.add_argument("--domain", default="unseen", help="the /info/domain string of the .h5 output (default unseen)")
    p.add_argument("--epoch", type=bounded(int, min=1), metavar="E",
                   help=f"synthesise with the model snapshot kept at epoch E instead of the final one "
                        f"({snapshot_methods()})")
    p.set_defaults(func=_run)


def snapshot_methods() -> str:
    """Which runs keep snapshots, asked of the installed methods (``snapshot_option``), for --epoch's help."""
    kept = [f"{name} runs trained with {get_method(name).snapshot_option}" for name in available_methods()
            if get_method(name).snapshot_option]
    return " or ".join(kept) + " keep them" if kept else "no installed method keeps them"


def use_epoch(model, epoch: int, run_dir: Path) -> None:
    """Switch ``model`` to its snapshot of epoch ``epoch`` (``--epoch``); a ConfigError (usage) names the run
    directory and the epochs it keeps."""
    if not model.snapshot_option:
        raise ConfigError(f"--epoch {epoch}: the {model.name} model in {run_dir} keeps no snapshots "
                          f"({snapshot_methods()})")
    try:
        model.use_snapshot(epoch)
    except ConfigError as exc:
        raise ConfigError(f"--epoch {epoch}: {run_dir}/model.pt: {exc}") from None


def write_h5(path: Path, features: np.ndarray, labels: np.ndarray, embeddings: np.ndarray, info: dict) -> Path:
    """cycle-WGAN's generated pseudo-feature file (1-based /train/Y), written atomically."""
    import h5py  # here, not at the top: `zslkit --help` need not load HDF5


    buf = io.BytesIO()
    string = h5py.string_dtype("utf-8")
    with h5py.File(buf, "w") as fh:
        fh.create_dataset("train/X", data=features)
        fh.create_dataset("train/Y", data=(labels + 1).astype(np.int64))
        fh.create_dataset("train/A/continuous", data=embeddings[labels])
        for key, value in info.items():
            fh.create_dataset(f"info/{key}", data=str(value), dtype=string)
    return atomic_write_bytes(buf.getvalue(), path)


def provenance_record(run_dir: Path, model, classes: str, args) -> dict:
    """Where synthesized features come from: always synthetic (generated), by which model file (sha256), from
    which class embeddings (sha256), seed and generator epoch, and the data the generator was trained on (the run's
    provenance: real or synthetic, source, split sha256)."""
    trained_on = {}
    prov = run_dir / "provenance.json"
    if prov.is_file():
        try:
            data = json.loads(prov.read_text(encoding="utf-8")).get("dataset") or {}
            trained_on = {k: data.get(k) for k in ("name", "synthetic", "source", "split_sha256")}
        except (json.JSONDecodeError, AttributeError):
            trained_on = {"error": f"{prov}: not readable JSON"}
    return {"synthetic": True, "kind": "features synthesized by a trained generator", "method": model.name,
            "model": str((run_dir / "model.pt").resolve()), "model_sha256": file_sha256(run_dir / "model.pt"),
            "classes": str(Path(classes).resolve()), "classes_sha256": file_sha256(classes), "seed": args.seed,
            "per_class": args.per_class, "generator_epoch": getattr(model, "generator_epoch_", None),
            "generator_trained_on": trained_on, "written_at": now_iso()}


def _run(args) -> int:
    out = Path(args.out)
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise ConfigError(f"--out {out}: unknown extension {out.suffix!r}; use .npz, .h5 or .hdf5")
    if args.per_class < 1:
        raise ConfigError(f"--per-class must be >= 1, got {args.per_class}")

    refuse_overwrite([out], args.overwrite)
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: run directory not found")  # as evaluate and predict: a usage error
    model = ZSLMethod.load(run_dir / "model.pt", device=args.device)
    if not hasattr(model, "synthesize"):
        raise ConfigError(f"the model in {run_dir} is {model.name!r}, which cannot synthesise features "
                          "(use a cycle-wgan run)")
    if args.epoch is not None:
        use_epoch(model, args.epoch, run_dir)
    E = read_matrix(args.classes, args.classes_key)
    if E.shape[1] != model.embedding_dim_:
        raise DataError(args.classes, None, f"embedding dimension mismatch: the file has {E.shape[1]} columns, the "
                        f"model expects {model.embedding_dim_} (one row per class)")
    features, labels = model.synthesize(E, args.per_class, generator=args.seed)
    record = json.dumps(provenance_record(run_dir, model, args.classes, args), sort_keys=True)
    if fmt == "npz":
        buf = io.BytesIO()
        np.savez(buf, features=features, labels=labels, class_embeddings=E, zslkit_provenance=np.array(record))
        atomic_write_bytes(buf.getvalue(), out)
    else:
        dataset = "unknown"
        cfg_path = run_dir / "config.json"
        if cfg_path.is_file():
            try:
                dataset = json.loads(cfg_path.read_text(encoding="utf-8")).get("dataset", dataset) or dataset
            except (json.JSONDecodeError, AttributeError):
                pass
        info = {"dataset": dataset if isinstance(dataset, str) else json.dumps(dataset),
                "num_features": features.shape[0], "domain": args.domain,
                "architecture": json.dumps({"method": model.name, "variant": getattr(model.config_, "variant", ""),
                                            "generator_epoch": model.generator_epoch_}),
                "architecture_file": str(run_dir / "model.pt"), "timestamp": now_iso(), "zslkit_provenance": record}
        write_h5(out, features, labels, E, info)
    print(f"wrote {features.shape[0]} features ({E.shape[0]} classes x {args.per_class}, dim {features.shape[1]}) "
          f"to {out}")
    return 0
