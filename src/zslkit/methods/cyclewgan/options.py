"""cycle-WGAN's ``zslkit train`` options: the reference's interfaces (--savepoints, its --train_reg / --train_cls /
--train_gan as stages run, skipped or reused, its architecture files), each turned into config fields."""

from __future__ import annotations

from pathlib import Path

from zslkit.errors import ConfigError
from zslkit.interop.frwgan_architecture import read_architectures
from zslkit.methods.cyclewgan.config import SKIPPABLE_STAGES, STAGES
from zslkit.methods.options import TrainOption
from zslkit.protocol.criteria import CRITERIA


def _savepoints(value: str, dataset) -> dict:
    return {"savepoints": value.strip().strip("[]")}  # also the reference's "[30,40,285]"


def _reuse(items: list[str], dataset) -> dict:
    out = {}
    for item in items:
        stage, _, source = item.partition("=")
        if stage.strip() not in STAGES or not source.strip():
            raise ConfigError(f"--reuse-stage expects STAGE=RUN_DIR with STAGE one of {', '.join(STAGES)}; got "
                              f"{item!r}")
        out[f"{stage.strip()}_stage"] = str(Path(source.strip()).resolve())
    return out


TRAIN_OPTIONS = (
    TrainOption("--architecture", "an rfelixmg/frwgan-eccv18 architecture file (cycle_wgan.json, fullyconnected.json; "
                "repeatable), applied like a preset, before the other overrides",
                lambda paths, dataset: read_architectures(paths, dataset), metavar="FILE.json", repeat=True,
                needs_data=True),
    TrainOption("--savepoints", "GAN epochs whose generator is kept in model.pt (zslkit evaluate / synthesize RUN_DIR "
                "--epoch E)", _savepoints, metavar="E1,E2,..."),
    TrainOption("--checkpoint-metric", "the validation metric that chooses among the --savepoints (validation then "
                "scores those epochs only, and this is the selection criterion)",
                lambda metric, dataset: {"checkpoint_metric": metric}, choices=CRITERIA),
    TrainOption("--reuse-stage", f"reuse a stage of an earlier run instead of training it ({', '.join(STAGES)}; "
                f"repeatable; its model.pt's sha256 goes to provenance.json)", _reuse, metavar="STAGE=RUN_DIR",
                repeat=True),
    TrainOption("--skip-stage", "do not train this stage (its loss term is dropped; repeatable)",
                lambda stages, dataset: {f"{s}_stage": "skip" for s in stages}, choices=SKIPPABLE_STAGES,
                repeat=True),
)
