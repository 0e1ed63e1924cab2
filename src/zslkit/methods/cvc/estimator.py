"""The CVC-ZSL estimator: fit (inductive stage, learned seen rows, transductive self-training), resumable
training state, the candidate classifier, persistence; its recipe is :mod:`.recipe`."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from zslkit.data.matio import file_sha256
from zslkit.errors import ConfigError, TrainingDivergedError
from zslkit.methods.cvc.episodes import EpisodeSampler
from zslkit.methods._epochs import EpochReporter
from zslkit.methods._optim import make_adam, set_lr
from zslkit.methods.base import CandidateClassifier, ZSLMethod
from zslkit.methods.cvc.config import CVCConfig
from zslkit.methods.cvc.episode_loop import each_episode, episode_shape, run_episodes, step_lr
from zslkit.methods.cvc.graph_step import InductiveStep
from zslkit.methods.cvc.networks import ClassifierGenerator, CVCClassifier
from zslkit.methods.cvc.pseudo_labels import pseudo_label
from zslkit.methods.cvc.recipe import RECIPE
from zslkit.methods.cvc import training_state as resumable
from zslkit.methods.cvc.stages import (TransductiveStep, finetune_seen_rows, mixed_episodes,
                                      pseudo_classes_per_episode)
from zslkit.methods.registry import register
from zslkit.runtime import stream, stream_seed

log = logging.getLogger("zslkit.methods.cvc")


@register
class CVCZSL(ZSLMethod):
    name = "cvc-zsl"
    config_class = CVCConfig
    recipe = RECIPE  # presets, rules for other data, validation search, warm-up (cvc/recipe.py)
    settings = ("inductive", "transductive")
    epochs_field = "epochs"
    description = ("CVC-ZSL (Li, Min, Fu, ICCV 2019): episodic classifier generator with a cosine classifier; "
                   "inductive and transductive (pseudo labels + generalized cross-entropy)")

    # ----- training ----------------------------------------------------------------------------------
    def _fit(self, X, y, class_embeddings, *, unlabeled, unlabeled_embeddings, context) -> None:
        cfg, dev = self.config_, self.device_
        self.transductive_ = unlabeled is not None
        if self.transductive_ and cfg.pseudo_filter == "topk" and cfg.topk_per_class == 0:
            raise ConfigError("cvc-zsl: pseudo_filter 'topk' keeps each unseen class's topk_per_class best samples; "
                              "topk_per_class is 0, so no sample would get a pseudo label (set it to 1 or more)")
        self.seen_rows_ = self.seen_rows_source_ = self.free_rows_ = None
        self._rows_epoch = None  # the epoch the learned seen rows were fine-tuned at
        self._pool = None  # (sampler over the kept samples, their indices into U, classes present)
        self._pool_labels = self._pool_index = None
        self.history_ = []
        self._last_metrics = None
        self._clip_warned = set()
        Xn = F.normalize(torch.as_tensor(X, device=dev), p=2, dim=1, eps=1e-12)
        yt = torch.as_tensor(y, device=dev)
        E = torch.as_tensor(class_embeddings, device=dev)
        sampler = EpisodeSampler(yt, E.shape[0])
        self._gen = stream(self.seed, "cvc-zsl.episodes", dev)
        self.net_ = ClassifierGenerator(E.shape[1], cfg.hidden_dim, Xn.shape[1], init_std=cfg.init_std,
                                        scale_init=cfg.scale_init, bias_init=cfg.bias_init,
                                        seed=stream_seed(self.seed, "cvc-zsl.weights")).to(dev)
        self._stage, self._epochs_done, self._opt, self._pending_opt = "inductive", 0, None, None
        resume = context.resume_state
        if resume is not None:  # continue an interrupted fit exactly where its checkpoint left it
            if bool(resume.get("transductive")) != self.transductive_:
                raise ConfigError("cvc-zsl: the training state to resume comes from a "
                                  f"{'transductive' if resume.get('transductive') else 'inductive'} fit, this fit is "
                                  f"{'transductive' if self.transductive_ else 'inductive'}")
            self.restore_training_state(resume)
        warmup = cfg.inductive_epochs if self.transductive_ and not cfg.inductive_checkpoint else 0
        self.reused_stages_ = {}  # the inductive model a transductive fit starts from (provenance.json)
        if self.transductive_ and cfg.inductive_checkpoint:  # checked before any training, also when resumed
            self._inductive = self._read_inductive(cfg.inductive_checkpoint)
        done = self._epochs_done + (warmup if self._stage == "transductive" else 0)
        self._reporter = EpochReporter(self, total=cfg.episodes * (cfg.epochs + warmup), unit="episode",
                                       initial=done * cfg.episodes)
        self._reporter.last_metrics = self._last_metrics
        try:
            if unlabeled is None:
                self._train_inductive(Xn, yt, E, sampler, cfg.epochs, context)
                if cfg.gzsl_seen_classifiers == "learned" and self._rows_epoch != cfg.epochs:
                    self._finetune_seen_rows(Xn, yt, E, sampler)
            else:
                if self._stage == "inductive":
                    if cfg.inductive_checkpoint:
                        self._load_inductive(cfg.inductive_checkpoint)
                    else:  # checkpoints, no validation points
                        self._train_inductive(Xn, yt, E, sampler, cfg.inductive_epochs, replace(context, monitor=None))
                U = F.normalize(torch.as_tensor(unlabeled, device=dev), p=2, dim=1, eps=1e-12)
                EU = torch.as_tensor(unlabeled_embeddings, device=dev)
                self._train_transductive(Xn, yt, E, sampler, U, EU, context)
        finally:
            self._reporter.close()
        self._opt = self._pending_opt = None  # optimizer state is only needed while training

    def _episode_shape(self, sampler: EpisodeSampler, ways: int, shots: int, what: str) -> tuple[int, int]:
        return episode_shape(sampler, ways, shots, overflow=self.config_.episode_overflow, what=what,
                             warned=self._clip_warned)

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

    def _end_epoch(self, context, stage: str, epoch: int, loss: float, lr: float, evaluate: bool, **extra) -> None:
        """The shared epoch end (finite check, history row with the cosine scale, bar, monitor, checkpoint)."""
        self._reporter.end_epoch(context, stage=stage, epoch=epoch, loss=loss, lr=lr, evaluate=evaluate,
                                 advance=self.config_.episodes, scale=float(self.net_.scale.detach()), **extra)

    def _train_inductive(self, Xn, yt, E, sampler, epochs: int, context) -> None:
        cfg, dev, gen = self.config_, self.device_, self._gen
        ways, shots = self._episode_shape(sampler, cfg.ways, cfg.shots, "inductive")
        use_graph = bool(cfg.cuda_graphs and dev.type == "cuda")
        opt = self._make_optimizer(self.net_.parameters(), cfg.lr, cfg.weight_decay, capturable=use_graph)
        step = InductiveStep(self.net_, Xn, E, ways, shots, opt, cfg.grad_clip, use_graph, cfg.graph_episodes)
        self.net_.train()
        for epoch in range(self._epochs_done, epochs):
            lr = step_lr(cfg.lr, cfg.lr_gamma, cfg.step_size, epoch)
            set_lr(opt, lr)
            step.loss_sum.zero_()
            run_episodes(cfg.episodes, lambda n: sampler.sample(n, ways, shots, gen), step.run, tf32=cfg.tf32,
                         device=dev)
            self._epochs_done = epoch + 1
            evaluate = context.monitor is not None and ((epoch + 1) % cfg.eval_every == 0 or epoch + 1 == epochs)
            if evaluate and cfg.gzsl_seen_classifiers == "learned":
                self._finetune_seen_rows(Xn, yt, E, sampler)
                self._rows_epoch = epoch + 1
            self._end_epoch(context, "inductive", epoch + 1, float(step.loss_sum) / cfg.episodes, lr, evaluate)
        self.net_.eval()

    def _finetune_seen_rows(self, Xn, yt, E, sampler) -> None:
        """The "learned" seen rows (:func:`.stages.finetune_seen_rows`): a pure function of the generator state,
        from its own seeded episode stream, so it never changes the generator's trajectory."""
        cfg, dev, draw = self.config_, self.device_, None
        if cfg.finetune_episodes > 0:
            ways, shots = self._episode_shape(sampler, cfg.ways, cfg.shots, "fine-tuning")
            gen = stream(self.seed, "cvc-zsl.finetune", dev)
            draw = lambda n: sampler.sample(n, ways, shots, gen)[:1]  # noqa: E731
        self.seen_rows_ = finetune_seen_rows(self.net_, Xn, yt, E, draw, cfg.finetune_episodes, cfg.finetune_lr,
                                             tf32=cfg.tf32, device=dev)
        self.seen_rows_source_ = "inductive fine-tuned free rows"

    def _read_inductive(self, value: str) -> "CVCZSL":
        """The saved cvc-zsl model (a model.pt or a run directory holding one), checked: cvc-zsl, this fit's
        dimensions, and no more training classes than this fit has (a model trained on all seen classes has seen
        the validation classes, so it is refused on the validation view of validation selection). Its file and
        sha256 go to ``reused_stages_`` (provenance.json)."""
        path = Path(value) / "model.pt" if Path(value).is_dir() else Path(value)
        other = ZSLMethod.load(path, device=self.device_)
        if not isinstance(other, CVCZSL):
            raise ConfigError(f"inductive_checkpoint {path}: a {other.name!r} model, not cvc-zsl")
        if (other.feature_dim_, other.embedding_dim_) != (self.feature_dim_, self.embedding_dim_) or \
                other.config_.hidden_dim != self.config_.hidden_dim:
            raise ConfigError(f"inductive_checkpoint {path}: dimensions (features {other.feature_dim_}, embeddings "
                              f"{other.embedding_dim_}, hidden {other.config_.hidden_dim}) do not match this run "
                              f"({self.feature_dim_}, {self.embedding_dim_}, {self.config_.hidden_dim})")
        if other.num_train_classes_ > self.num_train_classes_:
            raise ConfigError(f"inductive_checkpoint {path}: trained on {other.num_train_classes_} classes, this fit "
                              f"has {self.num_train_classes_} training classes (the validation view of validation "
                              f"selection?): the model has seen the classes scored as unseen here, so the validation "
                              f"numbers would not be honest; use --selection fixed, or a model trained on the "
                              f"validation view's classes")
        self.reused_stages_ = {"inductive": {"field": "inductive_checkpoint", "path": str(path.resolve()),
                                             "sha256": file_sha256(path), "method": other.name,
                                             "num_train_classes": int(other.num_train_classes_)}}
        return other

    def _load_inductive(self, path: str) -> None:
        self.net_.load_state_dict(self._inductive.net_.state_dict())

    def _train_transductive(self, Xn, yt, E, sampler, U, EU, context) -> None:
        cfg, dev, net, gen = self.config_, self.device_, self.net_, self._gen
        S, K = E.shape[0], EU.shape[0]
        ways, shots = self._episode_shape(sampler, cfg.trans_ways, cfg.trans_shots, "transductive seen")
        pshots = cfg.pseudo_shots or shots
        if self._stage != "transductive":  # entering the stage (a resumed one restored free rows and pool)
            with torch.no_grad():
                self.free_rows_ = nn.Parameter(net(torch.cat([E, EU])).detach().clone())  # no forgetting
            self._stage, self._epochs_done, self._pool = "transductive", 0, None
            self._pending_opt = None  # (the inductive optimizer's state, if any, does not carry over)
            if context.monitor is not None:  # epoch 0: the warm-up model itself, so validation can refuse self-training
                self._set_transductive_rows()
                self._call_monitor(context, 0)
        opt = self._make_optimizer([*net.parameters(), self.free_rows_], cfg.trans_lr, cfg.trans_weight_decay)
        step = TransductiveStep(net, self.free_rows_, Xn, yt, U, EU, opt, cfg.trans_grad_clip, cfg.gce_q)
        net.train()
        for epoch in range(self._epochs_done, cfg.epochs):
            if epoch % cfg.refresh == 0 or self._pool is None:
                self._refresh_pseudo_labels(U, EU, K)
            pool, pool_idx, present = self._pool
            lr = step_lr(cfg.trans_lr, cfg.lr_gamma, cfg.trans_step_size, epoch)
            set_lr(opt, lr)
            classes = torch.nonzero(present).flatten()
            step.start_epoch(present, (S + classes).repeat_interleave(pshots))
            per_episode = pseudo_classes_per_episode(int(classes.numel()), ways, shots, pshots, cfg.pseudo_share)
            run_episodes(cfg.episodes, mixed_episodes(sampler, ways, shots, pool, pool_idx, classes, pshots, gen,
                                                      per_episode=per_episode, offset=S),
                         each_episode(step), tf32=cfg.tf32, device=dev)
            self._set_transductive_rows()
            self._epochs_done = epoch + 1
            self._end_epoch(context, "transductive", epoch + 1, float(step.loss_sum) / cfg.episodes, lr,
                            (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs,
                            pseudo_labels=int(self.pseudo_label_count_))
        self._set_transductive_rows()
        net.eval()

    def _set_transductive_rows(self) -> None:
        S = self.num_train_classes_
        self.seen_rows_ = self.free_rows_.detach()[:S]
        self.seen_rows_source_ = "transductive free rows"

    @torch.no_grad()
    def _refresh_pseudo_labels(self, U, EU, K):
        """Pseudo-label the unlabeled features with the current generated unseen classifiers."""
        cfg = self.config_
        labels = pseudo_label(self.net_.batched_scores(U, EU), cfg.ratio_threshold, cfg.topk_per_class,
                              pseudo_filter=cfg.pseudo_filter)
        keep = torch.nonzero(labels >= 0).flatten()
        if keep.numel() == 0:
            raise TrainingDivergedError(f"cvc-zsl transductive: no unlabeled sample passed the {cfg.pseudo_filter!r} "
                                        f"pseudo-label filter ({U.shape[0]} unlabeled samples)")
        pool = EpisodeSampler(labels[keep], K)
        present = pool.counts > 0
        log.debug("pseudo labels: %d of %d unlabeled samples kept, %d of %d classes", keep.numel(), U.shape[0],
                  int(present.sum()), K)
        self.pseudo_label_count_ = int(keep.numel())
        self._pool_labels, self._pool_index = labels[keep], keep
        self._pool = (pool, keep, present)
    # ----- resumable training (see .training_state) ------------------------------------------------------
    TRAINING_STATE_FORMAT = resumable.FORMAT

    def training_state(self) -> dict:
        """Everything needed to continue this fit exactly (:func:`.training_state.capture`)."""
        return resumable.capture(self)

    def restore_training_state(self, state: dict) -> int:
        """Restore ``training_state()``; returns the epochs done in the stored stage."""
        return resumable.restore(self, state)

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
        self.net_ = ClassifierGenerator.from_state_dict(state["generator"]).to(self.device_).eval()
        rows = state.get("seen_rows")
        self.seen_rows_ = None if rows is None else rows.to(self.device_)
        self.seen_rows_source_ = state.get("seen_rows_source")
        self.transductive_ = bool(state.get("transductive", False))
        self.history_ = [dict(r) for r in state.get("history", [])]
