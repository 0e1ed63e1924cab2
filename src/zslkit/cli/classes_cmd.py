"""``zslkit classes embed``: class descriptions (or bare names) -> one text embedding per class."""

from __future__ import annotations

import json
from pathlib import Path

from zslkit.data.classtable import SUFFIXES, names_file, write_class_table
from zslkit.errors import ConfigError
from zslkit.runs import atomic_write_bytes
from zslkit.runtime import resolve_device


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("classes", help="class embeddings from plain-text class descriptions",
                              description="Embed class descriptions with a sentence or CLIP text model. See "
                                          "docs/features.md.")
    sub = p.add_subparsers(dest="classes_command", metavar="ACTION")
    em = sub.add_parser("embed", help="embed class<TAB>description lines (several per class are averaged) or bare "
                                      "class names")
    em.add_argument("descriptions", metavar="DESCRIPTIONS",
                    help="text file: class<TAB>description lines, or one class name per line")
    em.add_argument("--model", required=True, metavar="NAME",
                    help="sentence-transformers:NAME_OR_PATH or open_clip:ARCH/PRETRAINED")
    em.add_argument("--template", default=None, metavar="TEXT",
                    help="prompt for lines that are bare class names, {} = the name (default \"a photo of a {}.\")")
    em.add_argument("--weights", default=None, metavar="FILE",
                    help="open_clip: local checkpoint instead of downloading the PRETRAINED weights")
    em.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    em.add_argument("--out", required=True, metavar="FILE",
                    help=".npy (names in FILE.classes.txt beside it) or .csv/.tsv (class name first)")
    em.set_defaults(func=_embed)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _embed(args) -> int:
    from zslkit.text.embed import TextEncoder, embed_classes, read_descriptions  # optional extra (text)

    out = Path(args.out)
    if out.suffix.lower() not in SUFFIXES:
        raise ConfigError(f"--out must end in .npy, .csv or .tsv, got {out.name!r}")
    desc = read_descriptions(args.descriptions, args.template)
    encoder = TextEncoder(args.model, weights=args.weights, device=resolve_device(args.device))
    emb = embed_classes(desc, encoder)
    write_class_table(out, desc.class_names, emb)
    record = {"model": args.model, "weights": encoder.description, "descriptions": desc.source,
              "template": args.template, "num_classes": len(desc.class_names), "dim": int(emb.shape[1]),
              "descriptions_per_class": {n: len(t) for n, t in zip(desc.class_names, desc.texts)},
              "normalisation": "each description L2-normalised, class = L2-normalised mean"}
    atomic_write_bytes((json.dumps(record, indent=2) + "\n").encode("utf-8"), out.with_name(out.stem + ".json"))
    extra = f" (+ {names_file(out).name})" if out.suffix.lower() == ".npy" else ""
    print(f"embedded {sum(map(len, desc.texts))} descriptions of {len(desc.class_names)} classes with "
          f"{encoder.description}")
    print(f"wrote {len(desc.class_names)} x {emb.shape[1]} class embeddings to {out}{extra}")
    return 0
