"""cycle-WGAN's generative head: synthesise features for a candidate set and train the final softmax on them.

For candidates given by their embeddings (``seen_labels``: the training label of each candidate, -1 for a new
class), ``GenerativeHead.fit`` draws ``syn_per_unseen`` synthetic features per new class and, per training class,
its real training features plus ``syn_per_seen`` synthetic ones (``mode: merge``) or synthetic ones only
(``replace``), then trains the softmax (``zslkit.methods.cyclewgan.softmax``). Trained heads are cached by candidate set and
head settings (``HEAD_FIELDS``), the last ``CACHE_SIZE`` of them, and saved in the checkpoint; the cache is
cleared whenever the generator changes.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from zslkit.errors import ConfigError
from zslkit.methods.cyclewgan.softmax import SoftmaxClassifier, train_softmax
from zslkit.methods.base import cpu_copy
from zslkit.methods.cyclewgan.config import HEAD_FIELDS
from zslkit.runtime import stream

log = logging.getLogger("zslkit.methods.cyclewgan")

SYNTH_CHUNK = 16384  # rows per generator forward pass during synthesis
CACHE_SIZE = 4  # trained final classifiers kept (e.g. the ZSL and GZSL heads of the test evaluation)


@torch.no_grad()
def synthesize_rows(net: nn.Module, E: torch.Tensor, counts: torch.Tensor, noise_dim: int, feature_dim: int,
                    gen: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``counts[i]`` generated features for each row ``i`` of ``E`` (in the model's scaled space), grouped by row,
    and their row labels; noise from ``gen``."""
    labels = torch.repeat_interleave(torch.arange(E.shape[0], device=E.device), counts)
    z = torch.randn(labels.shape[0], noise_dim, generator=gen, device=E.device)
    out = torch.empty(labels.shape[0], feature_dim, device=E.device)
    for s in range(0, labels.shape[0], SYNTH_CHUNK):
        out[s:s + SYNTH_CHUNK] = net(E[labels[s:s + SYNTH_CHUNK]], z[s:s + SYNTH_CHUNK])
    return out, labels


class GenerativeHead:
    """The trained final classifiers of one model, by candidate set and head settings."""

    def __init__(self):
        self.cache: OrderedDict[str, SoftmaxClassifier] = OrderedDict()

    def __len__(self) -> int:
        return len(self.cache)

    def clear(self) -> None:
        self.cache.clear()

    @staticmethod
    def key(cfg, candidate_embeddings: np.ndarray, seen_labels: np.ndarray) -> str:
        head = repr(tuple(getattr(cfg, f) for f in HEAD_FIELDS))  # a head (head_space entry) changes these
        return hashlib.sha1(candidate_embeddings.tobytes() + seen_labels.tobytes()
                            + str(candidate_embeddings.shape).encode() + head.encode()).hexdigest()

    def fit(self, model, candidate_embeddings: np.ndarray, seen_labels: np.ndarray | None, cfg=None
            ) -> SoftmaxClassifier:
        """The cached classifier for these candidates and the head settings of ``cfg`` (None: ``model.config_``),
        else a new one: synthesis from ``model``'s generator (noise seeded from the model seed) and the softmax
        trained on it."""
        cfg, dev = cfg if cfg is not None else model.config_, model.device_
        sl = (np.full(candidate_embeddings.shape[0], -1, np.int64) if seen_labels is None
              else np.asarray(seen_labels, np.int64))
        key = self.key(cfg, candidate_embeddings, sl)
        if key in self.cache:
            self.cache.move_to_end(key)
            return self.cache[key]
        K = candidate_embeddings.shape[0]
        is_seen = sl >= 0
        have_real = getattr(model, "train_X_", None) is not None
        merge = cfg.mode == "merge" and is_seen.any()
        if merge and not have_real:
            warnings.warn("cycle-wgan: mode 'merge' but this model has no real training features (saved with "
                          "keep_train_features=False); using synthetic features for the seen candidates",
                          RuntimeWarning, stacklevel=4)
            merge = False
        seen_syn = cfg.syn_per_seen if (merge or cfg.syn_per_seen > 0) else cfg.syn_per_unseen
        counts = np.where(is_seen, seen_syn, cfg.syn_per_unseen).astype(np.int64)
        E = torch.as_tensor(candidate_embeddings, device=dev)
        xs, ys = synthesize_rows(model._synth_net(), E, torch.as_tensor(counts, device=dev), model._noise_dim(),
                                 model.feature_dim_, stream(model.seed, "cycle-wgan.synthesis", dev))
        n_syn = int(xs.shape[0])
        if merge:
            lut = np.full(model.num_train_classes_, -1, np.int64)
            lut[sl[is_seen]] = np.flatnonzero(is_seen)
            cand = torch.as_tensor(lut, device=dev)[model.train_y_]
            keep = cand >= 0
            xs = torch.cat([model.train_X_[keep], xs])
            ys = torch.cat([cand[keep], ys])
        if xs.shape[0] == 0:
            raise ConfigError("cycle-wgan: no training samples for the final classifier (syn_per_unseen = 0?)")
        log.info("%s: training the final classifier for %d candidates (%d synthetic + %d real features, %d epochs)",
                 model.name, K, n_syn, int(xs.shape[0]) - n_syn, cfg.cls_epochs)
        layer = train_softmax(xs, ys, K, epochs=cfg.cls_epochs, lr=cfg.cls_lr, batch_size=cfg.cls_batch,
                              betas=cfg.cls_betas, weight_decay=cfg.cls_weight_decay, head=cfg.cls_head,
                              lr_decay=cfg.cls_lr_decay, fraction=cfg.train_fraction,
                              generator=stream(model.seed, "cycle-wgan.final_classifier", dev), init=cfg.cls_init)
        clf = model._classifier(layer, cfg.cls_head)
        self.cache[key] = clf
        while len(self.cache) > CACHE_SIZE:
            self.cache.popitem(last=False)
        return clf

    def state(self) -> dict:
        """The trained classifiers (CPU tensors), for the checkpoint: a reloaded model, on any device, scores
        those candidates exactly as before instead of retraining them from device-dependent synthesis noise."""
        return {key: {**cpu_copy(dict(clf.layer.state_dict())), "head": clf.head} for key, clf in self.cache.items()}

    def load_state(self, model, state: dict | None) -> None:
        self.cache.clear()
        for key, head in (state or {}).items():
            layer = nn.Linear(head["weight"].shape[1], head["weight"].shape[0]).to(model.device_)
            with torch.no_grad():
                layer.weight.copy_(head["weight"])
                layer.bias.copy_(head["bias"])
            self.cache[key] = model._classifier(layer, head.get("head", "linear"))
