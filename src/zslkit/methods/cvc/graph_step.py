"""CVC-ZSL's inductive training step: eager, or blocks of steps captured once as a CUDA graph and replayed."""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

from zslkit.methods.cvc.episodes import local_labels
from zslkit.methods.cvc.networks import ClassifierGenerator

log = logging.getLogger("zslkit.methods.cvc")


class InductiveStep:
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
