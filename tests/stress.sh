#!/usr/bin/env bash
# Hunt flaky tests: run the whole suite several times while every core is kept busy by a CPU hog.
# A test that passes only on an idle machine fails here. The hogs stop when this script ends.
#
#   tests/stress.sh            # 3 loaded runs of `pytest -q`
#   RUNS=5 tests/stress.sh -k ui   # more runs, extra pytest arguments passed through
#
# Prints one line per run (exit status, seconds) and the slowest tests of each; logs in $LOGS.
set -u
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
PY=${PY:-.venv/bin/python}
LOGS=${LOGS:-$(mktemp -d)}
mkdir -p "$LOGS"
hogs=()
stop_hogs() { for pid in "${hogs[@]}"; do kill "$pid" 2>/dev/null; done; }
trap stop_hogs EXIT INT TERM
for _ in $(seq "$(nproc)"); do
    "$PY" -c "while True: pass" &
    hogs+=($!)
done
echo "$(nproc) CPU hogs running (pids ${hogs[*]}); logs in $LOGS"
failed=0
for run in $(seq "$RUNS"); do
    start=$(date +%s)
    "$PY" -m pytest -q -p no:cacheprovider --durations=10 "$@" >"$LOGS/run$run.log" 2>&1
    rc=$?
    echo "run $run: exit $rc in $(( $(date +%s) - start )) s; $(tail -1 "$LOGS/run$run.log")"
    [ $rc = 0 ] || { failed=1; grep -E "^(FAILED|ERROR)" "$LOGS/run$run.log"; }
done
exit $failed
