"""A method's recipe: how it is trained on given data, apart from the estimator (the model and its optimisation).

A recipe is data and small functions: the preset lookup (``presets/<method>.yaml``), the rules for data without a
preset (``scaled_config``), what validation selection searches (``search_space``: separate fits; ``head_space``:
final-classifier settings scored without refitting), the transductive warm-up (``warmup_config`` /
``with_warmup``), schedules that follow a changed training length (``follow_budget``), the default selection
criterion, and the rules on the user's overrides (``user_overrides``). Every method's recipe lives in one file
beside its estimator (``methods/cvc/recipe.py``, ``methods/cyclewgan/recipe.py``, ``methods/eszsl/recipe.py``), each
rule with its reason; the estimator class names its recipe (``ZSLMethod.recipe``).

Named recipes are what ``--variant`` and ``--preset`` choose: ``default`` (the dataset's preset, else the rules
on the data), a variant (e.g. cvc-zsl ``reference``: the reference code's protocol; cycle-wgan
``f-clswgan-reference``: the f-CLSWGAN release's recipe on any data), and a dataset preset by name (``--preset
AWA1``: that entry's hyperparameters on whatever data is loaded).
"""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace

from zslkit.errors import ConfigError
from zslkit.methods.config import apply_overrides
from zslkit.presets import Preset, find_preset, list_presets

DEFAULT = "default"  # the recipe name of "no variant": the dataset's preset, else the rules on the data


class Recipe:
    """The base recipe: presets by dataset name, the config dataclass's defaults for other data, no search beyond
    the epochs, no heads, no warm-up, schedules kept as they are. Methods subclass it (one file per method)."""

    default_criterion: str = "gzsl_h"  # what validation selection maximises unless the user says
    variants: tuple[str, ...] = ()  # the method's own variants (its config's ``variant`` field)

    def __init__(self, config_class: type, presets: str):
        self.config_class = config_class
        self.presets = presets  # the presets file's method name (presets/<presets>.yaml)

    # ----- named recipes and presets ------------------------------------------------------------------
    def names(self) -> tuple[str, ...]:
        """What ``--variant`` accepts: ``default``, the method's variants and the variants of its presets file."""
        found = [p.variant for p in list_presets(self.presets) if p.variant]
        return tuple(dict.fromkeys([DEFAULT, *self.variants, *found]))

    def preset_entries(self, setting: str = "inductive") -> list[str]:
        """The dataset presets ``--preset NAME`` can name for ``setting`` (all variants)."""
        return sorted({p.name for p in list_presets(self.presets) if p.setting == setting})

    def preset_for(self, dataset=None, setting: str = "inductive", variant: str | None = None,
                   preset: str | None = None) -> Preset | None:
        """The preset entry a run uses: ``preset`` (an entry's name) if given, else the first of
        ``preset_names(dataset)`` and then the ``default`` entry, tried for each of ``preset_variants(variant)``;
        None: no entry (the rules on the data apply)."""
        return self._lookup(dataset, setting, self._check_variant(variant), preset)

    def _lookup(self, dataset, setting: str, variant: str | None, preset: str | None) -> Preset | None:
        """:meth:`preset_for` for a ``variant`` already checked."""
        names = [preset] if preset else [*self.preset_names(dataset), DEFAULT]  # "default" serves every dataset
        for name in names:
            for v in self.preset_variants(variant):
                p = find_preset(self.presets, name, setting, v)
                if p is not None and p.name.lower() == name.lower():
                    return p
        if preset:
            known = ", ".join(self.preset_entries(setting)) or "none"
            raise ConfigError(f"{self.presets} has no preset {preset!r} for {setting} runs"
                              f"{f' (variant {variant})' if variant else ''}; presets: {known}")
        return None

    def default_config(self, dataset=None, setting: str = "inductive", variant: str | None = None,
                       preset: str | None = None):
        """The hyperparameters for ``dataset`` (a ZSLDataset): its preset (for ``variant``; or the entry named
        ``preset``) if one exists, else ``scaled_config``, the rules on the data's size. The one preset lookup."""
        variant = self._check_variant(variant)
        p = self._lookup(dataset, setting, variant, preset)
        if p is not None:
            return self.from_preset(p, variant)
        if variant is not None and variant not in self.variants:
            names = self.preset_names(dataset)
            raise ConfigError(f"{self.presets} has no preset variant {variant!r} for "
                              f"{names[0] if names else 'this data'} ({setting})")
        return self.scaled_config(dataset, setting, variant)

    def _check_variant(self, variant: str | None) -> str | None:
        """``variant`` as the lookup uses it (``default`` -> None), or a ConfigError naming the known ones."""
        if variant is None or variant == DEFAULT:
            return None
        known = set(self.names()) - {DEFAULT}
        if not known:
            raise ConfigError(f"{self.presets} has no variants (got --variant {variant!r})")
        if variant not in known:
            raise ConfigError(f"{self.presets} has no variant {variant!r}; choose one of {', '.join(sorted(known))}")
        return variant

    def preset_names(self, dataset) -> list[str]:
        """Preset entry names to try for ``dataset``, first match wins (base: the dataset's name)."""
        return [dataset.name] if dataset is not None else []

    def preset_variants(self, variant: str | None) -> list[str | None]:
        """Preset variants to try for the requested ``variant``, in order (base: exactly it)."""
        return [variant]

    def from_preset(self, preset: Preset, variant: str | None):
        """The config of a preset entry."""
        return apply_overrides(self.config_class(), preset.params, source=f"preset {preset.name}")

    def scaled_config(self, dataset=None, setting: str = "inductive", variant: str | None = None):
        """The config for data without a preset: rules on its size and shape (base: the dataclass defaults)."""
        return self.config_class()

    # ----- the user's overrides -----------------------------------------------------------------------
    def user_overrides(self, config, overrides: dict) -> dict:
        """The overrides a user gave, with what they imply for this method (base: as given)."""
        return overrides

    def follow_budget(self, base, config, setting: str = "inductive"):
        """``config`` (``base`` with user overrides) with its learning-rate schedule rescaled to a changed
        training length, unless the schedule itself was overridden. The base keeps the config as is."""
        return config

    def criterion(self, config, selection: str, criterion: str | None) -> str | None:
        """The selection criterion this config asks for (None: the caller's default, ``default_criterion``);
        a ConfigError when the config and the selection or the criterion given disagree. Base: as given."""
        return criterion

    # ----- validation selection -----------------------------------------------------------------------
    def search_space(self, config, dataset=None, setting: str = "inductive") -> list[dict]:
        """Override dicts tried during validation selection (the first is usually ``{}``); each is a fit."""
        return [{}]

    def head_space(self, config, dataset=None, setting: str = "inductive") -> list[dict]:
        """Override dicts of fields that change only ``build_classifier`` (no refit): validation selection
        scores every one of them at every evaluation point of every fit."""
        return [{}]

    def warmup_config(self, config):
        """For transductive methods that start from an inductive model: the inductive configuration whose
        validation selection chooses that warm-up (see ``with_warmup``); None: no warm-up stage."""
        return None

    def with_warmup(self, config, chosen: dict):
        """The transductive ``config`` starting from the warm-up whose overrides (epochs included) were chosen."""
        return config


# the hooks ZSLMethod still answers by name (thin delegations to its recipe; docs/extending.md)
HOOKS = ("default_config", "preset_names", "preset_variants", "from_preset", "scaled_config", "search_space",
         "warmup_config", "with_warmup", "follow_budget", "head_space")


class ClassHooks(Recipe):
    """The recipe of a method class that overrides the old class-method hooks (``search_space`` etc.) instead of
    naming a recipe: each overridden hook is the class's, everything else ``fallback``'s (the inherited recipe)."""

    def __init__(self, method_cls: type, fallback: Recipe, overridden: tuple[str, ...]):
        super().__init__(fallback.config_class, fallback.presets)
        self.default_criterion, self.variants = fallback.default_criterion, fallback.variants
        self.fallback, self.overridden = fallback, tuple(overridden)
        for name in ("names", "user_overrides", "criterion", *HOOKS):
            if name in overridden:
                setattr(self, name, self._hook(method_cls, name))
            elif name != "default_config":  # the lookup itself runs here, on the hooks above
                setattr(self, name, getattr(fallback, name))

    def _hook(self, method_cls: type, name: str):
        return lambda *args, **kwargs: getattr(method_cls, name)(*args, **kwargs)

    def below(self, name: str):
        """What a base-class delegation of ``name`` answers from. The class overrides ``name``: the delegation is only
        reached from that override's ``super()`` call, so the inherited behaviour (``fallback``'s hook; for
        ``default_config`` the lookup run on this recipe's hooks, as the old base class did); else this recipe."""
        if name not in self.overridden:
            return self
        if name == "default_config":
            return SimpleNamespace(default_config=partial(Recipe.default_config, self))
        return self.fallback
