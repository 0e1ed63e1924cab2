"""CVC-ZSL hyperparameters (:class:`CVCConfig`: the model and its optimisation). The rules for data without a preset
and what validation selection tries are CVC-ZSL's recipe (:mod:`zslkit.methods.cvc.recipe`)."""

from __future__ import annotations

from dataclasses import dataclass

from zslkit.methods.config import option
from zslkit.methods.cvc.pseudo_labels import PSEUDO_FILTERS

GZSL_SEEN_MODES = ("generated", "learned")
OVERFLOW_MODES = ("error", "clip")


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
    epochs: int = option(1000, "inductive: training epochs; transductive: self-training epochs (selected on "
                         "validation)", min=0)
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
    pseudo_filter: str = option("ratio", "which unlabeled samples get pseudo labels: ratio (confident by "
                                "ratio_threshold, plus each class's topk_per_class), topk (each class's topk_per_class "
                                "only), top-third (the third with the highest top-1 scores)", choices=PSEUDO_FILTERS)
    ratio_threshold: float = option(1.2, "ratio filter: keep a pseudo label when |top-1 score| / |top-2 score| "
                                    "exceeds this")
    topk_per_class: int = option(5, "ratio and topk filters: the k highest-scoring unlabeled samples of every "
                                 "unseen class", min=0)
    pseudo_share: float = option(0.0, "largest share of a self-training episode's samples that are pseudo-labelled "
                                 "(fewer unseen classes per episode when more would exceed it; 0: no cap, the "
                                 "reference)", min=0, below=1)
    gce_q: float = option(0.5, "generalized cross-entropy exponent (q -> 0: cross-entropy)", min=0)
    # --- speed
    cuda_graphs: bool = option(True, "CUDA only: capture the inductive training step as a CUDA graph")
    graph_episodes: int = option(8, "CUDA only: training steps per captured CUDA graph (unrolled)", min=1)
    tf32: bool = option(False, "CUDA only: TensorFloat-32 matmuls in training steps (faster, 10-bit mantissa)")
    lr_grid: tuple = option((), "learning rates tried during validation selection (empty: only the config's)",
                            item=float, above=0)
    validation_patience: float = option(0.0, "validation fits stop after this fraction of their epochs without a "
                                        "better validation point (0: never)", min=0)
