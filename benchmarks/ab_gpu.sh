#!/usr/bin/env bash
# The RF-DETR gate's dumps with an older package against the working tree, alternating on one machine: hosts
# differ too much for figures from two calls to be compared (benchmarks/RESULTS.md, 2026-12-06 evening).
#
#   here:  mkdir -p .gpu-data/old && git archive REV preprocgate | tar -x -C .gpu-data/old
#          rm .gpu-data/old/preprocgate/demo/*.onnx      (the carry limit; the RF-DETR gate does not need it)
#   there: bash benchmarks/ab_gpu.sh .gpu-data/old [ROUNDS] [IMAGES]
#
# Carry .whl, .whl-rf and the folder. Each run's JSON goes to $OUT/{old,new}N.json; a line per run is printed.
set -u
old=$1 rounds=${2:-2} images=${3:-1000}
export OUT=${OUT:-$PWD/gpu-out}
bash benchmarks/gpu_session.sh > /dev/null 2>&1  # installs the carried wheels into /tmp/site
for r in $(seq "$rounds"); do
    for v in old new; do
        path=/tmp/site:$PWD:$PWD/benchmarks
        [ "$v" = old ] && path=/tmp/site:$PWD/$old:$PWD:$PWD/benchmarks
        PYTHONPATH=$path timeout 200 python benchmarks/rfdetr_gpu.py --images "$images" --precisions fp32 \
            --no-throughput --model-params '{"cuda_graphs": true}' --out "$OUT/$v$r.json" > "$OUT/$v$r.log" 2>&1
        echo "$v$r exit $?"
        python -c "
import json, sys
d = json.load(open(sys.argv[1]))
print(sys.argv[2], d['device'], [(x['variant'], x['images_per_s'], x['digest'][:8]) for g in d['gate'] for x in g['dumps']])
" "$OUT/$v$r.json" "$v$r"
    done
done
bash benchmarks/pack_out.sh
