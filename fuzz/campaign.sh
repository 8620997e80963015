#!/usr/bin/env bash
# Run every fuzz target for SECONDS each (default 600), JOBS at a time (default 2), and
# print one JSON line per target: runs, seconds, corpus size, findings.
#   [TARGETS="json workflow"] fuzz/campaign.sh [SECONDS] [JOBS]
# A target with fuzz/dicts/<target>.dict gets it as a libFuzzer dictionary.
# New corpus entries go to fuzz/work/<target>/ (not committed; the seeds are in
# fuzz/seeds/<target>/); findings (crash-*, timeout-*, oom-*) to fuzz/work/artifacts/.
set -u
cd "$(dirname "$0")/.."
seconds=${1:-600}
jobs=${2:-2}
python=${PYTHON:-.venv/bin/python}
export OPENCV_LOG_LEVEL=OFF
mkdir -p fuzz/work/artifacts
one() {
    target=$1
    mkdir -p "fuzz/work/$target"
    log="fuzz/work/$target.log"
    dict=()
    [ -f "fuzz/dicts/$target.dict" ] && dict=(-dict="fuzz/dicts/$target.dict")
    nice -n 19 "$python" "fuzz/fuzz_$target.py" "fuzz/work/$target" "fuzz/seeds/$target" \
        -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 "${dict[@]}" \
        -artifact_prefix="fuzz/work/artifacts/$target-" >"$log" 2>&1
    status=$?
    runs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | tail -1)
    corpus=$(ls "fuzz/work/$target" | wc -l)
    findings=$(ls fuzz/work/artifacts | grep -c "^$target-")
    printf '{"target": "%s", "exit": %d, "result": "%s", "corpus": %d, "findings": %d}\n' \
        "$target" "$status" "$runs" "$corpus" "$findings"
}
export -f one
export seconds python
targets=${TARGETS:-dot toml json workflow codec}
printf '%s\n' $targets | xargs -P "$jobs" -I{} bash -c 'one {}'
