"""An imported model as a run directory that ``zslkit evaluate`` / ``predict`` / ``report`` accept.

Written like a trained run (``experiment.execute``): ``config.json`` (how to reopen the data), ``model.pt``,
``history.json`` (empty: no zslkit training), ``curves.json``, ``per_class.json``, ``provenance.json`` (with
``imported``: the source file, its sha256, the reference code and format) and, last, ``metrics.json``: the model
scored once on the dataset's test splits. Its selection mode is ``imported``: zslkit chose nothing, and the
description says how the reference chose the saved model.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

from zslkit.data.matio import file_sha256
from zslkit.protocol.evaluate import TestScores
from zslkit.protocol.health import health_warnings
from zslkit.runs import RunDir, provenance
from zslkit.runtime import device_description

SELECTION_MODE = "imported"
log = logging.getLogger("zslkit.interop")


def fitted(model, name: str):
    """A fitted model's ``config`` / ``device`` (``config_`` / ``device_`` in the scikit-learn style API)."""
    value = getattr(model, name + "_", None)
    return value if value is not None else getattr(model, name)


def write_imported_run(out: str | Path, model, dataset, *, source: str | Path, reference: str, file_format: str,
                       setting: str, selection_note: str, data: dict, overwrite: bool = False) -> dict:
    """Score ``model`` on ``dataset`` and write the run directory ``out``; returns the metrics.

    ``source``: the imported file; ``reference``: the code that wrote it (e.g. ``kailigo/cvcZSL``);
    ``file_format``: which of its formats; ``selection_note``: how the reference chose the saved model;
    ``data``: how the dataset was named (``dataset``, ``semantic``, ``data_seed``), stored for ``evaluate``."""
    source = Path(source).resolve()
    imported = {"reference": reference, "format": file_format, "file": str(source), "sha256": file_sha256(source)}
    started = time.perf_counter()
    with RunDir(out, overwrite=overwrite) as rd:
        log.info("importing %s (sha256 %s), a %s model (%s), onto %s", source, imported["sha256"], reference,
                 file_format, dataset.name)
        spec = data["dataset"]
        config = {"method": model.name, "dataset": spec, "semantic": data.get("semantic"),
                  "data_seed": int(data.get("data_seed", 0)), "setting": setting, "selection": SELECTION_MODE,
                  "criterion": None, "seed": int(model.seed), "device": str(fitted(model, "device")), "overrides": {},
                  "method_config": dataclasses.asdict(fitted(model, "config")), "dataset_name": dataset.name,
                  "synthetic": bool(dataset.synthetic),
                  "data_root": str(Path(spec).resolve()) if Path(spec).exists() else None,
                  "imported": imported}
        rd.write_json("config.json", config)
        model.save(rd.file("model.pt"), extra={"dataset": dataset.name, "class_names": list(dataset.class_names),
                                              "imported": imported})
        scores = TestScores(model, dataset)
        metrics = {k: float(v) for k, v in scores.metrics(None, curve=True).items()}
        metrics["gzsl_unseen_share"] = scores.unseen_prediction_rate()
        warnings = health_warnings(metrics, num_unseen=int(dataset.unseen_classes.size),
                                   unseen_share=metrics["gzsl_unseen_share"])
        metrics.update({
            "method": model.name, "variant": getattr(fitted(model, "config"), "variant", None), "setting": setting,
            "transductive": setting == "transductive",
            "selection": {"mode": SELECTION_MODE, "criterion": "none (imported)", "chosen": {},
                          "description": f"imported from a {reference} checkpoint, not selected by zslkit; "
                                         f"{selection_note}",
                          "validation_metrics": None, "calibration_gamma_source": "none"},
            "dataset": dataset.name, "synthetic": bool(dataset.synthetic),
            "semantic_source": dataset.semantic_source, "seed": int(model.seed), "warnings": warnings})
        rd.write_json("history.json", [])
        rd.write_json("curves.json", {"seen_unseen": {k: v.tolist() for k, v in scores.curve().items()},
                                      "training": []})
        rd.write_json("per_class.json", scores.per_class())
        wall = time.perf_counter() - started
        device = device_description(fitted(model, "device"))
        rd.write_json("provenance.json", provenance(dataset.summary(), seed=int(model.seed), device=device,
                                                    wall_time_s=wall, extra={"imported": imported}))
        metrics["wall_time_s"] = round(wall, 3)
        rd.write_json("metrics.json", metrics)  # written last: its presence marks a finished run
    return metrics
