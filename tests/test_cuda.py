"""CUDA checks (skipped without a GPU): the methods train and score on CUDA, CUDA-graph and eager CVC
training agree, and a CUDA checkpoint loads on the CPU with the same predictions."""

import numpy as np
import pytest
import torch

from zslkit.data.synthetic import make_synthetic
from zslkit.methods import ZSLMethod, get_method
from zslkit.pipeline import run_protocol

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")]

CVC_FAST = {"epochs": 3, "episodes": 40, "ways": 8, "shots": 4, "lr": 3e-4, "hidden_dim": 256,
            "episode_overflow": "error"}
GAN_FAST = None  # the synthetic-tiny preset (chosen on its validation classes; fast on a GPU)


@pytest.fixture(scope="module")
def tiny():
    return make_synthetic("synthetic-tiny", 0, difficulty=0.3)


@pytest.mark.parametrize("method, cfg", [("cvc-zsl", CVC_FAST), ("cycle-wgan", GAN_FAST), ("eszsl", {})])
def test_protocol_on_cuda_and_reload_on_cpu(method, cfg, tiny, tmp_path):
    res = run_protocol(get_method(method), tiny, config=cfg, selection="fixed", device="cuda", seed=0)
    assert res.model.device.type == "cuda"
    assert res.metrics["zsl_t1"] > 1.5 / len(tiny.unseen_classes)
    path = res.model.save(tmp_path / "m.pt")
    cpu = ZSLMethod.load(path, device="cpu")
    X = tiny.split("test_unseen")[0]
    E = tiny.class_embeddings[tiny.unseen_classes]
    agree = np.mean(res.model.predict(X, E) == cpu.predict(X, E))
    assert agree > 0.97


def test_cvc_cuda_graph_matches_eager(tiny):
    graph = run_protocol(get_method("cvc-zsl"), tiny, config=dict(CVC_FAST, cuda_graphs=True),
                         selection="fixed", device="cuda", seed=1).metrics
    eager = run_protocol(get_method("cvc-zsl"), tiny, config=dict(CVC_FAST, cuda_graphs=False),
                         selection="fixed", device="cuda", seed=1).metrics
    for k in ("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h"):
        assert graph[k] == pytest.approx(eager[k], abs=0.02)


def test_cvc_tf32_training_stays_close_and_restores_the_matmul_setting(tiny):
    before = torch.backends.cuda.matmul.fp32_precision
    cfg = dict(CVC_FAST, hidden_dim=1600)
    full = run_protocol(get_method("cvc-zsl"), tiny, config=cfg, selection="fixed", device="cuda", seed=1).metrics
    tf32 = run_protocol(get_method("cvc-zsl"), tiny, config=dict(cfg, tf32=True), selection="fixed", device="cuda",
                        seed=1).metrics
    assert torch.backends.cuda.matmul.fp32_precision == before
    for k in ("zsl_t1", "gzsl_h"):
        assert tf32[k] == pytest.approx(full[k], abs=0.05)


def test_transductive_cvc_on_cuda(tiny):
    cfg = dict(CVC_FAST, inductive_epochs=2, trans_ways=8, trans_shots=2, trans_lr=1e-4, refresh=1)
    m = run_protocol(get_method("cvc-zsl"), tiny, config=cfg, setting="transductive", selection="fixed",
                     device="cuda").metrics
    assert m["transductive"] is True and m["zsl_t1"] > 1.5 / len(tiny.unseen_classes)
