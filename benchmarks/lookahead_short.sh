#!/usr/bin/env bash
# The local executor's lookahead 0 and 1, alternating, on RF-DETR's dumps in one process, short enough for a call
# with little device time left (benchmarks/RESULTS.md, 2026-12-07 morning):
#   bash benchmarks/lookahead_short.sh [IMAGES] [LIMIT_SECONDS]
set -u
images=${1:-480} limit=${2:-150}
export OUT=${OUT:-$PWD/gpu-out}
bash benchmarks/gpu_session.sh > /dev/null 2>&1  # installs the carried wheels into /tmp/site
PYTHONPATH=/tmp/site:$PWD:$PWD/benchmarks timeout "$limit" python benchmarks/rfdetr_gpu.py --images "$images" \
    --precisions fp32 --no-throughput --model-params '{"cuda_graphs": true}' \
    --local-params '{}' '{"lookahead": 1}' '{}' '{"lookahead": 1}' --out "$OUT/lookahead.json" > "$OUT/lookahead.log" 2>&1
echo "lookahead exit $?"
python -c "
import json, sys
d = json.load(open(sys.argv[1]))
print(d['device'])
for g in d['gate']:
    print(g['executor'], g['duration_s'], [(x['variant'], x['images_per_s'], x['digest'][:8]) for x in g['dumps']])
" "$OUT/lookahead.json"
