"""ZSL methods behind one estimator API (base.py), each with its recipe (recipe.py) and a registry (registry.py)."""

from zslkit.methods.base import CandidateClassifier, ZSLMethod
from zslkit.methods.options import TrainOption
from zslkit.methods.recipe import Recipe
from zslkit.methods.registry import available_methods, get_method, register

__all__ = ["CandidateClassifier", "Recipe", "TrainOption", "ZSLMethod", "available_methods", "get_method", "register"]
