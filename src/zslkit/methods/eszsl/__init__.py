"""ESZSL (Romera-Paredes and Torr, ICML 2015): the estimator (``estimator``: config, closed-form fit, bilinear scores)
and its recipe (``recipe``: the validation grid, the default criterion). See docs/methods/eszsl.md."""

from zslkit.methods.eszsl.estimator import ESZSL, ESZSLConfig

__all__ = ["ESZSL", "ESZSLConfig"]
