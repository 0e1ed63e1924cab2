"""rfelixmg/frwgan-eccv18 architecture JSON -> overrides of ``CycleWGANConfig``.

The reference describes each network as ``architecture`` (named variables with ``shape`` and ``initializer``),
``operators`` (applied in order: ``placeholder``, ``concat``, ``matmul``, ``bias_add``, ``activation``) and
``optimizer`` (``name``, ``lr``, ``decay``: lr / (1 + decay * epoch)); ``epochs``, ``batch``, ``wdecay`` (L2 on the
weights) and ``beta`` (the regressor's cycle-loss weight) beside them. Two kinds of file (format facts from
``models/*.py``, ``train.py``, ``routines/benchmark.py``, ``src/sota/<ds>/architecture/*.json``):

* ``namespace: "rwgan"`` (``cycle_wgan.json``, read by ``train.py``): blocks ``generator``, ``discriminator``,
  ``regressor``, ``classifier`` (the pretrained classifier) and ``gan`` (GAN epochs and batch), ``lmbda``;
* ``namespace: "classifier"`` (``fullyconnected.json``, read by ``routines/benchmark.py``): the final classifier.

zslkit's networks are fixed (``methods/cyclewgan/networks.py``, ``methods/cyclewgan/softmax.py``): G = concat(a, z) -> linear ->
leaky_relu -> linear -> relu; D = concat(x, a) -> linear -> leaky_relu -> linear; R = linear; classifiers =
linear [-> relu] -> softmax. A file is read into their widths, activations, Adam settings, learning rates and
decays, epochs and batch sizes; whatever they cannot express is a ``ConfigError`` naming the file and the field
(e.g. ``generator.operators[3].type``). Fields the reference itself never reads (``gan.r_beta``) are ignored.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from zslkit.errors import ConfigError

log = logging.getLogger("zslkit.interop")

ADAM_BETAS = (0.9, 0.999)  # TensorFlow's AdamOptimizer defaults (the reference passes only the learning rate)
DEFAULT_EPOCHS, DEFAULT_BATCH, DEFAULT_LR = 10, 512, 1e-2  # the reference's fallbacks when a key is absent
OPERATORS = ("placeholder", "concat", "matmul", "bias_add", "activation", "layers/activation")
ACTIVATIONS = ("relu", "softmax", "leaky_relu", "sigmoid", "dropout")
OPTIMIZERS = ("adam", "sgd", "rms")
INITIALIZERS = ("truncated", "constant", "zeros", "xavier", "batch_norm")
SHAPES = {"generator": "concat(a, z) -> matmul -> bias_add -> leaky_relu|relu -> matmul -> bias_add -> relu",
          "discriminator": "concat(x, a) -> matmul -> bias_add -> leaky_relu|relu -> matmul -> bias_add",
          "regressor": "placeholder(x) -> matmul -> bias_add",
          "classifier": "placeholder(x) -> matmul -> bias_add [-> relu] -> softmax"}
TF_LEAKY_ALPHA = 0.2  # tf.nn.leaky_relu's default slope
MODEL_KEYS = {"namespace", "placeholders", "placeholder_input", "placeholder_call", "fix_variables", "architecture",
              "operators", "optimizer", "epochs", "batch", "wdecay", "beta", "x_dim", "y_dim", "a_dim", "lmbda"}
GAN_FILE_KEYS = {"namespace", "x_dim", "y_dim", "a_dim", "lmbda", "loss_name", "placeholders", "placeholder_input",
                 "placeholder_call", "__list_models__", "gan", "generator", "discriminator", "classifier", "regressor"}
GAN_BLOCK_KEYS = {"epochs", "batch", "c_beta", "r_beta"}
OPERATOR_KEYS = {"op", "input", "inputs", "axis", "type", "params", "out", "ref"}
LAYER_KEYS = {"name", "shape", "initializer"}
NETWORKS = ("generator", "discriminator", "classifier", "regressor")


def _p(where: str, rest: str) -> str:
    """The field path ``where.rest`` (``rest`` alone at the top level of a file)."""
    return f"{where}.{rest}" if where else rest


class _File:
    """One JSON file being read: its path, named in every error with the field path."""

    def __init__(self, path: Path):
        self.path = path

    def error(self, field: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: {field}: {problem}")

    def block(self, parent: dict, key: str, where: str, kind=dict):
        if key not in parent:
            raise self.error(where, "missing")
        if not isinstance(parent[key], kind):
            raise self.error(where, f"expected a JSON {'object' if kind is dict else 'list'}")
        return parent[key]

    def known(self, obj: dict, allowed: set, where: str) -> None:
        for key in obj:
            if key == "test":
                raise self.error(_p(where, "test"), "test-time options (Monte-Carlo dropout) "
                                 "are not supported: zslkit's networks have no dropout")
            if key not in allowed:
                raise self.error(_p(where, key), f"not a field of the reference format here "
                                 f"(known: {', '.join(sorted(allowed))})")

    def number(self, obj: dict, key: str, where: str, default=None, *, integer=False, positive=False):
        if key not in obj:
            if default is None:
                raise self.error(_p(where, key), "missing")
            return default
        value = obj[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and value != int(value)):
            raise self.error(_p(where, key), f"expected {'an integer' if integer else 'a number'}, got {value!r}")
        if value < 0 or (positive and value == 0):
            raise self.error(_p(where, key), f"must be {'> 0' if positive else '>= 0'}, got {value!r}")
        return int(value) if integer else float(value)


def _load(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"{path}: architecture file not found")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise ConfigError(f"{path}: expected a JSON object at the top level")
    return obj


# ----- one network: operators matched against zslkit's fixed shape ------------------------------------------
def _tokens(f: _File, net: dict, where: str, name: str) -> list[tuple]:
    """The operators as tokens: ("placeholder", name), ("concat", names), ("matmul" | "bias_add", layer index),
    ("act", type, params); unknown or inexpressible operators are errors."""
    ops = f.block(net, "operators", _p(where, "operators"), list)
    layers = f.block(net, "architecture", _p(where, "architecture"), list)
    names = {}
    for i, layer in enumerate(layers):
        if not isinstance(layer, dict) or not isinstance(layer.get("name"), str):
            raise f.error(_p(where, f"architecture[{i}]"), "expected an object with a name")
        f.known(layer, LAYER_KEYS, _p(where, f"architecture[{i}]"))
        names[layer["name"]] = i
    out = []
    for i, op in enumerate(ops):
        at = _p(where, f"operators[{i}]")
        if not isinstance(op, dict) or "op" not in op:
            raise f.error(at, "expected an object with an 'op'")
        f.known(op, OPERATOR_KEYS, at)
        kind = op["op"]
        if kind not in OPERATORS:
            raise f.error(f"{at}.op", f"unknown operator {kind!r} (the reference format has: {', '.join(OPERATORS)})")
        if kind == "layers/activation":
            raise f.error(f"{at}.op", "layer operators (e.g. batch normalisation) cannot be expressed: zslkit's "
                          f"{name} is {SHAPES[name]}")
        if kind == "activation":
            kind_t = op.get("type")
            if kind_t not in ACTIVATIONS:
                raise f.error(f"{at}.type", f"unknown activation {kind_t!r} (the reference format has: "
                              f"{', '.join(ACTIVATIONS)})")
            if kind_t == "dropout":
                raise f.error(f"{at}.type", "zslkit's networks have no dropout (nor Monte-Carlo dropout)")
            params = op.get("params", {})
            allowed = {"alpha"} if kind_t == "leaky_relu" else set()
            if not isinstance(params, dict) or set(params) - allowed:
                raise f.error(f"{at}.params", f"{kind_t} takes {'only alpha' if allowed else 'no parameters'} here")
            out.append(("act", kind_t, params))
        elif kind in ("matmul", "bias_add"):
            ref = op.get("input")
            if not isinstance(ref, str) or not ref.startswith("layers/") or ref[7:] not in names:
                raise f.error(f"{at}.input", f"expected 'layers/<name>' of an entry of "
                              f"{_p(where, 'architecture')}, got {ref!r}")
            out.append((kind, names[ref[7:]]))
        elif kind == "placeholder":
            out.append(("placeholder", op.get("input")))
        else:  # concat
            inputs = op.get("inputs")
            if not isinstance(inputs, list):
                raise f.error(f"{at}.inputs", "expected a list of placeholder names")
            if op.get("axis", -1) not in (-1, 1):
                raise f.error(f"{at}.axis", "zslkit concatenates along the feature axis (-1)")
            out.append(("concat", tuple(sorted(map(str, inputs)))))
    return out


def _match(f: _File, tokens: list[tuple], expected: list[tuple], net: str, where: str) -> list[tuple]:
    """Check the tokens against ``expected`` (per position: the allowed tokens, activations and concats by their
    arguments); a ``None`` position is optional (skipped when the token does not match)."""
    out, i = [], 0
    for allowed in expected:
        optional = None in allowed
        allowed = [a for a in allowed if a is not None]
        tok = tokens[i] if i < len(tokens) else None
        fits = tok is not None and any(tok[0] == a[0] and (len(a) == 1 or tok[1] in a[1:]) for a in allowed)
        if fits:
            out.append(tok)
            i += 1
            continue
        if optional:
            continue
        label = lambda kind: "activation" if kind == "act" else kind  # noqa: E731
        want = " or ".join(label(a[0]) if len(a) == 1 else f"{label(a[0])} {'|'.join(map(str, a[1:]))}"
                           for a in allowed)
        if tok is None:
            raise f.error(_p(where, "operators"), f"ends after {len(tokens)} operators where {want} was expected: "
                          f"zslkit's {net} is {SHAPES[net]}")
        field = "type" if tok[0] == "act" and any(a[0] == "act" for a in allowed) else "op"
        got = f"{label(tok[0])} {tok[1]}" if tok[0] in ("act", "concat", "placeholder") else tok[0]
        raise f.error(_p(where, f"operators[{i}].{field}"), f"{got} where {want} was expected: zslkit's {net} is "
                      f"{SHAPES[net]} (a layer count or activation its fixed architecture cannot express)")
    if i < len(tokens):
        raise f.error(_p(where, f"operators[{i}]"), f"an operator after the end of zslkit's {net} ({SHAPES[net]}): a "
                      f"layer count its fixed architecture cannot express")
    return out


def _shape(f: _File, net: dict, where: str, index: int, rank: int) -> list[int]:
    shape = net["architecture"][index].get("shape")
    if not isinstance(shape, list) or len(shape) != rank or not all(isinstance(s, int) and s > 0 for s in shape):
        raise f.error(_p(where, f"architecture[{index}].shape"), f"expected {rank} positive integers, got {shape!r}")
    return shape


def _linear(f: _File, net: dict, where: str, mat: int, bias: int) -> tuple[int, int, str]:
    """(in, out, path of the weight shape) of one matmul + bias_add pair, the shapes checked to agree."""
    w = _shape(f, net, where, mat, 2)
    b = _shape(f, net, where, bias, 1)
    if b[0] != w[1]:
        raise f.error(_p(where, f"architecture[{bias}].shape"), f"bias width {b[0]} differs from the output width "
                      f"{w[1]} of {_p(where, f'architecture[{mat}]')}")
    return w[0], w[1], _p(where, f"architecture[{mat}].shape")


def _init(f: _File, net: dict, where: str, index: int, name: str, params: dict | None = None) -> None:
    init = net["architecture"][index].get("initializer")
    at = _p(where, f"architecture[{index}].initializer")
    if not isinstance(init, dict) or init.get("name") not in INITIALIZERS:
        raise f.error(f"{at}.name", f"unknown initializer {init!r} (the reference format has: "
                      f"{', '.join(INITIALIZERS)})")
    got = init.get("params", {})
    if init["name"] != name or {k: v for k, v in got.items() if not (k == "mean" and v == 0)} != (params or {}):
        raise f.error(at, f"zslkit initialises this variable as {name}{' ' + json.dumps(params) if params else ''}; "
                      f"{json.dumps(init)} cannot be honoured")


def _adam(f: _File, net: dict, where: str) -> tuple[float, float]:
    opt = f.block(net, "optimizer", _p(where, "optimizer"))
    f.known(opt, {"name", "lr", "decay"}, _p(where, "optimizer"))
    if opt.get("name", "adam") != "adam":
        raise f.error(_p(where, "optimizer.name"), f"{opt['name']!r}: zslkit trains every network with Adam "
                      f"(the reference format also has {', '.join(o for o in OPTIMIZERS if o != 'adam')})")
    return (f.number(opt, "lr", _p(where, "optimizer"), DEFAULT_LR, positive=True),
            f.number(opt, "decay", _p(where, "optimizer"), 0.0))


def _hidden_slope(f: _File, tok: tuple, at: str) -> float:
    return 0.0 if tok[1] == "relu" else f.number(tok[2], "alpha", f"{at}.params", TF_LEAKY_ALPHA)


def _no_wdecay(f: _File, net: dict, where: str) -> None:
    if f.number(net, "wdecay", where, 0.0) != 0:
        raise f.error(_p(where, "wdecay"), "zslkit has no weight decay for this network")


def _classifier(f: _File, net: dict, where: str) -> tuple[str, int, int, str]:
    """(head, input width, number of classes, path of those widths) of a classifier: linear [-> relu] -> softmax."""
    toks = _match(f, _tokens(f, net, where, "classifier"), [[("placeholder", "x")], [("matmul",)], [("bias_add",)],
                                             [("act", "relu"), None], [("act", "softmax")]], "classifier", where)
    width, classes, at = _linear(f, net, where, toks[1][1], toks[2][1])
    head = "relu" if len(toks) == 5 else "linear"
    logit_op = len(toks) - 2  # the loss is taken on the operator marked ref "last_logit": the one before softmax
    refs = [i for i, op in enumerate(net["operators"]) if op.get("ref") == "last_logit" and op.get("out")]
    if refs != [logit_op]:
        raise f.error(_p(where, f"operators[{logit_op}]"), "the loss must be taken on the operator before softmax: "
                      "mark it (and only it) with \"out\": 1, \"ref\": \"last_logit\"")
    if head == "linear":
        raise f.error(_p(where, f"operators[{logit_op}]"), "a classifier without relu before softmax: zslkit's linear "
                      "head initialises as torch does, which this format cannot state; zslkit honours the "
                      "reference's relu head (truncated N(0, 0.01) weights, 0.9999 bias)")
    _init(f, net, where, toks[1][1], "truncated", {"stddev": 0.01})
    _init(f, net, where, toks[2][1], "constant", {"value": 0.9999})
    return head, width, classes, at


# ----- the two kinds of file --------------------------------------------------------------------------------
def _gan_file(f: _File, doc: dict) -> tuple[dict, dict]:
    f.known(doc, GAN_FILE_KEYS, "")
    models = doc.get("__list_models__", list(NETWORKS))
    if not isinstance(models, list) or sorted(models) != sorted(NETWORKS):
        raise f.error("__list_models__", f"zslkit's cycle-WGAN has exactly {', '.join(NETWORKS)}; got {models!r}")
    nets = {name: f.block(doc, name, name) for name in NETWORKS}
    for name, net in nets.items():
        f.known(net, MODEL_KEYS, name)
    g, d, r = "generator", "discriminator", "regressor"
    gt = _match(f, _tokens(f, nets[g], g, g), [[("concat", ("a", "z"))], [("matmul",)], [("bias_add",)],
                                            [("act", "leaky_relu", "relu")], [("matmul",)], [("bias_add",)],
                                            [("act", "relu")]], g, g)
    dt = _match(f, _tokens(f, nets[d], d, d), [[("concat", ("a", "x"))], [("matmul",)], [("bias_add",)],
                                            [("act", "leaky_relu", "relu")], [("matmul",)], [("bias_add",)]], d, d)
    rt = _match(f, _tokens(f, nets[r], r, r), [[("placeholder", "x")], [("matmul",)], [("bias_add",)]], r, r)
    g_in, hidden_g, g1 = _linear(f, nets[g], g, gt[1][1], gt[2][1])
    g_hid, x_dim, g2 = _linear(f, nets[g], g, gt[4][1], gt[5][1])
    d_in, hidden_d, d1 = _linear(f, nets[d], d, dt[1][1], dt[2][1])
    d_hid, d_out, d2 = _linear(f, nets[d], d, dt[4][1], dt[5][1])
    r_in, a_dim, r1 = _linear(f, nets[r], r, rt[1][1], rt[2][1])
    for got, want, at, what in ((g_hid, hidden_g, g2, "the generator's hidden width"),
                                (d_hid, hidden_d, d2, "the discriminator's hidden width"),
                                (d_out, 1, d2, "one critic score"), (r_in, x_dim, r1, f"the feature width {x_dim}"),
                                (g_in, 2 * a_dim, g1, f"dim(a) + dim(z) = {a_dim} + {a_dim} (the reference draws z "
                                                      f"with the shape of a)"),
                                (d_in, x_dim + a_dim, d1, f"dim(x) + dim(a) = {x_dim} + {a_dim}")):
        if got != want:
            raise f.error(at, f"width {got} where {want} ({what}) was expected")
    for name, toks, pairs in ((g, gt, ((1, 2), (4, 5))), (d, dt, ((1, 2), (4, 5))), (r, rt, ((1, 2),))):
        for mat, bias in pairs:
            _init(f, nets[name], name, toks[mat][1], "xavier")
            _init(f, nets[name], name, toks[bias][1], "zeros")
    slope_g = _hidden_slope(f, gt[3], f"{g}.operators[3]")
    slope_d = _hidden_slope(f, dt[3], f"{d}.operators[3]")
    if slope_g != slope_d:
        raise f.error(f"{d}.operators[3]", f"hidden slope {slope_d} differs from the generator's {slope_g}: zslkit's "
                      f"G and D share one leaky_slope")
    for name in (g, d, "classifier"):
        _no_wdecay(f, nets[name], name)
    head, c_in, classes, c_at = _classifier(f, nets["classifier"], "classifier")
    if c_in != x_dim:
        raise f.error(c_at, f"input width {c_in} where {x_dim} (the feature width) was expected")
    gan = f.block(doc, "gan", "gan")
    f.known(gan, GAN_BLOCK_KEYS, "gan")
    if "r_beta" in gan:
        log.info("%s: gan.r_beta is not read by the reference (its cycle loss weight is regressor.beta)", f.path)
    lr_g, decay_g = _adam(f, nets[g], g)
    lr_d, decay_d = _adam(f, nets[d], d)
    lr_r, decay_r = _adam(f, nets[r], r)
    lr_c, decay_c = _adam(f, nets["classifier"], "classifier")
    c = nets["classifier"]
    overrides = {
        "epochs": f.number(gan, "epochs", "gan", DEFAULT_EPOCHS, integer=True, positive=True),
        "batch_size": f.number(gan, "batch", "gan", DEFAULT_BATCH, integer=True, positive=True),
        "hidden_g": hidden_g, "hidden_d": hidden_d, "noise_dim": 0, "leaky_slope": slope_g,
        "lr_g": lr_g, "lr_decay_g": decay_g, "betas_g": ADAM_BETAS,
        "lr_d": lr_d, "lr_decay_d": decay_d, "betas_d": ADAM_BETAS,
        "n_critic": 1, "gp_lambda": f.number(doc, "lmbda", "", None), "gp_alpha": "element", "gan_init": "xavier",
        "r_beta": f.number(nets[r], "beta", r, None),
        "regressor_epochs": f.number(nets[r], "epochs", r, DEFAULT_EPOCHS, integer=True),
        "regressor_batch": f.number(nets[r], "batch", r, DEFAULT_BATCH, integer=True, positive=True),
        "regressor_lr": lr_r, "regressor_lr_decay": decay_r,
        "regressor_weight_decay": f.number(nets[r], "wdecay", r, 0.0),
        "pre_cls_epochs": f.number(c, "epochs", "classifier", DEFAULT_EPOCHS, integer=True),
        "pre_cls_batch": f.number(c, "batch", "classifier", DEFAULT_BATCH, integer=True, positive=True),
        "pre_cls_lr": lr_c, "pre_cls_lr_decay": decay_c, "pre_cls_betas": ADAM_BETAS, "cls_head": head,
    }
    if "c_beta" in gan:
        overrides["c_beta"] = f.number(gan, "c_beta", "gan")
    dims = {"feature_dim": (x_dim, g2), "embedding_dim": (a_dim, r1), "num_classes": (classes, c_at)}
    return overrides, dims


def _classifier_file(f: _File, doc: dict) -> tuple[dict, dict]:
    f.known(doc, MODEL_KEYS, "")
    head, x_dim, classes, at = _classifier(f, doc, "")
    lr, decay = _adam(f, doc, "")
    overrides = {"cls_epochs": f.number(doc, "epochs", "", DEFAULT_EPOCHS, integer=True),
                 "cls_batch": f.number(doc, "batch", "", DEFAULT_BATCH, integer=True, positive=True),
                 "cls_lr": lr, "cls_lr_decay": decay, "cls_betas": ADAM_BETAS,
                 "cls_weight_decay": f.number(doc, "wdecay", "", 0.0), "cls_head": head}
    return overrides, {"feature_dim": (x_dim, at), "num_classes": (classes, at)}


KINDS = {"rwgan": _gan_file, "classifier": _classifier_file}
DIM_NAMES = {"feature_dim": ("feature_dim", "feature dimension"),
             "embedding_dim": ("embedding_dim", "class-embedding dimension"),
             "num_classes": ("num_classes", "number of classes")}


def read_architecture(path: str | Path, dataset=None) -> dict:
    """Overrides of ``CycleWGANConfig`` (field name -> value) read from one reference architecture file
    (``cycle_wgan.json`` or ``fullyconnected.json`` kind). With ``dataset`` (a ZSLDataset), the file's feature,
    class-embedding and class widths must be the dataset's. Raises ``ConfigError(file: field: problem)``."""
    f = _File(Path(path))
    doc = _load(f.path)
    kind = doc.get("namespace")
    if kind not in KINDS:
        raise f.error("namespace", f"{kind!r}: zslkit reads 'rwgan' (cycle-WGAN: generator, discriminator, "
                      f"regressor, classifier, as cycle_wgan.json) and 'classifier' (the final classifier, as "
                      f"fullyconnected.json)")
    overrides, dims = KINDS[kind](f, doc)
    if dataset is not None:
        for key, (width, at) in dims.items():
            attr, what = DIM_NAMES[key]
            if width != getattr(dataset, attr):
                raise f.error(at, f"{what} {width}, but {dataset.name} has {getattr(dataset, attr)}: the file was "
                              f"written for other data")
    return overrides


def read_architectures(paths, dataset=None) -> dict:
    """The overrides of several architecture files together (e.g. cycle_wgan.json and fullyconnected.json);
    a field that two files set to different values is a ``ConfigError`` naming both."""
    merged, origin = {}, {}
    for path in paths:
        for key, value in read_architecture(path, dataset).items():
            if key in merged and merged[key] != value:
                raise ConfigError(f"{path}: sets {key} = {value!r}, but {origin[key]} set {merged[key]!r} "
                                  f"(zslkit has one {key} for both)")
            merged[key], origin[key] = value, path
    return merged
