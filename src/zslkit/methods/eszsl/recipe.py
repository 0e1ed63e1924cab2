"""ESZSL's recipe: no presets (the dataclass defaults on any data), the regularisers chosen on the validation classes
over the paper's grid, by the calibrated GZSL H. Evidence on the real dev sets: docs/methods/eszsl.md."""

from __future__ import annotations

from zslkit.methods.eszsl.config import ESZSLConfig
from zslkit.methods.recipe import Recipe


class ESZSLRecipe(Recipe):
    # its regularisers are chosen by the calibrated H on validation (fashion-zsl, 4 folds: T1 0.63 -> 0.73 against
    # choosing by raw H; with normalize_scores the raw H follows: docs/methods/eszsl.md)
    default_criterion = "gzsl_cs_h"

    def search_space(self, config, dataset=None, setting: str = "inductive") -> list[dict]:
        """gamma x lambda over ``grid``, lambda from ``lambda_min_exp`` up (the largest exponent if none is left; the
        default -inf: the whole grid, docs/methods/eszsl.md)."""
        lambdas = [lam for lam in config.grid if lam >= config.lambda_min_exp] or [max(config.grid)]
        return [{"gamma_exp": g, "lambda_exp": lam} for g in config.grid for lam in lambdas]


RECIPE = ESZSLRecipe(ESZSLConfig, presets="eszsl")
