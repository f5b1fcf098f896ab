#!/usr/bin/env bash
# Runs the interop tests (tests/interop/t_*.sh, or those named as arguments), each
# under a time limit, prints their PASS/FAIL/SKIP lines and ends with one line
# "N passed, N failed" (", N skipped" appended when some were skipped).
# Exit status: 0 when nothing failed.
#
#   sudo bash tests/interop/run.sh                 # all
#   sudo bash tests/interop/run.sh t_30_dataplane  # one file
#   RR_BIN=/path/to/rootless-router RRT_VERBOSE=1 bash tests/interop/run.sh
set -u
here=$(cd "$(dirname "$0")" && pwd)
per_test_timeout=${RRT_TEST_TIMEOUT:-420}

results=$(mktemp /tmp/rrt-results.XXXXXX)
export RRT_RESULTS=$results
if [ -z "${RRT_LOGDIR:-}" ]; then
    RRT_LOGDIR=$(mktemp -d /tmp/rrt-logs.XXXXXX)
    own_logdir=1
fi
export RRT_LOGDIR
trap 'rm -f "$results"' EXIT

# Namespaces left by an earlier run that was killed (rrt-<pid>-x whose pid is gone).
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null; then
    for ns in $(ip netns list 2>/dev/null | awk '{ print $1 }' | grep -E '^rrt-[0-9]+-[a-z]+$'); do
        pid=${ns#rrt-}
        pid=${pid%%-*}
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "# removing stale namespace $ns"
            stale=$(ip netns pids "$ns" 2>/dev/null)
            [ -n "$stale" ] && kill -9 $stale 2>/dev/null
            ip netns del "$ns" 2>/dev/null
        fi
    done
fi

tests=()
if [ "$#" -gt 0 ]; then
    for a in "$@"; do
        a=${a%.sh}
        a=${a##*/}
        [ -f "$here/$a.sh" ] || { echo "no such test: $here/$a.sh" >&2; exit 2; }
        tests+=("$here/$a.sh")
    done
else
    tests=("$here"/t_*.sh)
fi

echo "# interop tests: ${#tests[@]} files; router binary ${RR_BIN:-target/release/rootless-router}; logs in $RRT_LOGDIR"
start=$SECONDS
for t in "${tests[@]}"; do
    name=$(basename "$t" .sh)
    echo "=== $name"
    before=$(wc -l <"$results")
    t0=$SECONDS
    timeout -k 20 "$per_test_timeout" bash "$t" </dev/null
    rc=$?
    added=$(tail -n +"$((before + 1))" "$results")
    nfail=$(grep -c '^FAIL' <<<"$added")
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        echo "FAIL  $name: timed out after ${per_test_timeout}s"
        printf 'FAIL\t%s/timeout\n' "$name" >>"$results"
    elif [ "$rc" != 0 ] && [ "$nfail" = 0 ]; then
        echo "FAIL  $name: exited with status $rc without reporting a failure"
        printf 'FAIL\t%s/exit-status\n' "$name" >>"$results"
    elif [ -z "$added" ]; then
        echo "FAIL  $name: reported no check at all"
        printf 'FAIL\t%s/no-checks\n' "$name" >>"$results"
    fi
    echo "    ($name: $((SECONDS - t0)) s)"
done

passed=$(grep -c '^PASS' "$results")
failed=$(grep -c '^FAIL' "$results")
skipped=$(grep -c '^SKIP' "$results")
echo
echo "# interop: $((SECONDS - start)) s"
if [ "$failed" -gt 0 ]; then
    echo "# failed:"
    grep '^FAIL' "$results" | cut -f2 | sed 's/^/#   /'
    echo "# router logs: $RRT_LOGDIR"
fi
if [ "$skipped" -gt 0 ]; then
    echo "# skipped:"
    grep '^SKIP' "$results" | cut -f2 | sed 's/^/#   /'
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
if [ "$failed" = 0 ] && [ -n "${own_logdir:-}" ]; then
    rm -rf "$RRT_LOGDIR"
fi
[ "$failed" = 0 ]
