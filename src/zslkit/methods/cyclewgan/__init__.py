"""cycle-WGAN (Felix, Kumar, Reid, Carneiro, ECCV 2018) and its f-CLSWGAN baseline (Xian et al., CVPR 2018).

A conditional WGAN-GP learns to generate visual features from class embeddings:

* critic loss   L_D = mean D(x~, a) - mean D(x, a) + lambda * mean (||grad_x^ D(x^, a)||_2 - 1)^2
  (f-CLSWGAN's sign convention; the cycle-WGAN code writes the negation, which is equivalent);
* generator loss L_G = -mean D(x~, a) + r_beta * MSE(R(x~), a)   [cycle-wgan, cycle-clswgan]
                                      + c_beta * CE(C(x~), y)     [f-clswgan, cycle-clswgan]
  where R (linear, visual -> semantic) is pretrained on real seen features with MSE and C is a pretrained,
  frozen seen-class softmax.

The final classifier over any candidate classes is a separate, explicit step (``CycleWGAN.fit_head``): features
are synthesised for the candidates and a softmax is trained on them (plus real seen features in ``merge``).

Modules: ``config`` (CycleWGANConfig, variants), ``recipe`` (presets, ``scaled_default``, the head search, the
checkpoint metric), ``networks`` (G, D, initialisations, gradient penalty, feature scaler), ``stages`` (the training
stages besides the GAN: the pretrained regressor and classifier, and the reuse of stages from earlier runs),
``softmax`` (the supervised mini-batch loop and the softmax classifier), ``gan`` (the GAN epoch loop),
``head`` (synthesis and the final classifier), ``estimator`` (``CycleWGAN``). See docs/methods/cycle_wgan.md.
"""

from zslkit.methods.cyclewgan.config import CLS_VARIANTS, HEAD_FIELDS, MODES, VARIANTS, CycleWGANConfig
from zslkit.methods.cyclewgan.estimator import CycleWGAN
from zslkit.methods.cyclewgan.networks import Critic, FeatureScaler, Generator, gradient_penalty
from zslkit.methods.cyclewgan.recipe import RECIPE, scaled_default

__all__ = ["CLS_VARIANTS", "HEAD_FIELDS", "MODES", "VARIANTS", "Critic", "CycleWGAN", "CycleWGANConfig",
           "FeatureScaler", "Generator", "RECIPE", "gradient_penalty", "scaled_default"]
