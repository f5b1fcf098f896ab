#!/usr/bin/env bash
# `rootless-router check` and `run` on good and bad configs: a bad key or a duplicate
# listen_port is refused with an error naming the key (and its line), and `run`
# exits non-zero instead of starting. `run` is confined to a throwaway namespace.
. "$(dirname "$0")/lib.sh"

require_tools wg "$PY" setpriv timeout
require_router_bin
rrt_init

for k in a b r-a r-b; do
    (umask 077 && wg genkey >"$W/$k.key") && wg pubkey <"$W/$k.key" >"$W/$k.pub" || die "wg genkey"
done
[ "$(id -u)" = 0 ] && chown 65534:65534 "$W"/*.key
A_PUB=$(cat "$W/a.pub")
B_PUB=$(cat "$W/b.pub")
write_router_config "$W/good.toml"

# mutate SRC DST PYTHON_EXPR: DST = SRC with the text transformed (s = file text).
mutate() {
    "$PY" - "$1" "$2" "$3" <<'PYEOF'
import sys
s = open(sys.argv[1]).read()
s2 = eval(sys.argv[3])
assert s2 != s, "mutation did not change the config"
open(sys.argv[2], "w").write(s2)
PYEOF
    chmod 644 "$2"
}
lineof() { grep -n -m1 -F -- "$2" "$1" | cut -d: -f1; }

mutate "$W/good.toml" "$W/bad-peer-key.toml" \
    "s.replace('peer_public_key = \"$B_PUB\"', 'peer_public_key = \"this-is-not-a-wireguard-key\"')"
mutate "$W/good.toml" "$W/bad-private-key.toml" \
    "s.replace('private_key_file = \"$W/r-b.key\"', 'private_key = \"c2hvcnQ=\"')"
mutate "$W/good.toml" "$W/dup-port.toml" "s.replace('listen_port = $R_PORT_B', 'listen_port = $R_PORT_A')"
mutate "$W/good.toml" "$W/missing-key-file.toml" "s.replace('$W/r-b.key', '$W/does-not-exist.key')"
mutate "$W/good.toml" "$W/unknown-interface.toml" \
    "s.replace('prefix = \"172.20.2.0/24\"\ninterface = \"peer-b\"', 'prefix = \"172.20.2.0/24\"\ninterface = \"peer-zz\"')"

# c_check_refuses FILE REGEX [LINE]: `check` exits non-zero (not a crash), its output
# matches REGEX (the key or value at fault) and, given LINE, names that line number.
c_check_refuses() {
    local f=$1 re=$2 line=${3:-} out rc ok=0
    echo "+ rootless-router check --config $(basename "$f")"
    out=$(as_uid 65534 timeout 10 "$RR_RUN_BIN" check --config "$f" 2>&1)
    rc=$?
    echo "$out"
    echo "(exit status $rc)"
    if [ "$rc" = 0 ]; then echo "expected a non-zero exit"; ok=1; fi
    if [ "$rc" -ge 124 ]; then echo "timed out or crashed (status $rc)"; ok=1; fi
    if ! grep -Eqi -- "$re" <<<"$out"; then echo "the error does not name /$re/"; ok=1; fi
    if grep -qi 'panicked' <<<"$out"; then echo "it panicked"; ok=1; fi
    if [ -n "$line" ] && ! grep -Eq -- "(line|:) ?$line([^0-9]|$)" <<<"$out"; then
        echo "the error does not name line $line"
        ok=1
    fi
    return "$ok"
}

c_check_accepts() {
    local out rc
    echo "+ rootless-router check --config $(basename "$1")"
    out=$(as_uid 65534 timeout 10 "$RR_RUN_BIN" check --config "$1" 2>&1)
    rc=$?
    echo "$out"
    echo "(exit status $rc)"
    [ "$rc" = 0 ]
}

# c_run_refuses FILE REGEX: `run` with a bad config exits non-zero within 10 s, naming
# the problem. Runs in a namespace of its own (nothing to reach, nothing to bind).
c_run_refuses() {
    local f=$1 re=$2 out rc
    echo "+ rootless-router run --config $(basename "$f") (as uid 65534)"
    out=$(ip netns exec "$NS_X" setpriv --reuid=65534 --regid=65534 --clear-groups \
        --inh-caps=-all --bounding-set=-all --no-new-privs \
        timeout -k 2 10 "$RR_RUN_BIN" run --config "$f" 2>&1 </dev/null)
    rc=$?
    echo "$out" | tail -n 20
    echo "(exit status $rc)"
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then echo "still running after 10 s"; return 1; fi
    [ "$rc" != 0 ] && grep -Eqi -- "$re" <<<"$out"
}

run_check check_accepts_good_config c_check_accepts "$W/good.toml"
run_check check_bad_peer_public_key c_check_refuses "$W/bad-peer-key.toml" peer_public_key
run_check check_bad_peer_public_key_names_line c_check_refuses "$W/bad-peer-key.toml" peer_public_key \
    "$(lineof "$W/bad-peer-key.toml" this-is-not-a-wireguard-key)"
run_check check_bad_private_key c_check_refuses "$W/bad-private-key.toml" private_key
run_check check_duplicate_listen_port c_check_refuses "$W/dup-port.toml" "listen_port|$R_PORT_A"
run_check check_missing_private_key_file c_check_refuses "$W/missing-key-file.toml" "does-not-exist\.key|private_key_file"
run_check check_route_unknown_interface c_check_refuses "$W/unknown-interface.toml" "peer-zz"

if why=$(have_netns); then
    NS_X=rrt-$RRT_TAG-x
    ip netns add "$NS_X" || die "ip netns add $NS_X"
    RRT_NAMESPACES+=("$NS_X")
    ip -n "$NS_X" link set lo up
    run_check run_bad_peer_public_key_exits_nonzero c_run_refuses "$W/bad-peer-key.toml" peer_public_key
    run_check run_duplicate_listen_port_exits_nonzero c_run_refuses "$W/dup-port.toml" "listen_port|$R_PORT_A"
else
    skip run_bad_peer_public_key_exits_nonzero "$why"
    skip run_duplicate_listen_port_exits_nonzero "$why"
fi
