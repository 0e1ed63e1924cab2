"""CVC-ZSL: Li, Min, Fu, "Rethinking Zero-Shot Learning: A Conditional Visual Classification Perspective", ICCV 2019
(reference code: kailigo/cvcZSL; facts carried over, code written here).

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

The package, by concern: ``config`` (CVCConfig: the model and its optimisation), ``recipe`` (presets, the rules
for data without a preset, what validation tries, the warm-up, budget following), ``networks`` (generator, cosine
scores, GCE, candidate classifier), ``episodes`` (the tensor episode sampler), ``pseudo_labels``, ``episode_loop`` (the one chunked episode loop,
StepLR, episode shapes, TF32), ``graph_step`` (the inductive step, eager or CUDA graph), ``stages`` (seen-row
fine-tuning, the self-training step), ``training_state`` (resumable fits), ``estimator`` (CVCZSL). See
docs/methods/cvc_zsl.md.
"""

from zslkit.methods.cvc.config import CVCConfig
from zslkit.methods.cvc.estimator import CVCZSL
from zslkit.methods.cvc.networks import ClassifierGenerator, CVCClassifier, cosine_scores, generalized_cross_entropy
from zslkit.methods.cvc.pseudo_labels import pseudo_label
from zslkit.methods.cvc.recipe import RECIPE, scaled_defaults

__all__ = ["CVCClassifier", "CVCConfig", "CVCZSL", "ClassifierGenerator", "cosine_scores", "generalized_cross_entropy",
           "RECIPE", "pseudo_label", "scaled_defaults"]
