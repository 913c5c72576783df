#!/usr/bin/env bash
# A device call brings back at most 8 files from $OUT (the device tool's limit; a session lost rle_steps' output
# to it): where $OUT holds more, they are packed into one archive, gpu-session.tgz (an earlier archive of the same
# call included), so that a long call loses none of its results. Run last in a call (gpu_session.sh and
# ab_gpu.sh do).
set -u
OUT=${OUT:-$PWD/gpu-out}
if [ "$(find "$OUT" -type f | wc -l)" -gt 8 ]; then
    tar -czf /tmp/gpu-session.tgz -C "$OUT" . && find "$OUT" -mindepth 1 -delete && mv /tmp/gpu-session.tgz "$OUT/"
fi
