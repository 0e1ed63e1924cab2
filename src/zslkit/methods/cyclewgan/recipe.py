"""cycle-WGAN's recipe: presets (presets/cycle_wgan.yaml: the releases' per-dataset settings, CUB with sentence
embeddings, ``f-clswgan-reference``: the f-CLSWGAN release's recipe on any data), the variants' borrowing rules, the
defaults for data without a preset (:func:`scaled_default`), the final-classifier head search, and the checkpoint
metric as the selection criterion. Each rule with its reason; the estimator trains whatever config this gives."""

from __future__ import annotations

import dataclasses
import itertools
import math

from zslkit.errors import ConfigError
from zslkit.methods.cyclewgan.config import CLS_VARIANTS, REFERENCE_VARIANTS, VARIANTS, CycleWGANConfig
from zslkit.methods.recipe import Recipe

MAX_HEADS = 12  # final-classifier settings tried at each validation point (head_space)
REFERENCE_WIDTH = 4096  # the releases' hidden width of G and D
WIDTH_BUDGET = 2 ** 20  # (feature dim + embedding dim) x hidden width up to which the no-preset default widens
CLS_STEP_BUDGET = 500  # optimizer steps of one final classifier in the no-preset default (scaled_default)


def _as_variant(cfg: CycleWGANConfig, variant: str | None, own_preset: bool) -> CycleWGANConfig:
    """``cfg`` for ``variant``. Borrowing a cycle-WGAN entry (or the scaled default) for f-CLSWGAN keeps the
    f-CLSWGAN reference's 5 critic steps per generator step (docs/methods/cycle_wgan.md, critic_iter 5)."""
    if not variant:
        return cfg
    cfg = dataclasses.replace(cfg, variant=variant)
    if variant == "f-clswgan" and not own_preset:
        cfg = dataclasses.replace(cfg, n_critic=5)
    return cfg


def scaled_default(dataset=None, variant: str | None = None) -> CycleWGANConfig:
    """Defaults for a dataset without a preset: rules on the data's size, dimensions and class count, each with
    its reason (numbers in docs/methods/cycle_wgan.md, "On real data"). The reference presets never come here.

    * Hidden width 2 x max(feature dim, embedding dim), rounded up to a power of two, within [128, 512] (the
      reference's 4096 is 2 x its 2048-d features; capped for a 2-core CPU budget), or wider where it is cheap: the
      largest power of two up to the reference's 4096 with (feature dim + embedding dim) x width <= 2^20 weights
      (``WIDTH_BUDGET``). Issue 18: on digits-7seg (64-d features) the 128-wide generator never learned its own
      training classes (seen-class fidelity 0.21, chance 0.14, after 60 epochs at lr 1e-4; 0.085 for 256 wide at
      lr 1e-3), the release's 4096 reaches 0.88 (the release itself 0.90) and 1024 wide 0.63 within 8 epochs at
      lr 1e-3. 2048-d and 1280-d features keep 512 (the budget rule gives less).
    * About 1500 generator steps (5..60 epochs of batch 64), lr_g 1e-3: a few thousand samples train in minutes on
      2 cores; the GAN epoch is then chosen by the validation monitor (every epochs // 10).
    * Synthesis from an exponential moving average of G's weights (``g_ema`` 0.99, a horizon of ~100 generator steps,
      1/15 of the budget): at lr_g 1e-3 the raw generator's quality swings from one epoch to the next (a fashion-zsl
      slice: ZSL T1 0.51 / 0.89 / 0.77 / 0.98 at GAN epochs 25 / 30 / 35 / 40; with the average 0.94 / 0.94 / 0.84 /
      0.94), and a validation point is only worth selecting if its neighbours agree.
    * Features divided by their largest training value (``feature_norm: max``): raw 2048-d features let the critic
      separate real from fake far too easily (synthetic-apy ZSL T1 8 % -> 30 %).
    * The final classifier is searched on the validation classes at every monitored GAN epoch (``head_space``):
      ``syn_per_unseen`` n, the mean number of real training samples per seen class rounded to 50 within
      [100, 1000] (a synthetic class weighs about as much as a real one); classifier lr 1e-3 and 1e-2, batch 512.
      ``mode`` is replace (synthetic features for the seen classes too) for cycle-wgan: real seen features beside
      synthetic unseen ones teach the softmax "real means seen" (fashion-zsl fold 0: GZSL U 0.00-0.07 with merge,
      also with synthetic seen rows added to the real ones, for every feature normalisation tried), and when merge
      was in the searched grid, easy validation classes picked it and it failed on test (fold 3: validation H 0.75,
      test H 0.13).
    * cycle-wgan also searches the seen classes' share of the final classifier's rows: ``syn_per_seen`` n, n/2,
      n/4, n/8 (8 heads with the two lrs). The unseen classes are synthesised from their embeddings alone, the
      seen ones from embeddings the GAN was trained on, so at equal counts the softmax prefers the seen classes
      (fashion-zsl, the default GAN, fold 0 test: U 0.24, S 0.71; its synthetic features have 0.6-0.7 of the real
      within-class spread); fewer seen rows lower their prior, as calibrated stacking does, but inside the classifier
      and chosen on the validation classes, which the GAN never saw, as it never sees the unseen ones. 4 folds:
      GZSL H 0.36 +- 0.07 -> 0.46 +- 0.07. The variants with the classification loss (f-clswgan, cycle-clswgan)
      search merge and replace x ``syn_per_unseen`` n, 2n x ``syn_per_seen`` 0, n/4 x lr 1e-2 (8 heads): that loss
      pulls synthetic features onto the real classes, so merge (0: real seen rows only) keeps U and wins where the
      generator does not reproduce seen features well (synthetic-cub), while replace with n/4 seen rows against n or
      2n unseen ones is the lowered seen prior (fashion-zsl f-clswgan, 4 folds: H 0.37 +- 0.01 -> 0.48 +- 0.08,
      replace with 2n unseen and n/4 seen rows chosen on three folds); lr 1e-3 is left out to keep 8 heads (1e-2
      won on synthetic-cub).
      Without the search (``--selection fixed``) the head is replace, n for every class, lr 1e-3.
    * Classifier epochs: 25 (f-CLSWGAN), fewer when the largest head's rows (2n per class, all classes: the cls-loss
      variants' grid; cycle-wgan uses the same count) would need more than ~500 optimizer steps (at least 5 epochs):
      every head is trained at every monitored epoch, so its cost must not grow with the class count (a 200-class
      set at n = 100: 6 epochs instead of 25).
    """
    cfg = CycleWGANConfig()
    if dataset is None:
        return cfg
    n = int(dataset.splits["trainval"].size)
    width = int(min(512, max(128, 2 ** math.ceil(math.log2(2 * max(dataset.feature_dim, dataset.embedding_dim))))))
    cheap = 2 ** int(math.floor(math.log2(WIDTH_BUDGET / (dataset.feature_dim + dataset.embedding_dim))))
    width = int(max(width, min(REFERENCE_WIDTH, cheap)))
    steps = max(1, n // cfg.batch_size)
    epochs = int(min(60, max(5, round(1500 / steps))))
    per_class = n / max(1, dataset.seen_classes.size)
    syn = int(min(1000, max(100, 50 * round(per_class / 50))))
    cls_steps_per_epoch = math.ceil(2 * syn * dataset.num_classes / 512)
    cls_epochs = int(min(25, max(5, round(CLS_STEP_BUDGET / cls_steps_per_epoch))))
    return dataclasses.replace(cfg, hidden_g=width, hidden_d=width, epochs=epochs, lr_g=1e-3, syn_per_unseen=syn,
                               mode="replace",
                               feature_norm="max",
                               regressor_epochs=min(cfg.regressor_epochs, max(5, round(1500 / steps))),
                               cls_epochs=cls_epochs, cls_batch=512, pre_cls_batch=512,
                               g_ema=0.99, mode_grid=("merge", "replace") if variant in CLS_VARIANTS else (),
                               syn_grid=(syn, 2 * syn) if variant in CLS_VARIANTS else (syn,),
                               syn_seen_grid=(0, syn // 4) if variant in CLS_VARIANTS else
                               (syn, syn // 2, syn // 4, syn // 8),
                               cls_lr_grid=(1e-2,) if variant in CLS_VARIANTS else (1e-3, 1e-2))


class CycleWGANRecipe(Recipe):
    """cycle-WGAN's recipe (the functions above); presets from presets/cycle_wgan.yaml."""

    variants = VARIANTS

    def preset_names(self, dataset) -> list[str]:
        """CUB with sentence embeddings (semantic source ``sent*``) uses the ``CUB-sent`` entry first."""
        names = super().preset_names(dataset)
        if dataset is not None and dataset.name.upper() == "CUB" and \
                str(dataset.semantic_source).lower().startswith("sent"):
            names.insert(0, "CUB-sent")
        return names

    def preset_variants(self, variant: str | None) -> list[str | None]:
        """A variant's own entry, else the dataset's cycle-wgan entry (cycle-clswgan has none of its own);
        f-clswgan-reference: its own entry only (the ``default`` one: the release's recipe on any data)."""
        if variant in REFERENCE_VARIANTS:  # the release's recipe, never a dataset's cycle-wgan entry
            return [variant]
        own = None if variant in (None, "cycle-wgan") else variant
        return [own, None] if own else [None]

    def from_preset(self, preset, variant: str | None) -> CycleWGANConfig:
        return _as_variant(super().from_preset(preset, variant), variant, own_preset=preset.variant is not None)

    def scaled_config(self, dataset=None, setting: str = "inductive", variant: str | None = None) -> CycleWGANConfig:
        return _as_variant(scaled_default(dataset, variant), variant, own_preset=False)

    def search_space(self, config, dataset=None, setting: str = "inductive") -> list[dict]:
        """One GAN run: its epoch comes from the monitor, the final classifier from ``head_space``."""
        return [{}]

    def head_space(self, config, dataset=None, setting: str = "inductive") -> list[dict]:
        """Final-classifier settings scored at every validation point without refitting the GAN: the product of
        ``mode_grid``, ``syn_grid`` (syn_per_unseen), ``syn_seen_grid`` (syn_per_seen), ``cls_epochs_grid`` and
        ``cls_lr_grid`` (an empty list keeps the config's value). The reference presets set none, so they are scored
        as given."""
        axes = [(name, tuple(values)) for name, values in (("mode", config.mode_grid),
                                                           ("syn_per_unseen", config.syn_grid),
                                                           ("syn_per_seen", config.syn_seen_grid),
                                                           ("cls_epochs", config.cls_epochs_grid),
                                                           ("cls_lr", config.cls_lr_grid)) if values]
        if not axes:
            return [{}]
        heads = [dict(zip([n for n, _ in axes], combo)) for combo in itertools.product(*[v for _, v in axes])]
        if len(heads) > MAX_HEADS:
            raise ConfigError(f"cycle-wgan: the head grid (mode_grid x syn_grid x syn_seen_grid x cls_epochs_grid x "
                              f"cls_lr_grid) has {len(heads)} entries; keep it at most {MAX_HEADS}, every one is "
                              f"trained at every validation point")
        return heads

    def criterion(self, config, selection: str, criterion: str | None) -> str | None:
        """A config's ``checkpoint_metric`` (the validation metric that chooses among savepoints, the reference's
        --savepoints) is the selection criterion; it needs a selection that chooses (validation or oracle) and
        agrees with ``criterion``."""
        metric = getattr(config, "checkpoint_metric", "")
        if not metric:
            return criterion
        if selection == "fixed":
            raise ConfigError(f"checkpoint metric {metric} chooses among savepoints on validation classes, but "
                              f"--selection fixed chooses nothing: use --selection validation, or keep the savepoints "
                              f"and pick one with zslkit evaluate RUN_DIR --epoch E")
        if criterion not in (None, metric):
            raise ConfigError(f"checkpoint metric {metric} and --criterion {criterion} disagree: the checkpoint "
                              f"metric is the selection criterion (give one of them)")
        return metric


RECIPE = CycleWGANRecipe(CycleWGANConfig, presets="cycle-wgan")
