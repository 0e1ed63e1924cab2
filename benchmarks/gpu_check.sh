#!/usr/bin/env bash
# GPU checks in one go (run from the repository root on a machine with CUDA and torch installed):
# the CUDA tests plus the method tests, then both benchmarks and the CVC-ZSL kernel profile on the GPU. Results go to ${OUT:-benchmarks/results}.
set -u
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
export PYTHONPATH=$PWD/src:$PWD/tests
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
timeout 300 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_cvc.py tests/test_cyclewgan.py 2>&1 | tail -15
timeout 200 python3 benchmarks/bench_cvc.py --device cuda --episodes 10000 --rounds 3 --out "$OUT/cvc_cuda.json" 2>&1 | tail -8
timeout 200 python3 benchmarks/bench_cvc.py --device cuda --episodes 10000 --rounds 3 --graph-episodes 32 \
    --out "$OUT/cvc_cuda_graph32.json" 2>&1 | tail -8
timeout 200 python3 benchmarks/bench_cvc.py --device cuda --episodes 10000 --rounds 3 --tf32 \
    --out "$OUT/cvc_cuda_tf32.json" 2>&1 | tail -8
timeout 120 python3 benchmarks/profile_cvc.py --device cuda --out "$OUT/profile_cvc_cuda.json" 2>&1 | tail -22
timeout 200 python3 benchmarks/bench_cyclewgan.py --device cuda --out "$OUT/cyclewgan_cuda.json" 2>&1 | tail -8
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_features_extract.py -m cuda 2>&1 | tail -3
timeout 300 python3 benchmarks/bench_features.py --device cuda --images 2560 --out "$OUT/features_cuda.json" 2>&1 | tail -4
