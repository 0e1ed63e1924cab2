"""Reading rfelixmg/frwgan-eccv18 architecture JSON files (written here in the reference's format) into
CycleWGANConfig overrides, and the ConfigErrors for what zslkit's fixed networks cannot honour."""

import copy
import dataclasses
import json

import pytest

from zslkit.data.synthetic import make_synthetic
from zslkit.errors import ConfigError
from zslkit.interop.frwgan_architecture import read_architecture, read_architectures
from zslkit.methods.cyclewgan import CycleWGAN, CycleWGANConfig

X, A, Y, HG, HD = 64, 24, 30, 48, 40  # synthetic-tiny: 64-d features, 24-d embeddings, 30 classes


def layer(name, shape, init="xavier", params=None):
    out = {"name": name, "initializer": {"name": init}, "shape": shape}
    if params:
        out["initializer"]["params"] = params
    return out


def op(kind, **kw):
    return {"op": kind, **kw}


def act(kind, **kw):
    return {"op": "activation", "type": kind, **kw}


def classifier_block(x=X, y=Y):
    return {"placeholder_input": ["x", "y"], "placeholder_call": ["x"],
            "architecture": [layer("c_fc1", [x, y], "truncated", {"stddev": 0.01}),
                             layer("c_bc1", [y], "constant", {"value": 0.9999})],
            "operators": [op("placeholder", input="x"), op("matmul", input="layers/c_fc1"),
                          op("bias_add", input="layers/c_bc1"), act("relu", out=1, ref="last_logit"),
                          act("softmax")]}


def gan_file(x=X, a=A, y=Y):
    """A cycle_wgan.json in the reference's format (every operator and initializer its files use)."""
    placeholders = [{"name": n, "shape": [None, w], "dtype": "float32"}
                    for n, w in (("x", x), ("a", a), ("y", y), ("z", a))]
    cls = classifier_block(x, y)
    cls.update(epochs=7, batch=128, y_dim=y, beta=0.01, optimizer={"name": "adam", "lr": 0.05})
    return {
        "namespace": "rwgan", "x_dim": x, "y_dim": y, "lmbda": 10, "loss_name": "wgan_loss",
        "placeholder_input": ["a", "x"], "__list_models__": ["generator", "discriminator", "classifier", "regressor"],
        "placeholders": placeholders,
        "gan": {"epochs": 35, "batch": 32, "c_beta": 0.02, "r_beta": 0.01},
        "generator": {
            "placeholder_input": ["a", "z"], "placeholder_call": ["a", "z"],
            "architecture": [layer("g_fc1", [2 * a, HG]), layer("g_bc1", [HG], "zeros"), layer("g_fc2", [HG, x]),
                             layer("g_bc2", [x], "zeros")],
            "operators": [op("concat", inputs=["a", "z"], axis=-1), op("matmul", input="layers/g_fc1"),
                          op("bias_add", input="layers/g_bc1"), act("leaky_relu"), op("matmul", input="layers/g_fc2"),
                          op("bias_add", input="layers/g_bc2"), act("relu")],
            "optimizer": {"name": "adam", "lr": 2e-4, "decay": 0.018}},
        "discriminator": {
            "placeholder_input": ["x", "a", "generator/a"], "placeholder_call": ["x", "a"],
            "architecture": [layer("d_fc1", [x + a, HD]), layer("d_bc1", [HD], "zeros"), layer("d_fc2", [HD, 1]),
                             layer("d_bc2", [1], "zeros")],
            "operators": [op("concat", inputs=["x", "a"], axis=-1), op("matmul", input="layers/d_fc1"),
                          op("bias_add", input="layers/d_bc1"), act("leaky_relu"), op("matmul", input="layers/d_fc2"),
                          op("bias_add", input="layers/d_bc2")],
            "optimizer": {"name": "adam", "lr": 1e-3}},
        "classifier": cls,
        "regressor": {
            "placeholder_input": ["x", "a", "y"], "fix_variables": ["a_dict", "y_classes"], "placeholder_call": ["x"],
            "epochs": 12, "batch": 16, "x_dim": x, "y_dim": y, "a_dim": a, "wdecay": 0.001, "beta": 0.05,
            "architecture": [layer("r_fc1", [x, a]), layer("r_bc1", [a], "zeros")],
            "operators": [op("placeholder", input="x"), op("matmul", input="layers/r_fc1"),
                          op("bias_add", input="layers/r_bc1")],
            "optimizer": {"name": "adam", "lr": 9.9e-5, "decay": 2.6e-4}},
    }


def classifier_file(x=X, y=Y):
    """A fullyconnected.json in the reference's format (the final classifier)."""
    doc = {"namespace": "classifier", "x_dim": x, "y_dim": y, "lmbda": 10, "epochs": 37, "batch": 256, "beta": 0.01,
           "wdecay": 1e-4, "placeholders": [{"name": "x", "shape": [None, x], "dtype": "float32"}]}
    doc.update(classifier_block(x, y))
    doc["optimizer"] = {"name": "adam", "lr": 9.98e-5, "decay": 2.84e-3}
    return doc


def write(tmp_path, doc, name="arch.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return path


@pytest.fixture(scope="module")
def tiny():
    return make_synthetic("synthetic-tiny", seed=0)


def test_gan_file_maps_every_field(tmp_path, tiny):
    got = read_architecture(write(tmp_path, gan_file()), dataset=tiny)
    assert got == {
        "epochs": 35, "batch_size": 32, "hidden_g": HG, "hidden_d": HD, "noise_dim": 0, "leaky_slope": 0.2,
        "lr_g": 2e-4, "lr_decay_g": 0.018, "betas_g": (0.9, 0.999),
        "lr_d": 1e-3, "lr_decay_d": 0.0, "betas_d": (0.9, 0.999),
        "n_critic": 1, "gp_lambda": 10.0, "gp_alpha": "element", "gan_init": "xavier",
        "r_beta": 0.05, "c_beta": 0.02,
        "regressor_epochs": 12, "regressor_batch": 16, "regressor_lr": 9.9e-5, "regressor_lr_decay": 2.6e-4,
        "regressor_weight_decay": 0.001,
        "pre_cls_epochs": 7, "pre_cls_batch": 128, "pre_cls_lr": 0.05, "pre_cls_lr_decay": 0.0,
        "pre_cls_betas": (0.9, 0.999), "cls_head": "relu"}


def test_classifier_file_maps_every_field(tmp_path, tiny):
    got = read_architecture(write(tmp_path, classifier_file()), dataset=tiny)
    assert got == {"cls_epochs": 37, "cls_batch": 256, "cls_lr": 9.98e-5, "cls_lr_decay": 2.84e-3,
                   "cls_betas": (0.9, 0.999), "cls_weight_decay": 1e-4, "cls_head": "relu"}


def test_both_files_make_a_valid_config(tmp_path, tiny):
    over = read_architectures([write(tmp_path, gan_file(), "g.json"), write(tmp_path, classifier_file(), "c.json")],
                              dataset=tiny)
    names = {f.name for f in dataclasses.fields(CycleWGANConfig)}
    assert set(over) <= names
    cfg = dataclasses.replace(CycleWGANConfig(), **over)
    model = CycleWGAN(cfg)  # the method's own checks accept it
    if hasattr(model, "resolved_config"):  # scikit-learn style estimators check when resolving
        model.resolved_config()
    assert cfg.cls_epochs == 37 and cfg.epochs == 35 and cfg.betas_g == (0.9, 0.999)


def test_reference_variations_are_read(tmp_path):
    doc = gan_file()
    doc["generator"]["operators"][0]["inputs"] = ["z", "a"]  # SUN's order: same function class
    doc["generator"]["operators"][3] = act("leaky_relu", params={"alpha": 0.1})
    doc["discriminator"]["operators"][3] = act("leaky_relu", params={"alpha": 0.1})
    doc["discriminator"]["operators"][0]["inputs"] = ["a", "x"]
    for key in ("epochs", "batch"):  # the reference's fallbacks: 10 epochs, batch 512
        del doc["gan"][key]
    del doc["generator"]["optimizer"]["lr"]  # the reference's fallback learning rate 1e-2
    del doc["__list_models__"], doc["gan"]["c_beta"]
    got = read_architecture(write(tmp_path, doc))
    assert got["leaky_slope"] == 0.1 and got["epochs"] == 10 and got["batch_size"] == 512 and got["lr_g"] == 1e-2
    assert "c_beta" not in got
    doc["generator"]["operators"][3] = act("relu")  # relu hidden layers = leaky slope 0
    doc["discriminator"]["operators"][3] = act("relu")
    assert read_architecture(write(tmp_path, doc))["leaky_slope"] == 0.0


def edit(change):
    """A GAN file changed in place by ``change(doc)``."""
    doc = gan_file()
    change(doc)
    return doc


BAD = [  # (name, document, expected words: the field path first)
    ("unknown operator", edit(lambda d: d["generator"]["operators"].insert(3, op("conv2d", input="layers/g_fc1"))),
     ["generator.operators[3].op", "unknown operator 'conv2d'"]),
    ("unknown activation", edit(lambda d: d["generator"]["operators"].__setitem__(3, act("tanh"))),
     ["generator.operators[3].type", "unknown activation 'tanh'"]),
    ("activation zslkit lacks", edit(lambda d: d["generator"]["operators"].__setitem__(6, act("sigmoid"))),
     ["generator.operators[6].type", "activation sigmoid where activation relu was expected"]),
    ("dropout", edit(lambda d: d["discriminator"]["operators"].insert(4, act("dropout", params={"keep_prob": 0.5}))),
     ["discriminator.operators[4].type", "no dropout"]),
    ("batch norm", edit(lambda d: d["generator"]["operators"].insert(3, op("layers/activation", type="batch_norm",
                                                                          input="layers/bn"))),
     ["generator.operators[3].op", "layer operators"]),
    ("extra layer", edit(lambda d: d["regressor"]["operators"].append(act("relu"))),
     ["regressor.operators[3]", "layer count"]),
    ("missing output activation", edit(lambda d: d["generator"]["operators"].pop()),
     ["generator.operators", "ends after 6 operators"]),
    ("second hidden layer", edit(lambda d: d["discriminator"]["operators"].__setitem__(slice(4, 4), [
        op("matmul", input="layers/d_fc1"), op("bias_add", input="layers/d_bc1"), act("leaky_relu")])),
     ["discriminator.operators[6]", "layer count"]),
    ("sgd", edit(lambda d: d["discriminator"]["optimizer"].update(name="sgd")),
     ["discriminator.optimizer.name", "Adam"]),
    ("optimizer typo", edit(lambda d: d["regressor"]["optimizer"].update(beta1=0.5)),
     ["regressor.optimizer.beta1", "not a field"]),
    ("key typo", edit(lambda d: d["regressor"].update(epoch=3)), ["regressor.epoch", "not a field"]),
    ("mc dropout", edit(lambda d: d["regressor"].update(test={"mcmc_dropout": 1})), ["regressor.test", "dropout"]),
    ("slopes differ", edit(lambda d: d["discriminator"]["operators"].__setitem__(3, act("relu"))),
     ["discriminator.operators[3]", "share one leaky_slope"]),
    ("generator wdecay", edit(lambda d: d["generator"].update(wdecay=1e-3)), ["generator.wdecay", "weight decay"]),
    ("bias width", edit(lambda d: d["generator"]["architecture"][1].update(shape=[HG + 1])),
     ["generator.architecture[1].shape", "bias width"]),
    ("noise width", edit(lambda d: d["generator"]["architecture"][0].update(shape=[A + 5, HG])),
     ["generator.architecture[0].shape", f"width {A + 5}", "dim(a) + dim(z)"]),
    ("critic output", edit(lambda d: (d["discriminator"]["architecture"][2].update(shape=[HD, 2]),
                                      d["discriminator"]["architecture"][3].update(shape=[2]))),
     ["discriminator.architecture[2].shape", "one critic score"]),
    ("bad layer reference", edit(lambda d: d["generator"]["operators"][1].update(input="layers/nope")),
     ["generator.operators[1].input", "layers/<name>"]),
    ("initializer", edit(lambda d: d["generator"]["architecture"][0].update(
        initializer={"name": "truncated", "params": {"stddev": 0.02}})),
     ["generator.architecture[0].initializer", "xavier"]),
    ("unknown initializer", edit(lambda d: d["regressor"]["architecture"][0].update(initializer={"name": "he"})),
     ["regressor.architecture[0].initializer.name", "unknown initializer"]),
    ("classifier init", edit(lambda d: d["classifier"]["architecture"][1]["initializer"].update(
        params={"value": 0.5})), ["classifier.architecture[1].initializer", "0.9999"]),
    ("linear classifier", edit(lambda d: (d["classifier"]["operators"].pop(3),
                                          d["classifier"]["operators"][2].update(out=1, ref="last_logit"))),
     ["classifier.operators[2]", "without relu"]),
    ("loss not marked", edit(lambda d: d["classifier"]["operators"][3].pop("ref")),
     ["classifier.operators[3]", "last_logit"]),
    ("other namespace", edit(lambda d: d.update(namespace="wgan")), ["namespace", "'wgan'", "rwgan"]),
    ("no regressor", edit(lambda d: d.update(__list_models__=["generator", "discriminator", "classifier"])),
     ["__list_models__", "regressor"]),
    ("missing block", edit(lambda d: d.pop("gan")), ["gan: missing"]),
    ("missing lmbda", edit(lambda d: d.pop("lmbda")), ["lmbda: missing"]),
    ("regressor beta", edit(lambda d: d["regressor"].pop("beta")), ["regressor.beta: missing"]),
    ("bad number", edit(lambda d: d["gan"].update(epochs="many")), ["gan.epochs", "integer"]),
    ("negative", edit(lambda d: d["regressor"]["optimizer"].update(decay=-1)), ["regressor.optimizer.decay", ">= 0"]),
    ("zero batch", edit(lambda d: d["gan"].update(batch=0)), ["gan.batch", "> 0"]),
    ("concat axis", edit(lambda d: d["generator"]["operators"][0].update(axis=0)), ["generator.operators[0].axis"]),
    ("classifier input", edit(lambda d: d["classifier"]["architecture"][0].update(shape=[X + 1, Y])),
     ["classifier.architecture[0].shape", "input width"]),
]


@pytest.mark.parametrize("name,doc,words", BAD, ids=[b[0] for b in BAD])
def test_what_zslkit_cannot_honour_is_a_config_error(tmp_path, name, doc, words):
    path = write(tmp_path, doc)
    with pytest.raises(ConfigError) as exc:
        read_architecture(path)
    msg = str(exc.value)
    assert msg.startswith(f"{path}: {words[0]}"), msg
    for w in words[1:]:
        assert w in msg, (w, msg)


def test_classifier_file_errors(tmp_path):
    doc = classifier_file()
    doc["operators"][3] = act("sigmoid", out=1, ref="last_logit")
    with pytest.raises(ConfigError, match=r"arch\.json: operators\[3\]\.type: activation sigmoid"):
        read_architecture(write(tmp_path, doc))
    doc = classifier_file()
    doc["optimizer"]["name"] = "rms"
    with pytest.raises(ConfigError, match=r"optimizer\.name: 'rms'"):
        read_architecture(write(tmp_path, doc))


def test_widths_are_checked_against_the_dataset(tmp_path, tiny):
    for doc, field, what in ((gan_file(x=2048), "generator.architecture[2].shape", "feature dimension 2048"),
                             (gan_file(a=85), "regressor.architecture[0].shape", "class-embedding dimension 85"),
                             (gan_file(y=50), "classifier.architecture[0].shape", "number of classes 50"),
                             (classifier_file(y=50), "architecture[0].shape", "number of classes 50")):
        path = write(tmp_path, doc)
        read_architecture(path)  # consistent on its own
        with pytest.raises(ConfigError) as exc:
            read_architecture(path, dataset=tiny)
        assert str(exc.value).startswith(f"{path}: {field}: {what}, but synthetic-tiny has"), str(exc.value)


def test_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="architecture file not found"):
        read_architecture(tmp_path / "absent.json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        read_architecture(write(tmp_path, "{'single quotes': 1}"))
    with pytest.raises(ConfigError, match="JSON object at the top level"):
        read_architecture(write(tmp_path, "[1, 2]"))


def test_conflicting_files_are_refused(tmp_path):
    g = write(tmp_path, gan_file(), "g.json")
    other = copy.deepcopy(gan_file())
    other["gan"]["epochs"] = 99
    with pytest.raises(ConfigError, match=r"o\.json: sets epochs = 99, but .*g\.json set 35"):
        read_architectures([g, write(tmp_path, other, "o.json")])
    assert read_architectures([g, g])["epochs"] == 35  # the same value twice is fine
