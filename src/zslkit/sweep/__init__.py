"""Sweeps over hyperparameters x datasets x seeds on Ray Tune (``zslkit sweep``; optional extra ``sweep``).

- ``space``: seeds, ``--param`` lists, the trial list and run-directory names (no Ray needed)
- ``trial``: one trial = one ``experiment.execute`` run in its own run directory (runs in Ray workers)
- ``engine``: starting or joining Ray, building / restoring the Tuner, the live progress table
- ``summary``: choosing a configuration per dataset on validation and writing ``summary.{md,csv,json}``
"""

from __future__ import annotations

from zslkit.errors import ZslkitError


class SweepError(ZslkitError):
    """A sweep could not run (Ray missing, cluster unreachable, trials failed); the CLI exits with 1."""


def require_ray():
    """Import Ray Tune, or raise one clear line saying how to install it."""
    try:
        import ray  # noqa: F401
        from ray import tune  # noqa: F401
    except ImportError:
        raise SweepError("zslkit sweep needs Ray Tune, which is not installed: pip install 'zslkit[sweep]'") from None
    return ray
