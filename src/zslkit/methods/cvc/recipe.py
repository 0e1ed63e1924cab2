"""CVC-ZSL's recipe: presets (presets/cvc_zsl.yaml, variant ``reference``: the reference code's full protocol), the
rules for data without a preset (:func:`scaled_defaults`), the learning rates validation tries, the transductive
warm-up, schedules that follow a changed training length, and what a user's episode sizes imply. Each rule with its
reason; the estimator (:mod:`.estimator`) trains whatever config this gives."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from zslkit.methods.cvc.config import CVCConfig
from zslkit.methods.recipe import Recipe

log = logging.getLogger("zslkit.methods.cvc")

# episodes the default budget gives each seen class (class visits = episodes x ways / classes): enough for the
# generator to see every class's samples many times over (the reference: 10^6 episodes of 32 ways)
VISITS_PER_CLASS = 2000
MIN_EPISODES, MAX_EPISODES, EPISODES_PER_EPOCH = 3000, 12000, 100


def scaled_defaults(dataset=None, setting: str = "inductive") -> CVCConfig:
    """Working defaults for datasets without a preset: rules from the data's class count and size.

    * Architecture and cosine classifier as the reference; episodes of the reference code's 32 ways x 4 shots,
      clipped to the seen classes and the smallest class.
    * Budget: every seen class visited about ``VISITS_PER_CLASS`` times (episodes = visits x classes / ways),
      3000..12000 episodes of 100 per epoch: a few classes need little, hundreds of classes need the
      reference's order of magnitude (a user's reference run: 20000 episodes), and the whole protocol (two
      validation fits cut by patience, one final fit) stays within about the time of one such reference run
      on a CPU.
    * Learning rate chosen on validation among 1e-4 and 1e-3 (``lr_grid``): the reference's 1e-5 assumes
      10^6 episodes, and which of the two wins depends on the data (1e-3 trains faster, 1e-4 is safer; in
      transductive runs the same grid serves the warm-up's lr, then the self-training's trans_lr);
      StepLR halves it at a third and two thirds of the budget (``follow_budget`` keeps that share when the
      epochs change); validation fits stop after a third of the epochs without improvement.
    * Transductive: the warm-up (inductive epochs and lr) is chosen on validation first, then self-training
      for a third of the budget, episodes of 32 x 4 seen samples (the code default: with 16 x 1 the pseudo-
      labelled samples outnumber the labelled ones and the seen classes are forgotten) re-pseudo-labelled
      every 2 epochs; pseudo labels per class by :func:`balanced_topk`; at most half of each self-training
      episode pseudo-labelled (``pseudo_share``): with many unseen classes (4 samples each) they would outnumber
      the labelled seen samples and crush the seen classes (synthetic-sun: GZSL S 0.74 -> 0.34; capped: 0.66).
    """
    seen = dataset.seen_classes.size if dataset is not None else 50
    smallest = 4
    if dataset is not None:
        counts = np.bincount(dataset.labels[dataset.splits["trainval"]],
                             minlength=dataset.num_classes)[dataset.seen_classes]
        smallest = int(counts.min()) if counts.size else 1
    ways, shots = max(1, min(32, seen)), max(1, min(4, smallest))
    total = min(MAX_EPISODES, max(MIN_EPISODES, VISITS_PER_CLASS * seen // ways))
    epochs = max(1, -(-total // EPISODES_PER_EPOCH))
    cfg = CVCConfig(ways=ways, shots=shots, lr=1e-4, lr_grid=(1e-4, 1e-3), weight_decay=1e-4,
                    step_size=max(1, epochs // 3), epochs=epochs, episodes=EPISODES_PER_EPOCH,
                    episode_overflow="clip", finetune_episodes=200, validation_patience=1 / 3,
                    inductive_epochs=epochs, trans_ways=ways, trans_shots=shots, trans_lr=1e-4,
                    trans_weight_decay=1e-5, trans_step_size=max(1, epochs // 3), refresh=2)
    if setting == "transductive":
        cfg = replace(cfg, epochs=max(1, epochs // 3), gzsl_seen_classifiers="learned", pseudo_filter="topk",
                      topk_per_class=balanced_topk(dataset), pseudo_share=0.5)
    return cfg


def balanced_topk(dataset=None) -> int:
    """Pseudo labels per unseen class for data without a preset: a third of a class's expected share of the
    unlabeled samples (n // (3 x unseen classes), at least 5), each class by its own score. On real features the
    reference's ratio filter lets a class whose generated classifier is wrong absorb another class's samples, and
    self-training then swaps the two (fashion-zsl fold 2: coat's pseudo labels 38 % right, T1 0.65 -> 0.55); a
    fixed, equal number per class bounds what one wrong classifier can take (docs/methods/cvc_zsl.md)."""
    if dataset is None:
        return 5
    n, k = int(dataset.splits["test_unseen"].size), max(1, int(dataset.unseen_classes.size))
    return max(5, n // (3 * k))


class CVCRecipe(Recipe):
    """CVC-ZSL's recipe: the rules on the data (:func:`scaled_defaults`) and the hooks below; presets (e.g. the
    "reference" variant, the full 1000 x 1000 protocol) from presets/cvc_zsl.yaml."""

    def scaled_config(self, dataset=None, setting: str = "inductive", variant: str | None = None) -> CVCConfig:
        return scaled_defaults(dataset, setting)

    def search_space(self, config, dataset=None, setting: str = "inductive") -> list[dict]:
        """Epochs are always selected; ``lr_grid`` (if set) adds learning rates (of the current stage)."""
        key = "trans_lr" if setting == "transductive" else "lr"
        return [{key: float(v)} for v in config.lr_grid] or [{}]

    def warmup_config(self, config: CVCConfig) -> CVCConfig:
        """The inductive configuration whose validation selection chooses a transductive run's warm-up (the
        reference self-trains from its best inductive model): ``inductive_epochs`` as the budget."""
        return replace(config, epochs=config.inductive_epochs, gzsl_seen_classifiers="generated")

    def with_warmup(self, config: CVCConfig, chosen: dict) -> CVCConfig:
        """``config`` (transductive) starting from the warm-up chosen on validation (its epochs and lr)."""
        return replace(config, inductive_epochs=int(chosen.get("epochs", config.inductive_epochs)),
                       lr=float(chosen.get("lr", config.lr)))

    def follow_budget(self, base: CVCConfig, config: CVCConfig, setting: str = "inductive") -> CVCConfig:
        """StepLR periods keep their share of a training length the user changed (``--epochs``): e.g. the
        default's halving every third of the epochs stays every third, instead of decaying the rate to nothing in a
        longer run. A step size the user set explicitly is kept."""
        pairs = [("epochs", "step_size")] if setting == "inductive" else [("inductive_epochs", "step_size"),
                                                                          ("epochs", "trans_step_size")]
        for length, step in pairs:
            old, new = getattr(base, length), getattr(config, length)
            if new != old and old > 0 and getattr(config, step) == getattr(base, step):
                scaled = max(1, round(getattr(base, step) * new / old))
                log.info("%s changed %d -> %d: %s rescaled %d -> %d", length, old, new, step, getattr(base, step),
                         scaled)
                config = replace(config, **{step: scaled})
        return config

    def user_overrides(self, config, overrides: dict) -> dict:
        """Episode sizes the user asked for explicitly (``ways``, ``shots``) are never clipped to the data silently
        (the scaled defaults clip theirs, ``episode_overflow: clip``): an impossible one is an error."""
        if {"ways", "shots"} & set(overrides):
            overrides = dict(overrides)
            overrides.setdefault("episode_overflow", "error")
        return overrides


RECIPE = CVCRecipe(CVCConfig, presets="cvc-zsl")
