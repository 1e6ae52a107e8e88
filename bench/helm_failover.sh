#!/usr/bin/env bash
# Issue 20's goal: the chart's failover test passes N runs in a row (default 10) while two
# busy loops load the machine for the whole run. Prints each run's result and time, then
# the tally; exits non-zero if any run failed. Usage: bench/helm_failover.sh [N]
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
export PATH="$PWD/.venv/bin:$PATH"
spinners=()
for _ in 1 2; do
  python3 -c 'while True: pass' &
  spinners+=($!)
done
trap 'kill "${spinners[@]}" 2>/dev/null' EXIT
passed=0
for run in $(seq 1 "$runs"); do
  start=$(date +%s)
  log=$(mktemp)
  if python -m pytest -q -p no:cacheprovider tests/deploy/test_helm_chart.py \
      -k bundled_sentinel_and_survive_a_failover >"$log" 2>&1; then
    result=passed
    passed=$((passed + 1))
  else
    result="FAILED (log: $log)"
  fi
  echo "run $run/$runs: $result in $(($(date +%s) - start)) s"
  [ "$result" = passed ] && rm -f "$log"
done
echo "helm failover under two busy loops: $passed of $runs passed"
[ "$passed" = "$runs" ]
