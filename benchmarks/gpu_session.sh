#!/usr/bin/env bash
# The pending GPU measurements in one call to a lent GPU machine, in the order given, each under its own time
# limit, each step's log and JSON written to $OUT as soon as it ends: a call cut short still returns every step
# it finished. Why one script: a GPU machine is lent for a few calls a session, each start costs minutes of the
# budget, and a command line is limited to 2,000 characters.
#
#   bash benchmarks/gpu_session.sh STEP[:SECONDS] ...     # from the repository root; OUT defaults to ./gpu-out
#
# Steps (default limit in seconds):
# - kernel (180); separable (120: kernel_cuda.py's antialias and Pillow rows only); rle (40); geometry (240: the
#   held-out exactness sweep); host (120); cudatests (120: the tests that need CUDA); compiled (90: the RLE's
#   tests and the ragged launch's CUDA test with the kernels compiled)
# - rfdetr (240); item1 (360: issue 13 item 1's run, 1,000 images, fp32, cuda_graphs, the network's throughput beside
#   the dumps' with lookahead 0 and 1); lookahead (300: item1's dumps with the local executor's lookahead 0 and 1,
#   alternating, in one process; LOOKAHEAD_IMAGES=320 for a short call); switch (420: item1's dumps with the local
#   executor's switch_interval_ms at Python's 5 ms and at 0.5 ms, alternating, in one process; SWITCH_IMAGES); where
#   (200: the triton dump of that run under dump_profile_gpu.py, with lookahead 1 or WHERE_LOCAL's local params: each
#   step's host and GPU time a batch, the GPU's busy share); rfdetr5000 (560); graphs5000 (560: the same with the
#   adapter's cuda_graphs); fast5000 (560: graphs5000 evaluated by faster_coco_eval); stream (360: rfdetr fp32 as
#   shipped (a first run for the process's start), then without the local executor's arena, with its encode_stream, each
#   twice, alternating); graphs (240: rfdetr fp32, eager, with the adapter's cuda_graphs, eager again; gate and model
#   throughput)
# - profile (300: the rfdetr fp32 dumps under cProfile, the main thread's top functions in profile-top.txt, and the
#   GPU's utilisation each second in profile-gpu.txt: where a dump's time goes)
# - ray (450: the Mask R-CNN, ray with concurrency 1 and 2 against local, 3 rounds); rayrfdetr (400: the same for
#   RF-DETR)
# Wheels the image lacks are installed from the git-ignored folders .whl (pydantic, pycocotools, faster-coco-eval),
# .whl-rf (rfdetr and its dependencies), .whl-test (pytest) and .ray (a stripped Ray, ray-stripped.tar.xz) where
# carried.
set -u
export OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT" /tmp/site
wheels=$(ls .whl/*.whl .whl-rf/*.whl .whl-test/*.whl 2>/dev/null)
[ -n "$wheels" ] && python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site $wheels
if [ -f .ray/ray-stripped.tar.xz ]; then
    mkdir -p /tmp/raysite && tar -xJf .ray/ray-stripped.tar.xz -C /tmp/raysite
fi
export PYTHONPATH=/tmp/site:/tmp/raysite:$PWD:$PWD/benchmarks
{ nvidia-smi -L; python -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"; } \
    > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"

step() {  # name, limit, command...: runs it, keeps its log, prints its end
    local name=$1 limit=$2
    shift 2
    local begin=$SECONDS
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    echo "== $name: exit $? after $((SECONDS - begin)) s (limit $limit)"
    grep -v '^{' "$OUT/$name.log" | tail -n 15
}

for arg in "$@"; do
    name=${arg%%:*}
    limit=${arg#*:}
    [ "$limit" = "$arg" ] && limit=
    case $name in
        ray) step ray "${limit:-450}" python benchmarks/ray_executor_gpu.py --models maskrcnn-demo --images 500 \
            --rounds 3 --concurrency 1,2 --out "$OUT/ray.json" ;;
        rayrfdetr) step rayrfdetr "${limit:-400}" python benchmarks/ray_executor_gpu.py --models rfdetr-seg-nano \
            --images 500 --rounds 3 --concurrency 1,2 --out "$OUT/rayrfdetr.json" ;;
        kernel) step kernel "${limit:-180}" python benchmarks/kernel_cuda.py --out "$OUT/kernel.json" ;;
        separable) step separable "${limit:-120}" python benchmarks/kernel_cuda.py --only bilinear_antialias \
            pillow_bilinear --out "$OUT/separable.json" ;;
        rle) step rle "${limit:-40}" python benchmarks/rle_steps.py --device cuda ;;
        geometry) step geometry "${limit:-240}" python benchmarks/geometry_cuda.py --out "$OUT/geometry.json" ;;
        host) step host "${limit:-120}" python benchmarks/host_path_gpu.py --out "$OUT/host.json" ;;
        rfdetr) step rfdetr "${limit:-240}" python benchmarks/rfdetr_gpu.py --images 240 --out "$OUT/rfdetr.json" ;;
        item1) step item1 "${limit:-360}" python benchmarks/rfdetr_gpu.py --images 1000 --precisions fp32 \
            --model-params '{"cuda_graphs": true}' --local-params '{}' '{"lookahead": 1}' --out "$OUT/item1.json" ;;
        lookahead) step lookahead "${limit:-300}" python benchmarks/rfdetr_gpu.py --images "${LOOKAHEAD_IMAGES:-1000}" \
            --precisions fp32 --no-throughput --model-params '{"cuda_graphs": true}' \
            --local-params '{}' '{"lookahead": 1}' '{}' '{"lookahead": 1}' --out "$OUT/lookahead.json" ;;
        switch) step switch "${limit:-420}" python benchmarks/rfdetr_gpu.py --images "${SWITCH_IMAGES:-1000}" \
            --precisions fp32 --no-throughput --model-params '{"cuda_graphs": true}' \
            --local-params '{"switch_interval_ms": 5}' '{"switch_interval_ms": 0.5}' '{"switch_interval_ms": 5}' \
            '{"switch_interval_ms": 0.5}' --out "$OUT/switch.json" ;;
        where) step where "${limit:-200}" python benchmarks/dump_profile_gpu.py --images 1000 --variant triton \
            --model-params '{"cuda_graphs": true}' --local-params "${WHERE_LOCAL:-{\"lookahead\": 1\}}" \
            --out "$OUT/where.json" ;;
        rfdetr5000) step rfdetr5000 "${limit:-560}" python benchmarks/rfdetr_gpu.py --images 5000 --precisions fp32 \
            --no-throughput --out "$OUT/rfdetr5000.json" ;;
        graphs5000) step graphs5000 "${limit:-560}" python benchmarks/rfdetr_gpu.py --images 5000 --precisions fp32 \
            --no-throughput --model-params '{"cuda_graphs": true}' --out "$OUT/graphs5000.json" ;;
        fast5000) step fast5000 "${limit:-560}" python benchmarks/rfdetr_gpu.py --images 5000 --precisions fp32 \
            --no-throughput --model-params '{"cuda_graphs": true}' --evaluator faster_coco_eval \
            --out "$OUT/fast5000.json" ;;
        stream) step stream "${limit:-360}" python benchmarks/rfdetr_gpu.py --images 240 --precisions fp32 \
            --no-throughput --local-params '{}' '{}' '{"arena": false}' '{"encode_stream": true}' '{}' '{"arena": false}' \
            '{"encode_stream": true}' --out "$OUT/stream.json" ;;  # the first study pays the process's start
        graphs) step graphs "${limit:-240}" python benchmarks/rfdetr_gpu.py --images 240 --precisions fp32 \
            --model-params '{}' '{"cuda_graphs": true}' '{}' --out "$OUT/graphs.json" ;;  # eager twice: the first pays the start
        profile) step profile "${limit:-300}" bash -c 'nvidia-smi dmon -s u -d 1 > "$OUT/profile-gpu.txt" 2>&1 &
            monitor=$!
            python -m cProfile -o "$OUT/rfdetr.prof" benchmarks/rfdetr_gpu.py --images 240 --precisions fp32 \
                --no-throughput --out "$OUT/profile.json"
            status=$?
            kill $monitor
            python -c "import pstats, sys; s = pstats.Stats(sys.argv[1]); s.sort_stats(\"tottime\").print_stats(40)
s.sort_stats(\"cumtime\").print_stats(60)" "$OUT/rfdetr.prof" > "$OUT/profile-top.txt"
            exit $status' ;;
        compiled) step compiled "${limit:-90}" env TRITON_INTERPRET=0 python -m pytest -q -p no:cacheprovider tests/test_rle.py \
            tests/test_ragged.py::test_on_cuda_ragged_launches_give_torch_s_values_through_the_jit_and_direct
            ;;  # tests/conftest.py sets TRITON_INTERPRET=1 otherwise
        cudatests) step cudatests "${limit:-120}" python -m pytest -q -p no:cacheprovider \
            "tests/test_arena.py::test_on_cuda_the_arena_is_page_locked_and_its_uploads_give_the_same_outputs" \
            tests/test_rfdetr.py::test_cuda_graphs_replay_the_forward_for_full_and_padded_batches \
            tests/test_rfdetr.py::test_torch_fp16_on_cuda_matches_fp32 tests/test_encode_stream.py tests/test_rle.py \
            tests/test_staging.py ;;  # the CUDA tests first: a CPU test of the triton variant sets TRITON_INTERPRET
        *) echo "unknown step $name" >&2 ;;
    esac
done
bash benchmarks/pack_out.sh
