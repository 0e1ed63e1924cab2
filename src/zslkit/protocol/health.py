"""Result health checks: a run that failed quietly says so instead of printing normal-looking numbers.

Two failures are common on real data: a GZSL head that (almost) never predicts an unseen class (the
generated/synthetic unseen classifiers are far weaker than the seen ones), and a ZSL accuracy at or below
chance (the semantic-visual mapping did not transfer). Both are reported as warnings with their likely
causes, in the printed summary and in ``metrics.json`` (``warnings``).
"""

from __future__ import annotations

# a GZSL head counts as "predicting (almost) no unseen class" when under this share of the unseen test
# samples' predictions are unseen classes (an honest head assigns most of them to unseen classes)
MIN_UNSEEN_SHARE = 0.05
# ZSL T1 counts as "at chance" below this multiple of 1 / (number of unseen classes)
CHANCE_MARGIN = 1.25
# a generator's seen-class fidelity (``generator_seen_fidelity``, cycle-wgan) counts as near chance below this
# multiple of its chance level (``generator_seen_fidelity_chance``)
FIDELITY_MARGIN = 1.5


def health_warnings(metrics: dict, *, num_unseen: int, unseen_share: float, what: str = "test") -> list[str]:
    """Warnings (strings) about ``metrics`` of a run whose ZSL head had ``num_unseen`` candidates and whose
    GZSL head assigned ``unseen_share`` of the unseen test samples to unseen classes."""
    out = []
    chance = 1.0 / max(1, num_unseen)
    t1 = float(metrics.get("zsl_t1", 0.0))
    if t1 < CHANCE_MARGIN * chance:
        out.append(f"ZSL T1 {100 * t1:.1f}% on {what} is at or below chance ({100 * chance:.1f}% for {num_unseen} "
                   f"unseen classes): the model did not transfer from seen to unseen classes. Likely causes: "
                   f"class embeddings that do not describe the visual differences, a diverged or collapsed "
                   f"generator, a training budget or learning rate far from what the data needs")
    if unseen_share < MIN_UNSEEN_SHARE:
        out.append(f"the GZSL head assigns only {100 * unseen_share:.1f}% of the unseen {what} samples to unseen "
                   f"classes (GZSL U {100 * float(metrics.get('gzsl_u', 0.0)):.1f}%): it is biased to the seen "
                   f"classes. Likely causes: too few or too weak synthetic/generated unseen classifiers, "
                   f"undertraining; calibrated stacking (gzsl_cs_*) shows what a seen-score offset recovers")
    fid = metrics.get("generator_seen_fidelity")
    fid_chance = float(metrics.get("generator_seen_fidelity_chance", 0.0))
    if fid is not None and float(fid) < FIDELITY_MARGIN * fid_chance:
        out.append(f"the generator's seen-class fidelity is {100 * float(fid):.1f}% (chance {100 * fid_chance:.1f}%): "
                   f"the means of its synthetic features for the training classes do not lie nearest their own real "
                   f"classes, so it has not learned even the classes it was trained on. Likely causes: too few "
                   f"generator steps for its learning rate, a network too narrow for its initialisation (issue 18: "
                   f"128 units at lr 1e-4), a diverged critic")
    return out
