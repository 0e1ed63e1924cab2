"""ZSL methods behind one estimator API and a registry (see base.py and registry.py)."""

from zslkit.methods.base import CandidateClassifier, ZSLMethod
from zslkit.methods.registry import available_methods, get_method, register

__all__ = ["CandidateClassifier", "ZSLMethod", "available_methods", "get_method", "register"]
