"""Synthetic ZSL datasets shaped like the benchmarks: the embedded default data, always labelled synthetic.

Generative model (documented in docs/synthetic.md), for a preset and a seed:

1. Each class c has a latent description h_c in R^L (L = 24): classes are grouped into "superclasses"
   (h_c = group centre + within-group spread), so sibling classes are confusable, as in AWA or CUB.
2. The class embedding is a noisy, non-linear view of h_c: attributes
   a_c = normalise(sigmoid(P h_c + e_c)) with a few attributes zeroed per class (non-negative, unit L2
   norm, like ``att``), or for sentence-style presets a dense a_c = normalise(P h_c + e_c).
3. The visual prototype is another non-linear view, mu_c = softplus(W2 tanh(W1 h_c)) + d_c, where d_c is
   a class-specific deviation that no embedding predicts (what makes ZSL not trivial).
4. A sample of class c is x = relu(mu_c + B z + s * n), z ~ N(0, I_8) (shared nuisance directions),
   n ~ N(0, I_D): non-negative 2048-d features, like ResNet-101 pool features.

Because embeddings and prototypes both derive from h_c, a model that maps embeddings to the visual space
generalises to unseen classes, up to the unpredictable part d_c and the embedding noise e_c.

Split sizes follow the benchmark (``PRESETS``, from the xlsa17 README table): unseen classes hold the
``test_unseen`` images; seen-class images are divided into ``trainval`` and ``test_seen``; the validation
classes (``val``) and the remaining seen classes (``train``) split all seen-class images by class, as in
the original xlsa17 ``train_loc``/``val_loc``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zslkit.data.dataset import ZSLDataset
from zslkit.errors import ConfigError


@dataclass(frozen=True)
class SyntheticPreset:
    name: str
    num_classes: int
    num_unseen: int
    num_val_classes: int
    embedding_dim: int
    trainval: int
    test_seen: int
    test_unseen: int
    val: int | None  # images of the validation classes (None: proportional to class counts)
    feature_dim: int = 2048
    embedding_style: str = "attributes"  # or "sentences"
    shaped_like: str = ""


PRESETS: dict[str, SyntheticPreset] = {p.name: p for p in [
    SyntheticPreset("synthetic-awa1", 50, 10, 13, 85, 19832, 4958, 5685, 7926, shaped_like="AWA1"),
    SyntheticPreset("synthetic-awa2", 50, 10, 13, 85, 23527, 5882, 7913, 9191, shaped_like="AWA2"),
    SyntheticPreset("synthetic-cub", 200, 50, 50, 312, 7057, 1764, 2967, 2946, shaped_like="CUB (attributes)"),
    SyntheticPreset("synthetic-cub-sent", 200, 50, 50, 1024, 7057, 1764, 2967, 2946, embedding_style="sentences",
                    shaped_like="CUB (1024-d sentence embeddings)"),
    SyntheticPreset("synthetic-sun", 717, 72, 65, 102, 10320, 2580, 1440, 1300, shaped_like="SUN"),
    SyntheticPreset("synthetic-apy", 32, 12, 5, 64, 5932, 1483, 7924, None, shaped_like="APY"),
    SyntheticPreset("synthetic-flo", 102, 20, 20, 1024, 5631, 1403, 1155, 1156, embedding_style="sentences",
                    shaped_like="FLO (1024-d sentence embeddings)"),
    SyntheticPreset("synthetic-tiny", 30, 6, 6, 24, 600, 192, 180, None, feature_dim=64,
                    shaped_like="nothing (small, for tests)"),
]}

LATENT_DIM = 24  # dimension of the latent class descriptions h_c
CONCEPT_DIM = 64  # dimension of the visual concept space the prototypes live in
DEVIATION = 0.5  # std of the class deviation d_c that no embedding predicts
WITHIN_CLASS_NOISE = 2.0  # std of the within-class variation in concept space
PIXEL_NOISE = 0.1  # std of the independent per-dimension noise


def _allocate(total: int, weights: np.ndarray, minimum: int = 1) -> np.ndarray:
    """Integers >= minimum summing to ``total``, proportional to ``weights`` (largest remainder)."""
    k = weights.size
    if total < minimum * k:
        raise ConfigError(f"cannot give {k} groups at least {minimum} of {total} items")
    share = weights / weights.sum() * (total - minimum * k)
    base = np.floor(share).astype(np.int64)
    rest = total - minimum * k - base.sum()
    base[np.argsort(-(share - base), kind="stable")[:rest]] += 1
    return base + minimum


def _normalise_rows(m: np.ndarray) -> np.ndarray:
    return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)


def make_synthetic(preset: str | SyntheticPreset = "synthetic-tiny", seed: int = 0, *,
                   difficulty: float = 1.0) -> ZSLDataset:
    """Generate a synthetic dataset deterministically from (preset, seed).

    ``difficulty`` scales the unpredictable class deviation and the sample noise (1.0 = default).
    """
    if isinstance(preset, str):
        if preset not in PRESETS:
            import difflib

            close = difflib.get_close_matches(preset, list(PRESETS), n=3)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise ConfigError(f"unknown synthetic preset {preset!r}.{hint} Available: {', '.join(PRESETS)}")
        preset = PRESETS[preset]
    p = preset
    rng = np.random.default_rng([int(seed), 20191027])
    C, U, A, D = p.num_classes, p.num_unseen, p.embedding_dim, p.feature_dim
    S = C - U

    # 1. latent class descriptions with superclass structure
    groups = max(2, C // 6)
    centres = rng.normal(0.0, 1.0, (groups, LATENT_DIM))
    group_of = rng.integers(0, groups, C)
    h = centres[group_of] + 0.7 * rng.normal(0.0, 1.0, (C, LATENT_DIM))

    # 2. class embeddings: a noisy non-linear view of h
    P = rng.normal(0.0, 1.0 / np.sqrt(LATENT_DIM), (LATENT_DIM, A))
    e = 0.35 * rng.normal(0.0, 1.0, (C, A))
    if p.embedding_style == "sentences":
        emb = _normalise_rows(h @ P * 1.5 + e)
    else:
        emb = 1.0 / (1.0 + np.exp(-(h @ P) * 2.0 - e))
        emb[rng.random((C, A)) < 0.1] = 0.0  # attributes annotators left out
        emb = _normalise_rows(emb)

    # 3. visual prototypes in a K-d "visual concept" space: another non-linear view of h plus an
    #    unpredictable class deviation
    hidden = 4 * LATENT_DIM
    W1 = rng.normal(0.0, 1.0 / np.sqrt(LATENT_DIM), (LATENT_DIM, hidden))
    W2 = rng.normal(0.0, 1.0 / np.sqrt(hidden), (hidden, CONCEPT_DIM))
    proto = np.tanh(h @ W1) @ W2 * 2.0 + DEVIATION * difficulty * rng.normal(0.0, 1.0, (C, CONCEPT_DIM))
    Q = rng.normal(0.0, 1.0 / np.sqrt(CONCEPT_DIM), (CONCEPT_DIM, D)) * 2.0
    offset = rng.normal(-0.5, 0.5, D)

    # which classes are unseen / validation (global ids shuffled, as in the benchmarks)
    order = rng.permutation(C)
    unseen = np.sort(order[:U])
    seen = np.sort(order[U:])
    val_classes = np.sort(rng.choice(seen, p.num_val_classes, replace=False))
    train_classes = np.setdiff1d(seen, val_classes)

    # per-class image counts that hit the benchmark's split sizes exactly
    counts = np.zeros(C, dtype=np.int64)
    counts[unseen] = _allocate(p.test_unseen, rng.uniform(0.6, 1.4, U), minimum=2)
    seen_total = p.trainval + p.test_seen
    if p.val is not None:
        counts[val_classes] = _allocate(p.val, rng.uniform(0.6, 1.4, val_classes.size), minimum=2)
        counts[train_classes] = _allocate(seen_total - p.val, rng.uniform(0.6, 1.4, train_classes.size), minimum=2)
    else:
        counts[seen] = _allocate(seen_total, rng.uniform(0.6, 1.4, S), minimum=2)
    test_seen_counts = np.zeros(C, dtype=np.int64)
    test_seen_counts[seen] = _allocate(p.test_seen, counts[seen].astype(float) - 1.0, minimum=0)
    test_seen_counts[seen] = np.minimum(test_seen_counts[seen], counts[seen] - 1)
    deficit = p.test_seen - test_seen_counts.sum()
    for c in seen[np.argsort(-counts[seen])]:  # rare: give leftovers to the largest classes
        if deficit <= 0:
            break
        room = counts[c] - 1 - test_seen_counts[c]
        take = min(room, deficit)
        test_seen_counts[c] += take
        deficit -= take

    # 4. samples, class by class, then shuffled
    labels = np.repeat(np.arange(C), counts)
    N = labels.size
    perm = rng.permutation(N)
    labels = labels[perm]
    noise_scale = WITHIN_CLASS_NOISE * difficulty
    features = np.empty((N, D), dtype=np.float32)
    chunk = 4096
    for start in range(0, N, chunk):
        lab = labels[start:start + chunk]
        v = proto[lab] + noise_scale * rng.normal(0.0, 1.0, (lab.size, CONCEPT_DIM))
        n = rng.normal(0.0, PIXEL_NOISE, (lab.size, D))
        features[start:start + lab.size] = np.maximum(v @ Q + offset + n, 0.0)

    # splits
    is_seen = np.isin(labels, seen)
    test_seen_idx = []
    for c in seen:
        members = np.flatnonzero(labels == c)
        test_seen_idx.append(rng.choice(members, test_seen_counts[c], replace=False))
    test_seen_idx = np.sort(np.concatenate(test_seen_idx))
    trainval_idx = np.setdiff1d(np.flatnonzero(is_seen), test_seen_idx)
    splits = {
        "trainval": trainval_idx,
        "test_seen": test_seen_idx,
        "test_unseen": np.flatnonzero(~is_seen),
        "train": np.flatnonzero(np.isin(labels, train_classes)),
        "val": np.flatnonzero(np.isin(labels, val_classes)),
    }
    names = tuple(f"{p.name.removeprefix('synthetic-')}_class_{c:03d}" for c in range(C))
    note = (f"SYNTHETIC data generated by zslkit (preset {p.name}, seed {seed}, difficulty {difficulty}); "
            f"shaped like {p.shaped_like}; not a real benchmark")
    return ZSLDataset(features=features, labels=labels, class_embeddings=emb.astype(np.float32),
                      class_names=names, splits=splits, name=p.name, semantic_source=f"synthetic-{p.embedding_style}",
                      synthetic=True, source=f"zslkit.data.synthetic:{p.name}:seed={seed}", split_sha256=None,
                      notes=(note,))
