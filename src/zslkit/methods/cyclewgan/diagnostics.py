"""Generator diagnostics of cycle-WGAN / f-CLSWGAN: does the generator reproduce the classes it was trained on?

* ``seen_fidelity``: a nearest-class-mean classifier whose class means are those of ``DIAG_PER_CLASS`` synthetic
  features per training class labels real training-class features (per-class mean accuracy; chance is
  1 / number of training classes). The real features are the rows the GAN did not train on when
  ``train_fraction`` < 1, else all training rows (the nearest-mean rule has no capacity to memorise them).
* ``spread_ratio``: the synthetic within-class spread over the real one (mean per-dimension standard deviation,
  averaged over the classes); about 1 for a generator that reproduces the class-conditional distribution.
* ``val_fidelity`` (during validation, ``class_fidelity`` on the validation view's unseen classes): the same
  nearest-mean rule over the validation classes, which the GAN never saw, labelling their real features; chance
  ``val_fidelity_chance`` = 1 / number of validation classes. It measures what the final classifier needs: synthetic
  features of new classes that lie where their real features are.

Both are computed in the model's scaled feature space from their own seeded noise, so they never change the GAN's
random stream or its results. A generator of this kind should reach a fidelity far above chance; near chance
(``near_chance``) means it has not learned even its training classes (issue 18: a 128-wide generator at lr 1e-4).
"""

from __future__ import annotations

import torch

from zslkit.methods.cyclewgan.head import synthesize_rows
from zslkit.protocol.health import FIDELITY_MARGIN
from zslkit.runtime import stream

DIAG_PER_CLASS = 100  # synthetic features per training class for the diagnostics


@torch.no_grad()
def class_fidelity(model, X: torch.Tensor, y: torch.Tensor, E: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per class (rows of ``E`` with real rows in ``X``, labels ``y``): the accuracy of the nearest synthetic
    class mean (``DIAG_PER_CLASS`` per class, own seeded noise) and the synthetic / real within-class spread."""
    K = int(E.shape[0])
    if X is None or X.shape[0] == 0 or K == 0:
        return [], []
    counts = torch.full((K,), DIAG_PER_CLASS, dtype=torch.long, device=X.device)
    fake, lab = synthesize_rows(model._synth_net(), E, counts, model._noise_dim(), int(X.shape[1]),
                                stream(model.seed, "cycle-wgan.diagnostics", X.device))
    fake = fake.view(K, DIAG_PER_CLASS, -1)
    means = fake.mean(1)
    pred = torch.cdist(X, means).argmin(1)
    accs, ratios = [], []
    for k in range(K):
        rows = y == k
        if not bool(rows.any()):
            continue
        accs.append(float((pred[rows] == k).float().mean()))
        real_sd = float(X[rows].std(0, unbiased=False).mean()) if int(rows.sum()) > 1 else 0.0
        if real_sd > 0:
            ratios.append(float(fake[k].std(0, unbiased=False).mean()) / real_sd)
    return accs, ratios


def generator_diagnostics(model, X: torch.Tensor, y: torch.Tensor, E: torch.Tensor) -> dict:
    """``seen_fidelity`` and ``spread_ratio`` of ``model``'s synthesising generator on real features ``X`` (scaled,
    on the device) with labels ``y`` (rows of the training-class embeddings ``E``); {} without rows."""
    accs, ratios = class_fidelity(model, X, y, E)
    if not accs:
        return {}
    out = {"seen_fidelity": sum(accs) / len(accs), "seen_fidelity_chance": 1.0 / int(E.shape[0])}
    if ratios:
        out["spread_ratio"] = sum(ratios) / len(ratios)
    return out


def near_chance(diag: dict) -> bool:
    """Whether a diagnostics dict says the generator's seen-class fidelity is near chance (the health check's
    rule: below ``FIDELITY_MARGIN`` times chance)."""
    return bool(diag) and diag["seen_fidelity"] < FIDELITY_MARGIN * diag["seen_fidelity_chance"]
