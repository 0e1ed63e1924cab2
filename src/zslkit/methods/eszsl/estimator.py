"""ESZSL: "An embarrassingly simple approach to zero-shot learning" (Romera-Paredes and Torr, ICML 2015).

A bilinear compatibility x^T V a between a visual feature x and a class embedding a, with the closed
form V = (X^T X + g I)^-1 X^T Y E (E^T E + l I)^-1, where Y is the {-1, 1} label matrix of the seen
training samples and E the seen-class embeddings. The features are centred on the training mean and
L2-normalised; g = 10^gamma_exp and l = 10^lambda_exp are in units of the mean eigenvalue of X^T X and E^T E
(``relative_ridge``), chosen on the validation classes over the paper's grid 10^-3..10^3 (the recipe's ``search_space``;
``lambda_min_exp`` can raise the floor on lambda), by the calibrated GZSL H (its ``default_criterion``). A class's
score is divided by the norm of its weight vector V a (``normalize_scores``), so seen and unseen classes score on
one scale. The rules and their evidence on the real dev sets: docs/methods/eszsl.md.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from zslkit.errors import TrainingDivergedError
from zslkit.methods.base import CandidateClassifier, ZSLMethod
from zslkit.methods.eszsl.config import ESZSLConfig
from zslkit.methods.eszsl.recipe import RECIPE
from zslkit.methods.registry import register


class _BilinearClassifier(CandidateClassifier):
    def __init__(self, model: "ESZSL", candidate_embeddings: np.ndarray):
        self.model = model
        E = torch.as_tensor(candidate_embeddings, dtype=torch.float64, device=model.device_)
        W = model.V_ @ E.T  # D x K: one weight vector per candidate class
        if model.config_.normalize_scores:  # a zero weight vector (a zero embedding) keeps its zero scores
            W = W / W.norm(dim=0, keepdim=True).clamp_min(torch.finfo(W.dtype).tiny)
        self.projection = W.to(torch.float32)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        x = self.model._features(torch.as_tensor(X, device=self.model.device_)).to(torch.float32)
        return (x @ self.projection).cpu().numpy()


@register
class ESZSL(ZSLMethod):
    name = "eszsl"
    config_class = ESZSLConfig
    recipe = RECIPE  # the validation grid and the default criterion (eszsl/recipe.py)
    epochs_field = None
    description = "ESZSL (Romera-Paredes & Torr, ICML 2015): closed-form bilinear compatibility"

    def _fit(self, X, y, class_embeddings, *, unlabeled, unlabeled_embeddings, context) -> None:
        dev = self.device_
        x = torch.as_tensor(X, dtype=torch.float64, device=dev)
        self.mean_ = x.mean(0) if self.config_.center_features else torch.zeros(x.shape[1], dtype=torch.float64,
                                                                                device=dev)
        x = self._features(x)
        E = torch.as_tensor(class_embeddings, dtype=torch.float64, device=dev)
        Y = -torch.ones(x.shape[0], E.shape[0], dtype=torch.float64, device=dev)
        Y[torch.arange(x.shape[0], device=dev), torch.as_tensor(y, device=dev)] = 1.0
        d, a = x.shape[1], E.shape[1]
        xtx, ete = x.T @ x, E.T @ E
        g, lam = 10.0 ** self.config_.gamma_exp, 10.0 ** self.config_.lambda_exp
        if self.config_.relative_ridge:  # in units of the mean eigenvalue; 1 if the matrix is all zeros
            g *= float(torch.trace(xtx)) / d or 1.0
            lam *= float(torch.trace(ete)) / a or 1.0
        left = xtx + g * torch.eye(d, dtype=torch.float64, device=dev)
        right = ete + lam * torch.eye(a, dtype=torch.float64, device=dev)
        middle = x.T @ Y @ E  # D x A
        try:
            V = torch.linalg.solve(left, middle)
            self.V_ = torch.linalg.solve(right.T, V.T).T  # V (E^T E + l I)^-1
        except torch.linalg.LinAlgError:
            self.V_ = torch.full((d, a), float("nan"), dtype=torch.float64, device=dev)
        if not bool(torch.isfinite(self.V_).all()):
            raise TrainingDivergedError(f"eszsl: the closed-form solution is not finite (gamma_exp "
                                        f"{self.config_.gamma_exp}, lambda_exp {self.config_.lambda_exp}); use "
                                        f"larger regularisers")
        self._call_monitor(context, 0)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        """The features as the closed form sees them: centred on the training mean, then L2-normalised."""
        x = x.to(self.mean_.dtype) - self.mean_
        return torch.nn.functional.normalize(x, dim=1) if self.config_.normalize_features else x

    def _build_classifier(self, candidate_embeddings, seen_labels) -> CandidateClassifier:
        return _BilinearClassifier(self, candidate_embeddings)

    def state_dict(self) -> dict:
        return {"V": self.V_.detach().cpu(), "mean": self.mean_.detach().cpu(),
                "normalize_scores": bool(self.config_.normalize_scores)}

    def load_state_dict(self, state: dict) -> None:
        self.V_ = state["V"].to(self.device_, torch.float64)
        # the scores follow the checkpoint: those from before normalize_scores scored raw (x^T V a)
        scores = bool(state.get("normalize_scores", False))
        if scores != self.config_.normalize_scores:
            self.config_ = dataclasses.replace(self.config_, normalize_scores=scores)
        # checkpoints from before centring have no mean: their V was fitted on uncentred features
        mean = state.get("mean")
        self.mean_ = (torch.zeros(self.V_.shape[0], dtype=torch.float64, device=self.device_) if mean is None
                      else mean.to(self.device_, torch.float64))
