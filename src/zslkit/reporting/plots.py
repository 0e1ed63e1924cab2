"""PNG plots saved in a run directory (matplotlib, headless Agg backend).

* ``training_curves.png`` — the method's per-epoch training losses and the validation points
  (selection metric per evaluation point);
* ``seen_unseen_curve.png`` — GZSL seen vs unseen accuracy over the calibration gamma, with AUSUC;
* ``per_class_accuracy.png`` — per-class accuracy bars (ZSL and GZSL);
* ``features_pca.png`` — for feature-generating methods: real vs synthesized test-class features in 2-D.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger("zslkit.plots")
MAX_NAMED_BARS = 50


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    fig.clf()
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def _title(meta: dict) -> str:
    data = "SYNTHETIC" if meta.get("synthetic") else "real"
    method = meta.get("method", "?")
    if meta.get("variant") and meta["variant"] != method:
        method = f"{method} ({meta['variant']})"
    return f"{method} on {meta.get('dataset', '?')} ({data} data), seed {meta.get('seed', '?')}"


LOSS_WORDS = ("loss", "gp", "cycle", "cls", "wasserstein")


def plot_training_curves(training: list[dict], history: list[dict], meta: dict, path: Path) -> Path | None:
    """Left: per-epoch training losses (x = epochs in training order, stage boundaries marked) and, on a second
    axis, the generator diagnostics of the monitored epochs (``seen_fidelity``, ``spread_ratio``: cycle-wgan);
    right: the selection trace (metrics at each evaluation point, and ``val_fidelity``, the generator's fidelity on
    the validation classes, where the rows have it)."""
    plt = _pyplot()
    keys = sorted({k for row in training for k, v in row.items()
                   if any(w in k for w in LOSS_WORDS) and isinstance(v, (int, float)) and not isinstance(v, bool)})
    if not keys and not history:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    ax = axes[0]
    if keys:
        x = np.arange(1, len(training) + 1)
        for k in keys:
            ax.plot(x, [row.get(k, np.nan) for row in training], label=k, lw=1.5)
        stages = [row.get("stage") for row in training]
        for i in range(1, len(stages)):
            if stages[i] != stages[i - 1]:
                ax.axvline(i + 0.5, color="grey", ls=":", lw=1)
                ax.text(i + 0.5, ax.get_ylim()[1], f" {stages[i]}", va="top", fontsize=8, color="grey")
        ax.set_xlabel("training epoch (all stages, in order)")
        ax.set_title("training losses")
        ax.legend(fontsize=8, loc="upper left")
        ax.grid(alpha=0.3)
        _plot_diagnostics(ax, training)
    else:
        ax.text(0.5, 0.5, "no per-epoch training log\n(closed-form method)", ha="center", va="center")
        ax.set_axis_off()
    ax = axes[1]
    if history:
        cands = sorted({row["candidate"] for row in history})
        for c in cands:
            rows = [r for r in history if r["candidate"] == c]
            ep = [r["epoch"] for r in rows]
            lbl = "" if len(cands) > 6 else f" cand {c}"
            ax.plot(ep, [100 * r["gzsl_h"] for r in rows], "o-", ms=3, lw=1, label=f"H{lbl}" if len(cands) <= 6 else None)
            ax.plot(ep, [100 * r["zsl_t1"] for r in rows], "s--", ms=3, lw=1,
                    label=f"ZSL T1{lbl}" if len(cands) <= 6 else None)
            fid = [(r["epoch"], 100 * r["val_fidelity"]) for r in rows if "val_fidelity" in r]
            if fid:
                ax.plot(*zip(*fid), "^:", ms=3, lw=1, label=f"val-class fidelity{lbl}" if len(cands) <= 6 else None)
        ax.set_xlabel("epoch (evaluation point)")
        ax.set_ylabel("accuracy (%)")
        mode = meta.get("selection", {}).get("mode", "")
        ax.set_title("selection trace: " + ("TEST set (ORACLE)" if mode == "oracle" else "validation classes"))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    else:
        ax.text(0.5, 0.5, "no selection trace\n(--selection fixed)", ha="center", va="center")
        ax.set_axis_off()
    fig.suptitle(_title(meta))
    return _save(fig, path)


def _plot_diagnostics(ax, training: list[dict]) -> None:
    """Generator diagnostics of the monitored epochs on a second y axis of the loss panel (x as the losses)."""
    pts = [(i + 1, row) for i, row in enumerate(training) if "seen_fidelity" in row]
    if not pts:
        return
    twin = ax.twinx()
    twin.plot([i for i, _ in pts], [r["seen_fidelity"] for _, r in pts], "o-", color="black", ms=3, lw=1,
              label="seen-class fidelity")
    spread = [(i, r["spread_ratio"]) for i, r in pts if "spread_ratio" in r]
    if spread:
        twin.plot(*zip(*spread), "d--", color="dimgrey", ms=3, lw=1, label="spread ratio (syn / real)")
    twin.set_ylabel("generator diagnostics")
    twin.legend(fontsize=8, loc="upper right")


def plot_seen_unseen_curve(curve: dict, metrics: dict, path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5.5))
    u = 100 * np.asarray(curve["unseen"])
    s = 100 * np.asarray(curve["seen"])
    ax.plot(u, s, "-", lw=2, color="tab:blue", label=f"seen-unseen curve (AUSUC {100 * metrics.get('ausuc', 0):.1f}%)")
    ax.fill_between(u, s, alpha=0.12, color="tab:blue")
    ax.plot(100 * metrics["gzsl_u"], 100 * metrics["gzsl_s"], "o", ms=9, color="tab:red",
            label=f"no calibration: U {100 * metrics['gzsl_u']:.1f} S {100 * metrics['gzsl_s']:.1f} "
                  f"H {100 * metrics['gzsl_h']:.1f}")
    if "gzsl_cs_u" in metrics:
        src = metrics.get("selection", {}).get("calibration_gamma_source", "")
        ax.plot(100 * metrics["gzsl_cs_u"], 100 * metrics["gzsl_cs_s"], "D", ms=8, color="tab:green",
                label=f"calibrated (gamma from {src}): H {100 * metrics['gzsl_cs_h']:.1f}")
    ax.set_xlabel("unseen-class accuracy U (%)")
    ax.set_ylabel("seen-class accuracy S (%)")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(_title(metrics), fontsize=9)
    return _save(fig, path)


def plot_per_class(per_class: dict, metrics: dict, path: Path) -> Path:
    plt = _pyplot()
    panels = [("zsl", "ZSL (unseen classes among unseen)"), ("gzsl_unseen", "GZSL unseen classes"),
              ("gzsl_seen", "GZSL seen classes")]
    fig, axes = plt.subplots(len(panels), 1, figsize=(12, 10))
    for ax, (key, title) in zip(axes, panels):
        items = sorted(per_class.get(key, {}).items(), key=lambda kv: kv[1])
        if not items:
            ax.set_axis_off()
            continue
        names = [k for k, _ in items]
        vals = [100 * v for _, v in items]
        x = np.arange(len(vals))
        ax.bar(x, vals, color="tab:orange" if "unseen" in key or key == "zsl" else "tab:blue", width=0.8)
        ax.axhline(np.mean(vals), color="k", lw=1, ls="--", label=f"mean {np.mean(vals):.1f}%")
        if len(names) <= MAX_NAMED_BARS:
            ax.set_xticks(x)
            ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
        else:
            ax.set_xticks([])
            ax.set_xlabel(f"{len(names)} classes, sorted by accuracy (too many to name)")
        ax.set_ylim(0, 100)
        ax.set_ylabel("accuracy (%)")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(_title(metrics))
    return _save(fig, path)


def pca_2d(X: np.ndarray) -> np.ndarray:
    Xc = X - X.mean(0, keepdims=True)
    _, _, vt = np.linalg.svd(Xc, full_matrices=False)
    return Xc @ vt[:2].T


def plot_real_vs_synthetic(model, dataset, metrics: dict, path: Path, max_classes: int = 8,
                           per_class: int = 60, seed: int = 0) -> Path | None:
    """PCA of real test_unseen features vs features the model synthesizes for the same classes."""
    if not hasattr(model, "synthesize"):
        return None
    plt = _pyplot()
    rng = np.random.default_rng(seed)
    classes = dataset.unseen_classes[:max_classes]
    Xu, yu = dataset.split("test_unseen")
    real, real_y = [], []
    for c in classes:
        idx = np.flatnonzero(yu == c)
        idx = rng.choice(idx, min(per_class, idx.size), replace=False)
        real.append(Xu[idx])
        real_y.append(np.full(idx.size, c))
    real = np.concatenate(real)
    real_y = np.concatenate(real_y)
    fake, fake_local = model.synthesize(dataset.class_embeddings[classes], per_class, seed=seed)
    fake = np.asarray(fake)
    fake_y = classes[np.asarray(fake_local)]
    Z = pca_2d(np.concatenate([real, fake]))
    zr, zf = Z[:real.shape[0]], Z[real.shape[0]:]
    fig, ax = plt.subplots(figsize=(7, 6))
    cmap = plt.get_cmap("tab10")
    for i, c in enumerate(classes):
        ax.scatter(*zr[real_y == c].T, s=10, color=cmap(i % 10), alpha=0.6, marker="o",
                   label=dataset.class_names[c][:24])
        ax.scatter(*zf[fake_y == c].T, s=18, color=cmap(i % 10), alpha=0.8, marker="x")
    ax.set_title("real (o) vs synthesized (x) features of unseen classes, PCA\n" + _title(metrics), fontsize=9)
    ax.legend(fontsize=7, markerscale=1.5, loc="best")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def save_run_plots(run_dir: Path, *, result, dataset) -> list[Path]:
    """All plots of a finished protocol run into ``run_dir``; returns the files written."""
    run_dir = Path(run_dir)
    meta = result.metrics
    out = []
    p = plot_training_curves(getattr(result.model, "history_", []) or [], result.history, meta,
                             run_dir / "training_curves.png")
    if p:
        out.append(p)
    out.append(plot_seen_unseen_curve(result.scores.curve(), meta, run_dir / "seen_unseen_curve.png"))
    out.append(plot_per_class(result.scores.per_class(), meta, run_dir / "per_class_accuracy.png"))
    try:
        p = plot_real_vs_synthetic(result.model, dataset, meta, run_dir / "features_pca.png")
    except Exception as exc:  # a plot must never break a finished run
        log.warning("features_pca.png skipped: %s", exc)
        p = None
    if p:
        out.append(p)
    return out
