"""The estimator API every ZSL method implements (scikit-learn estimators, class embeddings as inputs).

A method is fitted on seen-class samples ``X`` with labels ``y`` that index the rows of
``class_embeddings`` (one row per seen class). At prediction time it scores samples against any
candidate classes described by their embeddings, so new classes can be named at inference time:

    model = get_method("eszsl")(gamma_exp=1.0, seed=0).fit(X_seen, y_seen, E_seen)
    labels = model.predict(X_test, E_candidates)          # indices into E_candidates

``seen_labels`` (optional, one entry per candidate) says which candidates are training classes (their
``y`` value) and which are new (-1); methods that keep learned seen-class classifiers or real seen
features (CVC-ZSL's "learned" GZSL mode, cycle-WGAN's ``merge``) use it, the others ignore it.

scikit-learn's contract: every field of the method's config dataclass is a constructor parameter (``None``:
take it from ``config`` or the field's default), stored as given; ``get_params`` / ``set_params`` /
``clone`` work; ``fit`` resolves them into ``config_`` (the dataclass, checked against the fields' bounds)
and ``device_``; learned state ends with ``_``. For a two-argument ``fit(X, y)`` see
``zslkit.classifier.ZSLClassifier``.

Subclasses define ``name``, ``config_class`` (a dataclass of :func:`zslkit.methods.config.option` fields),
``_fit``, ``_build_classifier``, ``state_dict`` / ``load_state_dict``; the base class handles input
checks, configuration, devices, seeding and checkpoint files.
"""

from __future__ import annotations

import dataclasses
import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator

from zslkit.data.dataset import as_real_float32, require_finite
from zslkit.errors import ConfigError, DataError, NotFittedError
from zslkit.methods.config import make_config, unknown_name, validate_config
from zslkit.methods.model_file import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, read_checkpoint
from zslkit.methods.recipe import HOOKS, ClassHooks, Recipe
from zslkit.methods.registry import get_method
from zslkit.protocol.metrics import per_class_accuracy
from zslkit.runs import atomic_torch_save
from zslkit.runtime import flush_denormals, resolve_device

# monitor(epoch, model) is called by ``fit`` at every evaluation point (every ``eval_every`` epochs and
# after the last epoch). It returns the metrics it computed (shown in progress bars) or None.
Monitor = Callable[[int, "ZSLMethod"], "dict | None"]
# checkpoint(epoch, model) is called after every epoch (after the monitor); it decides whether to save
# ``model.training_state()`` and may raise to stop training (Ctrl-C handling).
CheckpointHook = Callable[[int, "ZSLMethod"], None]

_ESTIMATOR_PARAMS = ("config", "device", "progress", "seed")


@dataclass(frozen=True)
class FitContext:
    """What ``fit`` hands to ``_fit`` besides the data: the monitor, the checkpoint hook, the state to resume."""

    monitor: Monitor | None = None
    checkpoint: CheckpointHook | None = None
    resume_state: dict | None = None


class CandidateClassifier(ABC):
    """A classifier over a fixed list of candidate classes, built by ``ZSLMethod.build_classifier``."""

    @abstractmethod
    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """(N x K) float32 scores (logits) of the samples against the K candidates."""


def check_matrix(X, name: str, *, dim: int | None = None, dim_name: str = "dimension") -> np.ndarray:
    """A finite, non-empty 2-D float32 array, or a DataError saying what is wrong with ``name``."""
    arr = np.asarray(X)
    if arr.ndim == 1 and dim is not None and arr.shape[0] == dim:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise DataError(None, name, f"expected a non-empty 2-D array, got shape {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise DataError(None, name, f"{dim_name} mismatch: got {arr.shape[1]} columns, the model expects {dim}")
    arr = as_real_float32(arr, None, name, name)
    require_finite(arr, None, name)
    return arr


def cpu_copy(obj):
    """A CPU copy of a tensor, or of the tensors inside nested dicts / lists / tuples (other values as-is),
    for state dicts and checkpoints that must not change when training goes on."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(cpu_copy(v) for v in obj)
    return obj


def check_labels(y, n: int, num_classes: int, name: str = "y") -> np.ndarray:
    arr = np.asarray(y).reshape(-1)
    if arr.shape[0] != n:
        raise DataError(None, name, f"{arr.shape[0]} labels for {n} samples")
    if not np.issubdtype(arr.dtype, np.integer):
        raise DataError(None, name, f"labels must be integers, got dtype {arr.dtype}")
    if arr.min() < 0 or arr.max() >= num_classes:
        raise DataError(None, name, f"labels must index the {num_classes} class embeddings (0..{num_classes - 1}); "
                        f"got range [{arr.min()}, {arr.max()}]")
    return arr.astype(np.int64)


class ZSLMethod(BaseEstimator, ABC):
    """Base class of all methods; see the module docstring for the contract."""

    name: ClassVar[str] = ""
    config_class: ClassVar[type]
    settings: ClassVar[tuple[str, ...]] = ("inductive",)
    # the config field that counts training epochs; validation selection chooses it (None: no epochs)
    epochs_field: ClassVar[str | None] = "epochs"
    description: ClassVar[str] = ""
    # True: validation selection keeps the model trained on the validation view at its best point (then calls
    # ``adopt_seen_classes`` with all trainval data) instead of retraining on trainval; for methods whose
    # retrained model does not reproduce what was validated (GANs). See docs/protocol.md.
    keeps_validated_model: ClassVar[bool] = False
    # how the method is trained on given data: presets, rules for other data, validation search, head search,
    # warm-up, budget following, default criterion (zslkit.methods.recipe; one file per method). A subclass without
    # one gets the base recipe on its config class; the old class-method hooks below delegate to it.
    recipe: ClassVar[Recipe | None] = None
    # what validation selection maximises unless the user says (gzsl_h, zsl_t1 or gzsl_cs_h): the recipe's
    default_criterion: ClassVar[str] = "gzsl_h"
    # the presets file's method name (None: ``name``) and the method's own variants (the recipe's); used to build the
    # recipe of a subclass that names none
    preset_method: ClassVar[str | None] = None
    variants: ClassVar[tuple[str, ...]] = ()
    # the method's own ``zslkit train`` options (zslkit.methods.options.TrainOption), e.g. cycle-wgan's --savepoints
    train_options: ClassVar[tuple] = ()
    # the train option that keeps per-epoch model snapshots, which ``use_snapshot(epoch)`` switches to (zslkit
    # evaluate / synthesize --epoch); None: the method keeps none
    snapshot_option: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs):
        """Give ``cls`` a recipe: its own, the inherited one, or the base recipe on its config class; a subclass
        that overrides the old hooks (``search_space`` ...) or ``default_criterion`` keeps them (``ClassHooks``)."""
        super().__init_subclass__(**kwargs)
        if not hasattr(cls, "config_class"):
            return
        recipe = getattr(cls, "recipe", None)
        if isinstance(recipe, ClassHooks):  # a parent's overrides: recomputed below over the whole MRO, wrapped once
            recipe = recipe.fallback
        if recipe is None or recipe.config_class is not cls.config_class:
            recipe = Recipe(cls.config_class, cls.preset_method or cls.name)
            recipe.default_criterion, recipe.variants = cls.default_criterion, tuple(cls.variants)
        own = cls.__mro__[:cls.__mro__.index(ZSLMethod)]
        overridden = tuple(h for h in HOOKS if any(h in c.__dict__ for c in own))
        criterion = next((c.__dict__["default_criterion"] for c in own if "default_criterion" in c.__dict__), None)
        if overridden or (criterion is not None and criterion != recipe.default_criterion):
            recipe = ClassHooks(cls, recipe, overridden)
            recipe.default_criterion = criterion or recipe.default_criterion
        cls.recipe = recipe
        cls.default_criterion, cls.variants = recipe.default_criterion, tuple(recipe.variants)

    def __init__(self, config: Any = None, *, seed: int = 0, device: str | torch.device = "auto",
                 progress: bool = False, **params):
        for key in params:
            if key not in self._field_names():
                raise unknown_name(self.config_class, key, type(self).__name__)
        self.config = config
        self.seed = seed
        self.device = device
        self.progress = progress
        for key in self._field_names():
            setattr(self, key, params.get(key))

    # ----- scikit-learn parameters ------------------------------------------------------------------
    @classmethod
    def _field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls.config_class))

    @classmethod
    def _get_param_names(cls) -> list[str]:
        return sorted((*_ESTIMATOR_PARAMS, *cls._field_names()))

    def resolved_config(self):
        """The config dataclass these parameters stand for: ``config`` (None / dataclass / dict) with every
        field parameter that is not None applied, checked against the fields' declared bounds."""
        overrides = {k: getattr(self, k) for k in self._field_names() if getattr(self, k, None) is not None}
        cfg = make_config(self.config_class, self.config, overrides)
        validate_config(cfg, self.name)
        return cfg

    def _prepare(self) -> None:
        """Resolve the parameters (``config_``, ``device_``) before fitting or loading."""
        self.config_ = self.resolved_config()
        self.device_ = resolve_device(self.device)
        self.__dict__.pop("fitted_", None)

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        shown = {k: v for k, v in self.get_params(deep=False).items()
                 if v is not None and not (k in ("seed", "device", "progress") and v == {"seed": 0, "device": "auto",
                                                                                          "progress": False}[k])}
        text = ", ".join(f"{k}={v!r}" for k, v in shown.items())
        return f"{type(self).__name__}({text})"[:N_CHAR_MAX]

    def __sklearn_is_fitted__(self) -> bool:
        return bool(getattr(self, "fitted_", False))

    # ----- training --------------------------------------------------------------------------------
    def fit(self, X, y, class_embeddings, *, unlabeled=None, unlabeled_embeddings=None,
            monitor: Monitor | None = None, checkpoint: CheckpointHook | None = None,
            resume_state: dict | None = None) -> "ZSLMethod":
        """Fit on seen samples ``X`` with labels ``y`` indexing the rows of ``class_embeddings``.

        ``unlabeled`` / ``unlabeled_embeddings``: unlabeled features of the unseen classes and those
        classes' embeddings, used by transductive methods only. ``monitor`` is called at evaluation points,
        ``checkpoint`` after every epoch; ``resume_state`` (a ``training_state()``) continues an interrupted
        fit on the same data.
        """
        self._prepare()
        E = check_matrix(class_embeddings, "class_embeddings")
        Xc = check_matrix(X, "X")
        yc = check_labels(y, Xc.shape[0], E.shape[0])
        U = EU = None
        if unlabeled is not None:
            U = check_matrix(unlabeled, "unlabeled", dim=Xc.shape[1], dim_name="feature dimension")
            if unlabeled_embeddings is None:
                raise DataError(None, "unlabeled_embeddings", "unlabeled features need the embeddings of their "
                                "candidate classes")
            EU = check_matrix(unlabeled_embeddings, "unlabeled_embeddings", dim=E.shape[1],
                              dim_name="embedding dimension")
        self.feature_dim_ = Xc.shape[1]
        self.embedding_dim_ = E.shape[1]
        self.num_train_classes_ = E.shape[0]
        self.n_features_in_ = Xc.shape[1]
        context = FitContext(monitor=monitor, checkpoint=checkpoint, resume_state=resume_state)
        with flush_denormals():  # subnormal floats slow CPU training steps several times (runtime.flush_denormals)
            self._fit(Xc, yc, E, unlabeled=U, unlabeled_embeddings=EU, context=context)
        self.fitted_ = True
        return self

    @abstractmethod
    def _fit(self, X: np.ndarray, y: np.ndarray, class_embeddings: np.ndarray, *, unlabeled, unlabeled_embeddings,
             context: FitContext) -> None:
        """Train (``config_`` and ``device_`` are resolved); call ``_epoch_done`` after every epoch."""

    def _epoch_done(self, epoch: int, context: FitContext, *, evaluate: bool) -> dict | None:
        """Call at the end of every training epoch: the monitor at evaluation points, then the
        checkpoint hook (which may save ``training_state()`` or stop training)."""
        result = self._call_monitor(context, epoch) if evaluate else None
        if context.checkpoint is not None:
            self.fitted_ = True
            context.checkpoint(epoch, self)
        return result

    def training_state(self) -> dict:
        """Everything needed to continue training exactly (networks, optimizers, schedulers, RNG states,
        epoch). Methods with epoch loops override this and ``restore_training_state``."""
        raise NotImplementedError(f"{self.name} does not support resuming")

    def restore_training_state(self, state: dict) -> int:
        """Restore ``training_state()``; returns the number of epochs already done."""
        raise NotImplementedError(f"{self.name} does not support resuming")

    def _call_monitor(self, context: FitContext, epoch: int) -> dict | None:
        """Call ``context.monitor(epoch, self)`` if given (the model counts as fitted from here on)."""
        if context.monitor is None:
            return None
        self.fitted_ = True
        return context.monitor(epoch, self)

    # ----- prediction ------------------------------------------------------------------------------
    @abstractmethod
    def _build_classifier(self, candidate_embeddings: np.ndarray, seen_labels: np.ndarray | None
                          ) -> CandidateClassifier:
        """The classifier over the given candidates (inputs already checked)."""

    def build_classifier(self, candidate_embeddings, seen_labels=None, *, head: dict | None = None
                         ) -> CandidateClassifier:
        """A classifier over candidate classes given by their embeddings (reuse it for many batches). ``head``:
        fields that change only the classifier (one entry of the recipe's ``head_space``), for this call only;
        a method whose ``_build_classifier`` takes no ``head`` keyword has none (a non-empty one is a ConfigError)."""
        self._check_fitted()
        E = check_matrix(candidate_embeddings, "candidate_embeddings", dim=self.embedding_dim_,
                         dim_name="embedding dimension")
        if seen_labels is not None:
            seen_labels = np.asarray(seen_labels, dtype=np.int64).reshape(-1)
            if seen_labels.shape[0] != E.shape[0]:
                raise DataError(None, "seen_labels", f"{seen_labels.shape[0]} entries for {E.shape[0]} candidates")
            if seen_labels.max() >= self.num_train_classes_ or seen_labels.min() < -1:
                raise DataError(None, "seen_labels", f"entries must be -1 (new class) or a training label "
                                f"0..{self.num_train_classes_ - 1}")
        if head and "head" not in inspect.signature(self._build_classifier).parameters:
            raise ConfigError(f"{self.name} has no head settings (got {head}); its head_space is [{{}}]")
        with flush_denormals():  # building may train (cycle-wgan's softmax on synthetic features)
            if not head:
                return self._build_classifier(E, seen_labels)
            return self._build_classifier(E, seen_labels, head=dict(head))

    def decision_function(self, X, candidate_embeddings, seen_labels=None) -> np.ndarray:
        clf = self.build_classifier(candidate_embeddings, seen_labels)
        return clf.decision_function(self.check_features(X))

    def predict_proba(self, X, candidate_embeddings, seen_labels=None) -> np.ndarray:
        scores = torch.from_numpy(self.decision_function(X, candidate_embeddings, seen_labels))
        return torch.softmax(scores.double(), dim=1).numpy()

    def predict(self, X, candidate_embeddings, seen_labels=None) -> np.ndarray:
        """Index (into ``candidate_embeddings``) of the best candidate for each sample."""
        return np.argmax(self.decision_function(X, candidate_embeddings, seen_labels), axis=1)

    def score(self, X, y, candidate_embeddings, seen_labels=None) -> float:
        """Per-class mean top-1 accuracy of ``predict`` against ``y`` (indices into the candidates)."""
        return per_class_accuracy(y, self.predict(X, candidate_embeddings, seen_labels))

    def check_features(self, X) -> np.ndarray:
        self._check_fitted()
        return check_matrix(X, "features", dim=self.feature_dim_, dim_name="feature dimension")

    def _check_fitted(self) -> None:
        if not getattr(self, "fitted_", False):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit() or load a checkpoint")

    # ----- persistence -----------------------------------------------------------------------------
    @abstractmethod
    def state_dict(self) -> dict:
        """The learned state (tensors on CPU, arrays, numbers) that rebuilds the model with the config."""

    @abstractmethod
    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned (``config_`` and ``device_`` are already resolved)."""

    def checkpoint(self, extra: dict | None = None) -> dict:
        self._check_fitted()
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "method": self.name,
            "config": dataclasses.asdict(self.config_),
            "seed": self.seed,
            "dims": {"feature_dim": self.feature_dim_, "embedding_dim": self.embedding_dim_,
                     "num_train_classes": self.num_train_classes_},
            "state": self.state_dict(),
            "extra": extra or {},
        }

    def save(self, path: str | Path, extra: dict | None = None) -> Path:
        """Write a self-contained checkpoint atomically (temporary file + rename)."""
        return atomic_torch_save(self.checkpoint(extra), Path(path))

    def restore(self, state: dict, dims: dict) -> "ZSLMethod":
        """This (configured, unfitted) model with a fitted state: the parameters resolved, the fitted dimensions
        (``feature_dim``, ``embedding_dim``, ``num_train_classes``) set, ``load_state_dict(state)``; returns self."""
        self._prepare()
        self.feature_dim_ = int(dims["feature_dim"])
        self.embedding_dim_ = int(dims["embedding_dim"])
        self.num_train_classes_ = int(dims["num_train_classes"])
        self.n_features_in_ = self.feature_dim_
        self.load_state_dict(state)
        self.fitted_ = True
        return self

    @classmethod
    def from_checkpoint(cls, ckpt: dict, device: str | torch.device = "auto") -> "ZSLMethod":
        method_cls = get_method(ckpt["method"]) if cls is ZSLMethod else cls
        return method_cls(ckpt["config"], seed=ckpt.get("seed", 0), device=device).restore(ckpt["state"], ckpt["dims"])

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "auto") -> "ZSLMethod":
        """Rebuild a fitted model from a checkpoint file alone."""
        return cls.from_checkpoint(read_checkpoint(path), device=device)

    @classmethod
    def _recipe(cls, hook: str) -> Recipe:
        recipe = cls.recipe
        return recipe.below(hook) if isinstance(recipe, ClassHooks) else recipe

    def run_provenance(self) -> dict:
        """What a run directory's provenance.json records of this fitted model beyond the data and the seed:
        the stages taken from earlier runs (``reused_stages_``: stage -> file, sha256), if any."""
        reused = getattr(self, "reused_stages_", None)
        return {"reused_stages": reused} if reused else {}

    def adopt_seen_classes(self, X, y, class_embeddings) -> None:
        """Make the seen-class side of a kept validation model refer to all training data (``y`` indexes the
        rows of ``class_embeddings``); needed by methods with ``keeps_validated_model``."""
        raise NotImplementedError(f"{self.name} keeps no validated model")


def _delegation(hook: str):
    def delegate(cls, *args, **kwargs):
        return getattr(cls._recipe(hook), hook)(*args, **kwargs)
    delegate.__name__ = delegate.__qualname__ = hook
    delegate.__doc__ = f"``cls.recipe.{hook}`` (the recipe hook by its old class-method name; zslkit.methods.recipe)."
    return classmethod(delegate)


for _hook in HOOKS:  # ZSLMethod.default_config, .search_space, ...: thin delegations to the method's recipe
    setattr(ZSLMethod, _hook, _delegation(_hook))
