"""cycle-WGAN's configuration: ``CycleWGANConfig`` (every field with its help and bounds) and the variants. The
defaults for data without a preset and the validation head search are its recipe (:mod:`.recipe`)."""

from __future__ import annotations

from dataclasses import dataclass

from zslkit.methods.config import option
from zslkit.methods.cyclewgan.networks import FEATURE_NORMS, GP_ALPHAS, INITS
from zslkit.methods.cyclewgan.softmax import HEADS, INITS as CLS_INITS
from zslkit.protocol.criteria import CRITERIA

VARIANTS = ("cycle-wgan", "f-clswgan", "cycle-clswgan", "f-clswgan-reference")
# f-clswgan-reference: f-CLSWGAN with the release's own hyperparameters on any data (presets/cycle_wgan.yaml, entry
# default/f-clswgan-reference); it trains exactly as f-clswgan
REFERENCE_VARIANTS = ("f-clswgan-reference",)
CLS_VARIANTS = ("f-clswgan", "cycle-clswgan", "f-clswgan-reference")  # with the f-CLSWGAN classification loss
CYCLE_VARIANTS = ("cycle-wgan", "cycle-clswgan")  # with the cycle (regression) loss
MODES = ("merge", "replace")
GAN_BATCHES = ("permutation", "independent")  # how a GAN epoch draws its batches (gan.epoch_batches)
# the config fields that change only build_classifier (synthesis + final softmax): part of the classifier cache key
HEAD_FIELDS = ("syn_per_unseen", "syn_per_seen", "mode", "cls_epochs", "cls_lr", "cls_batch", "cls_betas",
               "cls_weight_decay", "cls_head", "cls_lr_decay", "train_fraction", "cls_init")
CHECKPOINT_METRICS = ("", *CRITERIA)  # validation metrics that can choose among savepoints ("" = none)
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
