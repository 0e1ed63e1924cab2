"""ESZSL's hyperparameters (:class:`ESZSLConfig`); what validation tries of them is its recipe (:mod:`.recipe`)."""

from __future__ import annotations

from dataclasses import dataclass

from zslkit.methods.config import option


@dataclass
class ESZSLConfig:
    gamma_exp: float = option(0.0, "feature-side ridge: 10**gamma_exp", min=-300, max=300)  # float64's range
    lambda_exp: float = option(0.0, "embedding-side ridge: 10**lambda_exp", min=-300, max=300)
    normalize_features: bool = option(True, "L2-normalise visual features before fitting and scoring")
    center_features: bool = option(True, "subtract the training features' mean (before the L2 normalisation)")
    relative_ridge: bool = option(True, "10**gamma_exp and 10**lambda_exp in units of the mean eigenvalue "
                                        "(trace / dimension) of X^T X and E^T E, so an exponent means the same on "
                                        "the validation view and on trainval")
    grid: tuple = option((-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0),
                         "exponents tried for both on validation (the paper's 10^-3..10^3)", item=float, min_length=1)
    lambda_min_exp: float = option(float("-inf"), "smallest lambda_exp of the grid tried on validation "
                                   "(-inf: all)", infinite=True)
    normalize_scores: bool = option(True, "divide each class's scores by the L2 norm of its weight vector V a "
                                          "(the cosine of the feature and the class's weights), so the seen classes' "
                                          "fitted weights do not outscore the unseen classes' composed ones")
