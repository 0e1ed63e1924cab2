"""cycle-WGAN's configuration: ``CycleWGANConfig`` (every field with its help and bounds), the variants, and the
defaults for data without a preset (``scaled_default``, each rule with its reason)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from zslkit.methods._softmax import HEADS, INITS as CLS_INITS
from zslkit.methods.config import option
from zslkit.methods.cyclewgan.networks import FEATURE_NORMS, GP_ALPHAS, INITS

VARIANTS = ("cycle-wgan", "f-clswgan", "cycle-clswgan", "f-clswgan-reference")
# f-clswgan-reference: f-CLSWGAN with the release's own hyperparameters on any data (presets/cycle_wgan.yaml, entry
# default/f-clswgan-reference); it trains exactly as f-clswgan
REFERENCE_VARIANTS = ("f-clswgan-reference",)
CLS_VARIANTS = ("f-clswgan", "cycle-clswgan", "f-clswgan-reference")  # with the f-CLSWGAN classification loss
CYCLE_VARIANTS = ("cycle-wgan", "cycle-clswgan")  # with the cycle (regression) loss
MODES = ("merge", "replace")
GAN_BATCHES = ("permutation", "independent")  # how a GAN epoch draws its batches (gan.epoch_batches)
MAX_HEADS = 12  # final-classifier settings tried at each validation point (head_space)
REFERENCE_WIDTH = 4096  # the releases' hidden width of G and D
WIDTH_BUDGET = 2 ** 20  # (feature dim + embedding dim) x hidden width up to which the no-preset default widens
CLS_STEP_BUDGET = 500  # optimizer steps of one final classifier in the no-preset default (scaled_default)
# the config fields that change only build_classifier (synthesis + final softmax): part of the classifier cache key
HEAD_FIELDS = ("syn_per_unseen", "syn_per_seen", "mode", "cls_epochs", "cls_lr", "cls_batch", "cls_betas",
               "cls_weight_decay", "cls_head", "cls_lr_decay", "train_fraction", "cls_init")
# validation metrics that can choose among savepoints (zslkit.pipeline.CRITERIA; "" = none)
CHECKPOINT_METRICS = ("", "gzsl_h", "zsl_t1", "gzsl_cs_h")
STAGE_HELP = ("run (train it here), skip{skip}, or an earlier run directory (or its model.pt) whose {what} is "
              "reused (recorded in provenance with the file's sha256)")
STAGES = ("regressor", "aux_classifier", "gan", "final_classifier")  # each has a field <stage>_stage
SKIPPABLE_STAGES = ("regressor", "aux_classifier")  # the generator's extra loss terms


@dataclass
class CycleWGANConfig:
    variant: str = option("cycle-wgan", "cycle-wgan | f-clswgan | cycle-clswgan | f-clswgan-reference (f-clswgan with "
                          "the f-CLSWGAN release's hyperparameters on any data)", choices=VARIANTS)
    # GAN
    epochs: int = option(30, "GAN epochs (validation selection picks this)", min=1)
    batch_size: int = option(64, "GAN batch size", min=1)
    hidden_g: int = option(4096, "generator hidden width", min=1)
    hidden_d: int = option(4096, "critic hidden width", min=1)
    noise_dim: int = option(0, "noise dimension (0: the embedding dimension)", min=0)
    leaky_slope: float = option(0.2, "LeakyReLU slope of G and D", min=0)
    lr_g: float = option(1e-4, "generator Adam learning rate", above=0)
    lr_d: float = option(1e-3, "critic Adam learning rate", above=0)
    lr_decay_g: float = option(0.0, "inverse-time decay lr / (1 + decay * epoch), advanced once per epoch (all "
                               "*_lr_decay)", min=0)
    lr_decay_d: float = option(0.0, "critic inverse-time lr decay", min=0)
    betas_g: tuple = option((0.5, 0.999), "generator Adam betas", item=float, min=0, below=1)
    betas_d: tuple = option((0.5, 0.999), "critic Adam betas", item=float, min=0, below=1)
    n_critic: int = option(1, "critic steps per generator step (cycle-WGAN reference: 1; f-CLSWGAN: 5)", min=1)
    gp_lambda: float = option(10.0, "gradient-penalty weight", min=0)
    gp_alpha: str = option("sample", "sample: one interpolation weight per sample (f-CLSWGAN) | element (cycle-WGAN)",
                           choices=GP_ALPHAS)
    gan_init: str = option("normal", "normal: N(0, 0.02) (f-CLSWGAN) | xavier: Glorot uniform (cycle-WGAN), also R",
                           choices=INITS)
    gan_batches: str = option("permutation", "permutation: floor(N / batch) generator steps per epoch over consecutive "
                              "permutations | independent: ceil(N / batch) steps, every batch drawn on its own "
                              "(f-CLSWGAN's randperm(N)[:batch])", choices=GAN_BATCHES)
    g_ema: float = option(0.0, "> 0: synthesise with an exponential moving average of G's weights (decay per G step)",
                          min=0, below=1)
    r_beta: float = option(0.01, "weight of the cycle (regression) loss", min=0)
    c_beta: float = option(0.01, "weight of the f-CLSWGAN classification loss", min=0)
    train_fraction: float = option(1.0, "share of the training rows used (the cycle-WGAN reference: 0.9, 10 % "
                                   "monitoring)", above=0, max=1)
    # pretrained regressor R: x -> a (cycle variants); Adam betas (0.9, 0.999)
    regressor_epochs: int = option(40, "epochs of the pretrained regressor x -> a (cycle variants)", min=0)
    regressor_lr: float = option(1e-4, "regressor learning rate", above=0)
    regressor_lr_decay: float = option(0.0, "regressor inverse-time lr decay", min=0)
    regressor_batch: int = option(64, "regressor batch size", min=1)
    regressor_weight_decay: float = option(0.0, "regressor weight decay", min=0)
    # pretrained frozen seen-class softmax (f-CLSWGAN loss); its head is cls_head
    pre_cls_epochs: int = option(30, "epochs of the frozen seen-class softmax (f-CLSWGAN loss)", min=0)
    pre_cls_lr: float = option(1e-3, "its learning rate", above=0)
    pre_cls_lr_decay: float = option(0.0, "its inverse-time lr decay", min=0)
    pre_cls_batch: int = option(2048, "its batch size", min=1)
    pre_cls_betas: tuple = option((0.5, 0.999), "its Adam betas", item=float, min=0, below=1)
    # synthesis and the final softmax classifier
    syn_per_unseen: int = option(200, "synthetic features per unseen class", min=0)
    syn_per_seen: int = option(0, "synthetic features per seen class", min=0)
    mode: str = option("merge", "merge: real seen + synthetic; replace: synthetic only", choices=MODES)
    feature_norm: str = option("none", "none | max (one global divisor) | minmax (each dimension to [0, 1])",
                               choices=FEATURE_NORMS)
    cls_epochs: int = option(25, "final softmax classifier epochs", min=0)
    cls_lr: float = option(1e-3, "final classifier learning rate", above=0)
    cls_lr_decay: float = option(0.0, "final classifier inverse-time lr decay", min=0)
    cls_batch: int = option(2048, "final classifier batch size", min=1)
    cls_betas: tuple = option((0.5, 0.999), "final classifier Adam betas", item=float, min=0, below=1)
    cls_weight_decay: float = option(0.0, "final classifier weight decay", min=0)
    cls_head: str = option("linear", "linear: softmax(Wx + b) | relu: softmax(ReLU(Wx + b)) (cycle-WGAN reference)",
                           choices=HEADS)
    cls_init: str = option("uniform", "weights of the linear heads (final and pretrained classifier): uniform (torch's "
                           "default range) | normal: N(0, 0.02) (f-CLSWGAN)", choices=CLS_INITS)
    # validation search over the final classifier (head_space): the product of these lists, each empty = as set
    mode_grid: tuple = option((), "modes tried on validation (head search; empty: as set)", item=str, choices=MODES)
    syn_grid: tuple = option((), "syn_per_unseen values tried on validation", item=int, min=0)
    syn_seen_grid: tuple = option((), "syn_per_seen values tried on validation (the seen classes' share of the "
                                  "final classifier's rows)", item=int, min=0)
    cls_epochs_grid: tuple = option((), "cls_epochs values tried on validation", item=int, min=0)
    cls_lr_grid: tuple = option((), "cls_lr values tried on validation", item=float, above=0)
    # bookkeeping
    eval_every: int = option(0, "monitor every k GAN epochs (0: max(1, epochs // 10)); always after the last", min=0)
    max_critic_loss: float = option(1e6, "|mean critic loss| of an epoch above this counts as divergence", above=0)
    keep_train_features: bool = option(True, "store the real trainval features in the checkpoint (merge after load)")
    # savepoints (the reference's --savepoints) and stages (its --train_reg / --train_cls / --train_gan)
    savepoints: tuple = option((), "GAN epochs whose generator is kept in the checkpoint (zslkit evaluate / synthesize "
                               "--epoch E); validation also scores them", item=int, min=1)
    checkpoint_metric: str = option("", "validation metric that chooses among the savepoints (validation scores the "
                                    "savepoint epochs only; the selection criterion); '' = none",
                                    choices=CHECKPOINT_METRICS)
    regressor_stage: str = option("run", "regressor stage: " + STAGE_HELP.format(
        skip=" (the cycle loss is dropped)", what="pretrained regressor"))
    aux_classifier_stage: str = option("run", "auxiliary classifier stage: " + STAGE_HELP.format(
        skip=" (the classification loss is dropped)", what="pretrained seen-class classifier"))
    gan_stage: str = option("run", "GAN stage: run (train it here) or an earlier run directory (or its model.pt) whose "
                            "generator and critic are reused (no GAN epochs here; sha256 in provenance)")
    final_classifier_stage: str = option("run", "final classifier stage: run (trained on first use, fit_head) or an "
                                         "earlier run whose trained final classifiers are reused (with its GAN)")


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

