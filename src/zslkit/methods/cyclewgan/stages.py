"""cycle-WGAN's pretraining stages: the regressor R (x -> a, the cycle loss) and the seen-class classifier C (the
f-CLSWGAN classification loss), both trained with the one supervised loop (``_softmax.train_minibatches``) and then
frozen."""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from zslkit.errors import TrainingDivergedError
from zslkit.methods._optim import make_adam
from zslkit.methods._softmax import train_minibatches, train_softmax
from zslkit.methods.cyclewgan.networks import init_linear
from zslkit.runtime import make_generator


def pretrain_regressor(model, X: torch.Tensor, A: torch.Tensor) -> None:
    """Train ``model.R_`` on features ``X`` -> their class embeddings ``A`` with MSE, then freeze it."""
    cfg, R = model.config_, model.R_
    gen = torch.Generator().manual_seed(model.seed + 1)
    if cfg.gan_init == "xavier":
        init_linear(R, gen, "xavier")
    else:
        with torch.no_grad():  # torch's default uniform range, from the injected generator
            bound = 1.0 / math.sqrt(X.shape[1])
            R.weight.copy_((torch.rand(R.weight.shape, generator=gen) * 2 - 1) * bound)
            R.bias.zero_()
    opt = make_adam(R.parameters(), cfg.regressor_lr, weight_decay=cfg.regressor_weight_decay)
    last = train_minibatches(opt, lambda idx: F.mse_loss(R(X[idx]), A[idx]), X.shape[0],
                             epochs=cfg.regressor_epochs, batch_size=cfg.regressor_batch, lr=cfg.regressor_lr,
                             lr_decay=cfg.regressor_lr_decay, generator=make_generator(model.seed + 1, model.device_),
                             device=model.device_)
    R.requires_grad_(False)
    model.regressor_loss_ = 0.0 if last is None else float(last)
    if not math.isfinite(model.regressor_loss_):
        raise TrainingDivergedError(f"{model.name}: regressor pretraining diverged (loss {model.regressor_loss_}); "
                                    f"lower regressor_lr ({cfg.regressor_lr:g})")


def pretrain_aux_classifier(model, X: torch.Tensor, y: torch.Tensor, num_classes: int) -> None:
    """Train ``model.C_``, the frozen seen-class softmax of the classification loss (head ``cls_head``)."""
    cfg = model.config_
    model.C_ = train_softmax(X, y, num_classes, epochs=cfg.pre_cls_epochs, lr=cfg.pre_cls_lr,
                             batch_size=cfg.pre_cls_batch, betas=cfg.pre_cls_betas, head=cfg.cls_head,
                             lr_decay=cfg.pre_cls_lr_decay, generator=make_generator(model.seed + 2, model.device_))
