"""CVC-ZSL: Li, Min, Fu, "Rethinking Zero-Shot Learning: A Conditional Visual Classification
Perspective", ICCV 2019 (reference code: kailigo/cvcZSL; facts carried over, code written here).

A classifier generator g (MLP: class embedding -> hidden 1600, ReLU -> feature dim, ReLU) turns a class
description into a visual-space classifier; samples are scored with a cosine classifier
``scale * (cos(x, g(a_c)) + bias)`` (learnable scale, init 10, and bias, init 0). Training is episodic on
the seen classes (``ways`` classes x ``shots`` samples, episode-local cross-entropy).

* ZSL: argmax over the generated unseen-class classifiers.
* GZSL: seen and unseen classifiers concatenated, one argmax. ``gzsl_seen_classifiers`` chooses the seen
  rows: ``"generated"`` (g(a_seen), what the reference inductive code does; default for inductive runs) or
  ``"learned"`` (free per-class rows: in inductive runs initialised from g(a_seen) and fine-tuned on the seen
  data after the generator is trained; in transductive runs the free rows of the self-training stage).
* Transductive: start from an inductive generator, keep free rows for all classes initialised from it
  (learning without forgetting), every ``refresh`` epochs pseudo-label the unlabeled unseen features, and
  train on seen episodes (cross-entropy over all classes) plus pseudo-labelled unseen samples
  (generalized cross-entropy, :func:`generalized_cross_entropy`), weighted by sample counts.

See docs/methods/cvc_zsl.md for the details, presets and differences from the reference code.
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from zslkit.errors import ConfigError, TrainingDivergedError
from zslkit.methods._episodes import EpisodeSampler, local_labels
from zslkit.methods._optim import make_adam, set_lr
from zslkit.methods.base import CandidateClassifier, ZSLMethod, cpu_copy
from zslkit.methods.config import make_config, option
from zslkit.methods.registry import register
from zslkit.runtime import make_generator

log = logging.getLogger("zslkit.methods.cvc")

GZSL_SEEN_MODES = ("generated", "learned")
OVERFLOW_MODES = ("error", "clip")
EVAL_BATCH = 8192
SAMPLE_CHUNK = 256  # episodes drawn per sampler call (bounds the index tables' memory)


@dataclass
class CVCConfig:
    # --- architecture (reference: hidden_dim 1600, N(0, 0.02) weights, zero biases, scale 10, bias 0)
    hidden_dim: int = option(1600, "hidden width of the classifier generator", min=1)
    init_std: float = option(0.02, "std of the generator's normal weight init", min=0)
    scale_init: float = option(10.0, "initial scale of the cosine classifier")
    bias_init: float = option(0.0, "initial bias of the cosine classifier")
    # --- episodic training: inductive runs, and the inductive stage of transductive runs
    ways: int = option(32, "classes per training episode", min=1)
    shots: int = option(4, "samples per class per episode", min=1)
    lr: float = option(1e-5, "Adam learning rate (inductive)", above=0)
    weight_decay: float = option(1e-3, "Adam weight decay (inductive)", min=0)
    step_size: int = option(200, "StepLR period in epochs (inductive)", min=1)
    lr_gamma: float = option(0.5, "StepLR factor", above=0)
    grad_clip: float = option(1.0, "gradient-norm clipping (0: off)", min=0)
    epochs: int = option(1000, "inductive: training epochs; transductive: self-training epochs (selected on validation)",
                         min=0)
    episodes: int = option(1000, "episodes per epoch", min=1)
    eval_every: int = option(1, "monitor period in epochs (validation selection picks among these epochs)", min=1)
    episode_overflow: str = option("error", "ways/shots beyond the data: error (ConfigError) or clip (warn)",
                                   choices=OVERFLOW_MODES)
    # --- GZSL seen-class rows
    gzsl_seen_classifiers: str = option("generated", "GZSL seen-class rows: generated from embeddings, or learned "
                                        "free rows", choices=GZSL_SEEN_MODES)
    finetune_episodes: int = option(300, "learned (inductive): episodes fine-tuning the free seen rows", min=0)
    finetune_lr: float = option(1e-3, "learning rate of that fine-tuning", above=0)
    # --- transductive self-training stage
    inductive_epochs: int = option(1000, "transductive: inductive warm-up epochs before self-training", min=0)
    inductive_checkpoint: str = option("", "transductive: start from this saved cvc-zsl model instead of a warm-up")
    trans_ways: int = option(32, "seen classes per self-training episode", min=1)
    trans_shots: int = option(4, "samples per seen class per self-training episode", min=1)
    pseudo_shots: int = option(0, "pseudo-labelled samples per unseen class per episode (0: trans_shots)", min=0)
    trans_lr: float = option(1e-5, "Adam learning rate (self-training)", above=0)
    trans_weight_decay: float = option(1e-3, "Adam weight decay (self-training)", min=0)
    trans_step_size: int = option(200, "StepLR period in epochs (self-training)", min=1)
    trans_grad_clip: float = option(0.0, "gradient-norm clipping in self-training (the reference: none)", min=0)
    refresh: int = option(10, "re-pseudo-label every this many epochs", min=1)
    ratio_threshold: float = option(1.2, "keep a pseudo label when |top-1 score| / |top-2 score| exceeds this")
    topk_per_class: int = option(5, "plus the k highest-scoring unlabeled samples of every unseen class", min=0)
    gce_q: float = option(0.5, "generalized cross-entropy exponent (q -> 0: cross-entropy)", min=0)
    # --- speed
    cuda_graphs: bool = option(True, "CUDA only: capture the inductive training step as a CUDA graph")
    graph_episodes: int = option(8, "CUDA only: training steps per captured CUDA graph (unrolled)", min=1)
    tf32: bool = option(False, "CUDA only: TensorFloat-32 matmuls in training steps (faster, 10-bit mantissa)")
    lr_grid: tuple = option((), "learning rates tried during validation selection (empty: only the config's)",
                            item=float, above=0)
    validation_patience: float = option(0.0, "validation fits stop after this fraction of their epochs without a "
                                        "better validation point (0: never)", min=0)


# --------------------------------------------------------------------------------------------------
# building blocks


def generalized_cross_entropy(logits: torch.Tensor, target: torch.Tensor, q: float) -> torch.Tensor:
    """Mean generalized cross-entropy (Lq loss, Zhang & Sabuncu 2018): ``(1 - p_y^q) / q``.

    Computed as ``-expm1(q * log p_y) / q`` from ``log_softmax``, which is exact for small q and tends to the
    cross-entropy ``-log p_y`` as q -> 0 (q == 0 returns the cross-entropy itself).
    """
    logp = F.log_softmax(logits, dim=1).gather(1, target.view(-1, 1)).squeeze(1)
    if q == 0:
        return -logp.mean()
    if q < 0:
        raise ConfigError(f"gce_q must be >= 0, got {q}")
    return (-torch.expm1(q * logp) / q).mean()


def cosine_scores(x_normed: torch.Tensor, weights: torch.Tensor, scale: torch.Tensor,
                  bias: torch.Tensor) -> torch.Tensor:
    """``scale * (x_hat . w_hat + bias)`` for L2-normalised samples ``x_normed`` against weight rows."""
    w = F.normalize(weights, p=2, dim=1, eps=1e-12)
    return scale * (x_normed @ w.T + bias)


class ClassifierGenerator(nn.Module):
    """g(a) = relu(relu(a W1 + b1) W2 + b2), plus the cosine classifier's scale and bias."""

    def __init__(self, embedding_dim: int, hidden_dim: int, feature_dim: int, *, init_std: float = 0.02,
                 scale_init: float = 10.0, bias_init: float = 0.0, seed: int | None = None):
        super().__init__()
        gen = torch.Generator().manual_seed(int(seed)) if seed is not None else None
        # initialised on the CPU from a seeded generator: identical start on every device
        self.w1 = nn.Parameter(torch.randn(embedding_dim, hidden_dim, generator=gen) * init_std)
        self.b1 = nn.Parameter(torch.zeros(hidden_dim))
        self.w2 = nn.Parameter(torch.randn(hidden_dim, feature_dim, generator=gen) * init_std)
        self.b2 = nn.Parameter(torch.zeros(feature_dim))
        self.scale = nn.Parameter(torch.full((1,), float(scale_init)))
        self.bias = nn.Parameter(torch.full((1,), float(bias_init)))

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        return F.relu(torch.addmm(self.b2, F.relu(torch.addmm(self.b1, emb, self.w1)), self.w2))

    def scores(self, x_normed: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return cosine_scores(x_normed, weights, self.scale, self.bias)


@contextlib.contextmanager
def tf32_matmuls(enabled: bool, device: torch.device):
    """Inside: float32 matmuls on ``device`` may use TF32 tensor cores (CUDA only; the previous setting
    comes back on exit). Evaluation never runs inside, so scores and selection stay in full float32."""
    if not enabled or device.type != "cuda":
        yield
        return
    matmul = torch.backends.cuda.matmul
    key, value = ("fp32_precision", "tf32") if hasattr(matmul, "fp32_precision") else ("allow_tf32", True)
    before = getattr(matmul, key)  # (torch < 2.9 has only the legacy allow_tf32 switch)
    setattr(matmul, key, value)
    try:
        yield
    finally:
        setattr(matmul, key, before)


def step_lr(base: float, gamma: float, step_size: int, epoch: int) -> float:
    """StepLR as a pure function of the (0-based) epoch: the schedule never depends on the total epochs."""
    return base * gamma ** (epoch // max(1, step_size))


def pseudo_label(scores: torch.Tensor, ratio: float, topk: int) -> torch.Tensor:
    """Pseudo labels (or -1) of unlabeled samples from their scores against the unseen classes.

    Kept: samples whose top-1/top-2 score ratio (of magnitudes, as the reference computes it) exceeds
    ``ratio``, labelled with their argmax; plus, for every class, the ``topk`` samples scoring highest
    for it. A sample in both sets keeps its argmax; a sample among the top-k of several classes (and not
    confident) takes the one it scores highest. Each sample is used at most once.
    """
    n, k = scores.shape
    pred = scores.argmax(1)
    if k >= 2:
        top2 = scores.topk(2, dim=1).values.abs()
        hi, lo = top2.max(1).values, top2.min(1).values
        confident = hi > ratio * lo
    else:
        confident = torch.ones(n, dtype=torch.bool, device=scores.device)
    mask = torch.zeros_like(scores, dtype=torch.bool)
    kk = min(int(topk), n)
    if kk > 0:
        top_idx = scores.topk(kk, dim=0).indices  # kk x k
        mask[top_idx, torch.arange(k, device=scores.device).expand(kk, k)] = True
    in_topk = mask.any(1)
    topk_label = scores.masked_fill(~mask, float("-inf")).argmax(1)
    labels = torch.where(confident, pred, topk_label)
    return torch.where(confident | in_topk, labels, torch.full_like(labels, -1))


class CVCClassifier(CandidateClassifier):
    """Cosine scores against a fixed stack of (already normalised) candidate weight rows."""

    def __init__(self, weights_normed: torch.Tensor, scale: float, bias: float, device: torch.device):
        self.weights = weights_normed
        self.scale = float(scale)
        self.bias = float(bias)
        self.device = device

    @torch.no_grad()
    def decision_function(self, X: np.ndarray) -> np.ndarray:
        out = np.empty((X.shape[0], self.weights.shape[0]), dtype=np.float32)
        for i in range(0, X.shape[0], EVAL_BATCH):
            x = torch.as_tensor(np.ascontiguousarray(X[i:i + EVAL_BATCH]), dtype=torch.float32).to(self.device)
            x = F.normalize(x, p=2, dim=1, eps=1e-12)
            out[i:i + x.shape[0]] = (self.scale * (x @ self.weights.T + self.bias)).cpu().numpy()
        return out


# --------------------------------------------------------------------------------------------------
# the inductive training step (eager, or replayed as a CUDA graph)


class _InductiveStep:
    """Episodes of the inductive stage: generate the episode's classifiers, cosine scores, CE, clip, Adam.

    Eager on the CPU. On CUDA (``cuda_graphs``), after a few eager warm-up episodes on a side stream, a
    block of ``graph_episodes`` consecutive training steps (forward, backward, clipping, fused capturable
    Adam, unrolled) is captured once as a CUDA graph and replayed with the next block's indices copied
    into static buffers; an epoch's leftover episodes (fewer than a block) run eagerly. Every step starts
    with the gradients set to None, so backward writes fresh gradient tensors (inside the graph: from its
    private memory pool, at the same addresses on every replay) instead of zeroing and accumulating.
    """

    WARMUP = 3

    def __init__(self, net: ClassifierGenerator, X: torch.Tensor, E: torch.Tensor, ways: int, shots: int,
                 optimizer, clip: float, use_graph: bool, graph_episodes: int = 8):
        self.net, self.X, self.E, self.opt, self.clip = net, X, E, optimizer, float(clip)
        self.params = list(net.parameters())
        self.labels = local_labels(ways, shots, X.device)
        self.loss_sum = torch.zeros((), device=X.device)
        self.use_graph = use_graph
        self.block = max(1, int(graph_episodes))
        self.graph = None
        self.calls = 0
        if use_graph:
            self.static_idx = torch.zeros(self.block, ways * shots, dtype=torch.int64, device=X.device)
            self.static_cls = torch.zeros(self.block, ways, dtype=torch.int64, device=X.device)
            self.stream = torch.cuda.Stream(device=X.device)

    def _body(self, idx: torch.Tensor, cls: torch.Tensor) -> None:
        x = self.X.index_select(0, idx)
        w = self.net(self.E.index_select(0, cls))
        loss = F.cross_entropy(self.net.scores(x, w), self.labels)
        loss.backward()
        if self.clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.clip, foreach=True)
        self.opt.step()
        self.loss_sum.add_(loss.detach())

    def _step(self, idx: torch.Tensor, cls: torch.Tensor) -> None:
        self.opt.zero_grad(set_to_none=True)
        self._body(idx, cls)

    def _capture(self) -> bool:
        try:
            graph = torch.cuda.CUDAGraph()
            self.opt.zero_grad(set_to_none=True)  # release the eager gradients before capture begins
            with torch.cuda.graph(graph):
                for k in range(self.block):
                    self._step(self.static_idx[k], self.static_cls[k])
        except Exception as exc:  # pragma: no cover - depends on the CUDA stack
            log.warning("CUDA graph capture failed (%s: %s); continuing eagerly", type(exc).__name__, exc)
            self.use_graph = False
            return False
        self.graph = graph
        return True

    def run(self, idx: torch.Tensor, cls: torch.Tensor) -> None:
        """Train on the episodes ``idx`` (n x ways*shots) / ``cls`` (n x ways), in order."""
        n, e = idx.shape[0], 0
        while e < n:
            if self.use_graph and self.calls >= self.WARMUP and n - e >= self.block:
                self.static_idx.copy_(idx[e:e + self.block])
                self.static_cls.copy_(cls[e:e + self.block])
                if self.graph is not None or self._capture():
                    self.graph.replay()  # (capture itself does not run the steps)
                    e += self.block
                    continue
            if self.use_graph and self.graph is None:  # warm-up before capture: on a side stream
                self.stream.wait_stream(torch.cuda.current_stream(self.X.device))
                with torch.cuda.stream(self.stream):
                    self._step(idx[e], cls[e])
                torch.cuda.current_stream(self.X.device).wait_stream(self.stream)
            else:
                self._step(idx[e], cls[e])
            self.calls += 1
            e += 1


# --------------------------------------------------------------------------------------------------
# the estimator


@register
class CVCZSL(ZSLMethod):
    name = "cvc-zsl"
    config_class = CVCConfig
    settings = ("inductive", "transductive")
    epochs_field = "epochs"
    description = ("CVC-ZSL (Li, Min, Fu, ICCV 2019): episodic classifier generator with a cosine classifier; "
                   "inductive and transductive (pseudo labels + generalized cross-entropy)")

    def _episode_shape(self, sampler: EpisodeSampler, ways: int, shots: int, what: str) -> tuple[int, int]:
        """(ways, shots) that the data allows: ConfigError, or clipped with a warning (episode_overflow)."""
        if self.config_.episode_overflow == "clip":
            new_ways, new_shots = min(ways, sampler.num_available), min(shots, sampler.min_count)
            warned = self.__dict__.setdefault("_clip_warned", set())
            if (new_ways, new_shots) != (ways, shots) and (what, ways, shots) not in warned:
                warned.add((what, ways, shots))  # once per fit and stage, not at every fine-tuning
                log.warning("%s episodes of %d ways x %d shots do not fit the training data (%d classes, smallest "
                            "has %d samples): clipped to %d x %d (episode_overflow='clip')", what, ways, shots,
                            sampler.num_available, sampler.min_count, new_ways, new_shots)
            ways, shots = new_ways, new_shots
        sampler.check(ways, shots)
        return ways, shots

    # ----- training ----------------------------------------------------------------------------------
    def _fit(self, X, y, class_embeddings, *, unlabeled, unlabeled_embeddings, context) -> None:
        cfg, dev = self.config_, self.device_
        self.transductive_ = unlabeled is not None
        self.seen_rows_ = None
        self.seen_rows_source_ = None
        self._rows_epoch = None
        self.free_rows_ = None
        self._pool = None  # (sampler over the kept samples, their indices into U, classes present)
        self._pool_labels = self._pool_index = None
        self.history_ = []
        self._last_metrics = None
        Xn = F.normalize(torch.as_tensor(X, device=dev), p=2, dim=1, eps=1e-12)
        yt = torch.as_tensor(y, device=dev)
        E = torch.as_tensor(class_embeddings, device=dev)
        sampler = EpisodeSampler(yt, E.shape[0])
        self._gen = make_generator(self.seed * 2 + 1, dev)
        self.net_ = ClassifierGenerator(E.shape[1], cfg.hidden_dim, Xn.shape[1], init_std=cfg.init_std,
                                        scale_init=cfg.scale_init, bias_init=cfg.bias_init, seed=self.seed).to(dev)
        self._stage, self._epochs_done, self._opt, self._pending_opt = "inductive", 0, None, None
        resume = context.resume_state
        if resume is not None:  # continue an interrupted fit exactly where its checkpoint left it
            if bool(resume.get("transductive")) != self.transductive_:
                raise ConfigError("cvc-zsl: the training state to resume comes from a "
                                  f"{'transductive' if resume.get('transductive') else 'inductive'} fit, this fit is "
                                  f"{'transductive' if self.transductive_ else 'inductive'}")
            self.restore_training_state(resume)
        bar = self._progress_bar(unlabeled is not None)
        if bar is not None and resume is not None:
            done = self._epochs_done + (cfg.inductive_epochs if self._stage == "transductive"
                                        and not cfg.inductive_checkpoint else 0)
            bar.update(done * cfg.episodes)
        try:
            if unlabeled is None:
                self._train_inductive(Xn, yt, E, sampler, cfg.epochs, context, bar)
                if cfg.gzsl_seen_classifiers == "learned" and self._rows_epoch != cfg.epochs:
                    self._finetune_seen_rows(Xn, yt, E, sampler)
            else:
                if self._stage == "inductive":
                    if cfg.inductive_checkpoint:
                        self._load_inductive(cfg.inductive_checkpoint)
                    else:
                        warmup = replace(context, monitor=None)  # checkpoints, no validation points
                        self._train_inductive(Xn, yt, E, sampler, cfg.inductive_epochs, warmup, bar)
                U = F.normalize(torch.as_tensor(unlabeled, device=dev), p=2, dim=1, eps=1e-12)
                EU = torch.as_tensor(unlabeled_embeddings, device=dev)
                self._train_transductive(Xn, yt, E, sampler, U, EU, context, bar)
        finally:
            if bar is not None:
                bar.close()
        self._opt = self._pending_opt = None  # optimizer state is only needed while training

    def _progress_bar(self, transductive: bool):
        if not self.progress:
            return None
        from tqdm.auto import tqdm

        c = self.config_
        total = c.episodes * (c.epochs + (c.inductive_epochs if transductive and not c.inductive_checkpoint else 0))
        return tqdm(total=total, unit="episode", desc=f"{self.name}", dynamic_ncols=True)

    def _bar_update(self, bar, n: int, phase: str, epoch: int, loss: float) -> None:
        if bar is None:
            return
        post = {"phase": phase, "epoch": epoch, "loss": f"{loss:.4f}"}
        if self._last_metrics:
            for key in ("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h"):
                if key in self._last_metrics:
                    post[f"val_{key}"] = f"{self._last_metrics[key]:.3f}"
        bar.set_postfix(post, refresh=False)
        bar.update(n)

    def _end_epoch(self, epoch: int, context, evaluate: bool) -> None:
        """Monitor (at evaluation points) and checkpoint hook, via ``ZSLMethod._epoch_done``."""
        met = self._epoch_done(epoch, context, evaluate=evaluate and context.monitor is not None)
        if met:
            self._last_metrics = {k: float(v) for k, v in met.items()
                                  if isinstance(v, (int, float)) and not isinstance(v, bool)}

    def _log_epoch(self, phase: str, epoch: int, loss: float, lr: float, **extra) -> None:
        self.history_.append({"epoch": int(epoch), "phase": phase, "loss": float(loss), "lr": float(lr),
                              "scale": float(self.net_.scale.detach()), **extra})

    def _check_loss(self, loss: float, phase: str, epoch: int) -> None:
        if not math.isfinite(loss):
            raise TrainingDivergedError(f"cvc-zsl {phase} training: the loss became {loss} in epoch {epoch} "
                                        f"(lower the learning rate)")

    def _make_optimizer(self, params, lr: float, weight_decay: float, capturable: bool = False):
        """The stage's Adam; a resumed fit loads the checkpoint's optimizer state into it (once)."""
        opt = make_adam(params, lr, weight_decay=weight_decay, capturable=capturable)
        if self._pending_opt is not None:
            lrs = [g["lr"] for g in opt.param_groups]  # keep the (possibly device-tensor) lr objects
            opt.load_state_dict(self._pending_opt)
            for group, lr_obj in zip(opt.param_groups, lrs):
                group["lr"] = lr_obj
            self._pending_opt = None
        self._opt = opt
        return opt

    def _train_inductive(self, Xn, yt, E, sampler, epochs: int, context, bar) -> None:
        cfg, dev = self.config_, self.device_
        ways, shots = self._episode_shape(sampler, cfg.ways, cfg.shots, "inductive")
        use_graph = bool(cfg.cuda_graphs and dev.type == "cuda")
        opt = self._make_optimizer(self.net_.parameters(), cfg.lr, cfg.weight_decay, capturable=use_graph)
        step = _InductiveStep(self.net_, Xn, E, ways, shots, opt, cfg.grad_clip, use_graph, cfg.graph_episodes)
        self.net_.train()
        for epoch in range(self._epochs_done, epochs):
            lr = step_lr(cfg.lr, cfg.lr_gamma, cfg.step_size, epoch)
            set_lr(opt, lr)
            step.loss_sum.zero_()
            done = 0
            while done < cfg.episodes:
                n = min(SAMPLE_CHUNK, cfg.episodes - done)
                idx, cls = sampler.sample(n, ways, shots, self._gen)
                with tf32_matmuls(cfg.tf32, dev):
                    step.run(idx, cls)
                done += n
            loss = float(step.loss_sum) / cfg.episodes
            self._check_loss(loss, "inductive", epoch + 1)
            self._bar_update(bar, cfg.episodes, "inductive", epoch + 1, loss)
            self._epochs_done = epoch + 1
            self._log_epoch("inductive", epoch + 1, loss, lr)
            evaluate = context.monitor is not None and ((epoch + 1) % cfg.eval_every == 0 or epoch + 1 == epochs)
            if evaluate and cfg.gzsl_seen_classifiers == "learned":
                self._finetune_seen_rows(Xn, yt, E, sampler)
                self._rows_epoch = epoch + 1
            self._end_epoch(epoch + 1, context, evaluate)
        self.net_.eval()

    def _finetune_seen_rows(self, Xn, yt, E, sampler) -> None:
        """"learned" GZSL seen rows (inductive): free rows initialised from g(a_seen) and fine-tuned with
        all-seen-class cross-entropy on seen episodes; generator, scale and bias frozen (so seen and unseen
        scores stay on one scale). A pure function of the generator state (own seeded sampler stream)."""
        cfg, dev = self.config_, self.device_
        net = self.net_
        with torch.no_grad():
            rows = net(E).detach().clone()
        rows.requires_grad_(True)
        if cfg.finetune_episodes > 0:
            ways, shots = self._episode_shape(sampler, cfg.ways, cfg.shots, "fine-tuning")
            gen = make_generator(self.seed * 2 + 7919, dev)
            opt = make_adam([rows], cfg.finetune_lr)
            scale, bias = net.scale.detach(), net.bias.detach()
            done = 0
            while done < cfg.finetune_episodes:
                n = min(SAMPLE_CHUNK, cfg.finetune_episodes - done)
                idx, _ = sampler.sample(n, ways, shots, gen)
                with tf32_matmuls(cfg.tf32, dev):
                    for e in range(n):
                        i = idx[e]
                        loss = F.cross_entropy(cosine_scores(Xn.index_select(0, i), rows, scale, bias),
                                               yt.index_select(0, i))
                        opt.zero_grad(set_to_none=True)
                        loss.backward()
                        opt.step()
                done += n
        self.seen_rows_ = rows.detach()
        self.seen_rows_source_ = "inductive fine-tuned free rows"

    def _load_inductive(self, path: str) -> None:
        other = ZSLMethod.load(path, device=self.device_)
        if not isinstance(other, CVCZSL):
            raise ConfigError(f"inductive_checkpoint {path}: a {other.name!r} model, not cvc-zsl")
        if (other.feature_dim_, other.embedding_dim_) != (self.feature_dim_, self.embedding_dim_) or \
                other.config_.hidden_dim != self.config_.hidden_dim:
            raise ConfigError(f"inductive_checkpoint {path}: dimensions (features {other.feature_dim_}, embeddings "
                              f"{other.embedding_dim_}, hidden {other.config_.hidden_dim}) do not match this run "
                              f"({self.feature_dim_}, {self.embedding_dim_}, {self.config_.hidden_dim})")
        self.net_.load_state_dict(other.net_.state_dict())

    def _train_transductive(self, Xn, yt, E, sampler, U, EU, context, bar) -> None:
        cfg, dev, net = self.config_, self.device_, self.net_
        S, K = E.shape[0], EU.shape[0]
        ways, shots = self._episode_shape(sampler, cfg.trans_ways, cfg.trans_shots, "transductive seen")
        pshots = cfg.pseudo_shots or shots
        if self._stage != "transductive":  # entering the stage (a resumed one restored free rows and pool)
            with torch.no_grad():
                self.free_rows_ = nn.Parameter(net(torch.cat([E, EU])).detach().clone())  # no forgetting
            self._stage, self._epochs_done, self._pool = "transductive", 0, None
            self._pending_opt = None  # (the inductive optimizer's state, if any, does not carry over)
        free = self.free_rows_
        params = list(net.parameters()) + [free]
        opt = self._make_optimizer(params, cfg.trans_lr, cfg.trans_weight_decay)
        loss_sum = torch.zeros((), device=dev)
        net.train()
        gen = self._gen
        for epoch in range(self._epochs_done, cfg.epochs):
            if epoch % cfg.refresh == 0 or self._pool is None:
                self._refresh_pseudo_labels(U, EU, K)
            pool, pool_idx, present = self._pool
            lr = step_lr(cfg.trans_lr, cfg.lr_gamma, cfg.trans_step_size, epoch)
            set_lr(opt, lr)
            loss_sum.zero_()
            present_cls = torch.nonzero(present).flatten()
            P = int(present_cls.numel())
            done = 0
            while done < cfg.episodes:
                n = min(SAMPLE_CHUNK, cfg.episodes - done)
                idx, _ = sampler.sample(n, ways, shots, gen)
                members = pool.sample_members(present_cls.expand(n, P), pshots, gen, allow_repeats=True)
                uidx = pool_idx[members].reshape(n, P * pshots)
                ulab = (S + present_cls).repeat_interleave(pshots)
                with tf32_matmuls(cfg.tf32, dev):
                    for e in range(n):
                        i, ui = idx[e], uidx[e]
                        x = torch.cat([Xn.index_select(0, i), U.index_select(0, ui)])
                        gen_u = net(EU)
                        rows_u = torch.where(present.unsqueeze(1), gen_u, free[S:])
                        logits = net.scores(x, torch.cat([free[:S], rows_u]))
                        n1, n2 = i.numel(), ui.numel()
                        loss1 = F.cross_entropy(logits[:n1], yt.index_select(0, i))
                        loss2 = generalized_cross_entropy(logits[n1:], ulab, cfg.gce_q)
                        loss = (loss1 * n1 + loss2 * n2) / (n1 + n2)
                        opt.zero_grad(set_to_none=True)
                        loss.backward()
                        if cfg.trans_grad_clip > 0:
                            torch.nn.utils.clip_grad_norm_(params, cfg.trans_grad_clip, foreach=True)
                        opt.step()
                        loss_sum.add_(loss.detach())
                done += n
            loss = float(loss_sum) / cfg.episodes
            self._check_loss(loss, "transductive", epoch + 1)
            self._bar_update(bar, cfg.episodes, "transductive", epoch + 1, loss)
            self._set_transductive_rows()
            self._epochs_done = epoch + 1
            self._log_epoch("transductive", epoch + 1, loss, lr, pseudo_labels=int(self.pseudo_label_count_))
            self._end_epoch(epoch + 1, context, (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs)
        self._set_transductive_rows()
        net.eval()

    def _set_transductive_rows(self) -> None:
        S = self.num_train_classes_
        self.seen_rows_ = self.free_rows_.detach()[:S]
        self.seen_rows_source_ = "transductive free rows"

    @torch.no_grad()
    def _refresh_pseudo_labels(self, U, EU, K):
        """Pseudo-label the unlabeled features with the current generated unseen classifiers."""
        net = self.net_
        scores = torch.cat([net.scores(U[i:i + EVAL_BATCH], net(EU)) for i in range(0, U.shape[0], EVAL_BATCH)])
        labels = pseudo_label(scores, self.config_.ratio_threshold, self.config_.topk_per_class)
        keep = torch.nonzero(labels >= 0).flatten()
        if keep.numel() == 0:
            raise TrainingDivergedError("cvc-zsl transductive: no unlabeled sample passed the pseudo-label filter")
        pool = EpisodeSampler(labels[keep], K)
        present = pool.counts > 0
        log.debug("pseudo labels: %d of %d unlabeled samples kept, %d of %d classes", keep.numel(), U.shape[0],
                  int(present.sum()), K)
        self.pseudo_label_count_ = int(keep.numel())
        self._pool_labels, self._pool_index = labels[keep], keep
        self._pool = (pool, keep, present)

    # ----- resumable training ------------------------------------------------------------------------
    TRAINING_STATE_FORMAT = "cvc-zsl-training-state"

    def training_state(self) -> dict:
        """Everything needed to continue this fit exactly (see ``ZSLMethod.training_state``): the stage
        (inductive / transductive) and epochs done in it, generator + scale/bias, the stage's optimizer,
        the episode generator's state, the transductive free rows and current pseudo-label pool (it is only
        recomputed every ``refresh`` epochs), the learned seen rows, the last metrics and the epoch log.
        Tensors are CPU copies: later training steps never change a state already taken."""
        if getattr(self, "net_", None) is None or getattr(self, "_gen", None) is None:
            raise ConfigError("cvc-zsl: training_state() is only available during or after fit()")
        pool = None
        if self._pool_labels is not None:
            pool = {"labels": cpu_copy(self._pool_labels), "index": cpu_copy(self._pool_index),
                    "num_classes": int(self._pool[0].num_classes)}
        return {
            "format": self.TRAINING_STATE_FORMAT,
            "version": 1,
            "transductive": bool(self.transductive_),
            "stage": self._stage,
            "epoch": int(self._epochs_done),
            "device_type": self.device_.type,
            "generator": cpu_copy(self.net_.state_dict()),
            "optimizer": None if self._opt is None else cpu_copy(self._opt.state_dict()),
            "episode_rng": self._gen.get_state().clone(),
            "free_rows": None if self.free_rows_ is None else cpu_copy(self.free_rows_.detach()),
            "pseudo_label_pool": pool,
            "pseudo_label_count": getattr(self, "pseudo_label_count_", None),
            "seen_rows": None if self.seen_rows_ is None else cpu_copy(self.seen_rows_),
            "seen_rows_source": self.seen_rows_source_,
            "rows_epoch": self._rows_epoch,
            "last_metrics": None if self._last_metrics is None else dict(self._last_metrics),
            "history": [dict(r) for r in self.history_],
        }

    def restore_training_state(self, state: dict) -> int:
        """Restore ``training_state()``; returns the epochs done in the stored stage (the optimizer state
        is loaded into the stage's optimizer when training continues)."""
        if not isinstance(state, dict) or state.get("format") != self.TRAINING_STATE_FORMAT:
            raise ConfigError("cvc-zsl: not a cvc-zsl training state (was the checkpoint written by another method?)")
        if state.get("version") != 1:
            raise ConfigError(f"cvc-zsl: training state version {state.get('version')} is not supported")
        if state["device_type"] != self.device_.type:
            raise ConfigError(f"cvc-zsl: the training state was written on a {state['device_type']} device; resume "
                              f"it on the same kind of device (this model uses {self.device_.type})")
        dev = self.device_
        gen_w = state["generator"]
        shape = (int(gen_w["w1"].shape[0]), int(gen_w["w1"].shape[1]), int(gen_w["w2"].shape[1]))
        net = getattr(self, "net_", None)
        if net is None or (net.w1.shape[0], net.w1.shape[1], net.w2.shape[1]) != shape:
            self.net_ = ClassifierGenerator(*shape).to(dev)
        self.net_.load_state_dict(gen_w)  # copies into the existing parameters
        self._gen = make_generator(self.seed * 2 + 1, dev)
        self._gen.set_state(state["episode_rng"])
        self.transductive_ = bool(state["transductive"])
        self._stage = state["stage"]
        self._epochs_done = int(state["epoch"])
        self._opt = None
        self._pending_opt = state["optimizer"]
        rows = state["free_rows"]
        self.free_rows_ = None if rows is None else nn.Parameter(rows.to(dev).clone())
        pool = state["pseudo_label_pool"]
        if pool is None:
            self._pool = self._pool_labels = self._pool_index = None
        else:
            labels, index = pool["labels"].to(dev), pool["index"].to(dev)
            sampler = EpisodeSampler(labels, int(pool["num_classes"]))
            self._pool_labels, self._pool_index = labels, index
            self._pool = (sampler, index, sampler.counts > 0)
        if state.get("pseudo_label_count") is not None:
            self.pseudo_label_count_ = int(state["pseudo_label_count"])
        seen = state["seen_rows"]
        self.seen_rows_ = None if seen is None else seen.to(dev).clone()
        self.seen_rows_source_ = state["seen_rows_source"]
        self._rows_epoch = state["rows_epoch"]
        self._last_metrics = None if state["last_metrics"] is None else dict(state["last_metrics"])
        self.history_ = [dict(r) for r in state["history"]]
        return self._epochs_done

    # ----- prediction --------------------------------------------------------------------------------
    @torch.no_grad()
    def _build_classifier(self, candidate_embeddings, seen_labels) -> CandidateClassifier:
        net, dev = self.net_, self.device_
        W = net(torch.as_tensor(candidate_embeddings, device=dev))
        if (self.config_.gzsl_seen_classifiers == "learned" and seen_labels is not None
                and getattr(self, "seen_rows_", None) is not None):
            sl = torch.as_tensor(seen_labels, device=dev)
            is_seen = sl >= 0
            if bool(is_seen.any()):
                W = W.clone()
                W[is_seen] = self.seen_rows_[sl[is_seen]].to(W.dtype)
        W = F.normalize(W, p=2, dim=1, eps=1e-12)
        return CVCClassifier(W, float(net.scale), float(net.bias), dev)

    # ----- persistence -------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        rows = getattr(self, "seen_rows_", None)
        return {
            "generator": {k: v.detach().cpu().clone() for k, v in self.net_.state_dict().items()},
            "seen_rows": None if rows is None else rows.detach().cpu().clone(),
            "seen_rows_source": getattr(self, "seen_rows_source_", None),
            "transductive": bool(getattr(self, "transductive_", False)),
            "history": [dict(r) for r in getattr(self, "history_", [])],
        }

    def load_state_dict(self, state: dict) -> None:
        gen = state["generator"]
        self.net_ = ClassifierGenerator(int(gen["w1"].shape[0]), int(gen["w1"].shape[1]), int(gen["w2"].shape[1]))
        self.net_.load_state_dict(gen)
        self.net_.to(self.device_).eval()
        rows = state.get("seen_rows")
        self.seen_rows_ = None if rows is None else rows.to(self.device_)
        self.seen_rows_source_ = state.get("seen_rows_source")
        self.transductive_ = bool(state.get("transductive", False))
        self.history_ = [dict(r) for r in state.get("history", [])]

    # ----- presets and selection ---------------------------------------------------------------------
    @classmethod
    def scaled_config(cls, dataset=None, setting: str = "inductive", variant: str | None = None) -> CVCConfig:
        """Rules on the data for datasets without a preset (see :func:`scaled_defaults`); presets (e.g. the
        "reference" variant, the full 1000 x 1000 protocol) come from presets/cvc_zsl.yaml."""
        return scaled_defaults(dataset, setting)

    @classmethod
    def search_space(cls, config, dataset=None, setting: str = "inductive") -> list[dict]:
        """Epochs are always selected; ``lr_grid`` (if set) adds learning rates (of the current stage)."""
        key = "trans_lr" if setting == "transductive" else "lr"
        return [{key: float(v)} for v in config.lr_grid] or [{}]

    @classmethod
    def warmup_config(cls, config):
        """The inductive configuration whose validation selection chooses a transductive run's warm-up
        (the reference self-trains from its best inductive model): ``inductive_epochs`` as the budget."""
        return replace(config, epochs=config.inductive_epochs, gzsl_seen_classifiers="generated")

    @classmethod
    def with_warmup(cls, config, chosen: dict):
        """``config`` (transductive) starting from the warm-up chosen on validation (its epochs and lr)."""
        return replace(config, inductive_epochs=int(chosen.get("epochs", config.inductive_epochs)),
                       lr=float(chosen.get("lr", config.lr)))

    @classmethod
    def follow_budget(cls, base, config, setting: str = "inductive"):
        """StepLR periods keep their share of a training length the user changed (``--epochs``): e.g. the
        default's halving every third of the epochs stays every third, instead of decaying the rate to nothing
        in a longer run. A step size the user set explicitly is kept."""
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
      every 2 epochs.
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
        cfg = replace(cfg, epochs=max(1, epochs // 3), gzsl_seen_classifiers="learned")
    return cfg
