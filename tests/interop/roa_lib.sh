# shellcheck shell=bash
# Helpers of the routing-security and policy tests (t_52_roa, t_53_hijack, t_54_policy):
# ROA files in the formats DN42 publishes (StayRTR/burble JSON, BIRD 2 include), written
# atomically; a real StayRTR (Debian `stayrtr`) serving such a JSON file to the router over
# RTR on the loopback of the router's namespace; the router's config with the issue-5
# sections; and the router's view of one route (accepted / filtered and why, ROA state)
# and of its per-reason filter counters, from `rootless-router ctl ... --json`.
#
# Sourced after lib.sh, bgp_lib.sh and bgp_checks.sh. It is not a check library: the
# checks are in the t_5x files. Everything it starts runs inside the test's namespaces.

# An AS that originates nothing here: ROAs naming it make a route "invalid origin".
ROA_OTHER_ASN=4242420099
STAYRTR_ADDR=127.0.0.1:8282
STAYRTR_PID=

# ---------------------------------------------------------------- ROA files

# roa_write_json FILE "PREFIX MAXLEN ASN"...: the DN42 JSON export (burble's
# dn42_roa_46.json / StayRTR's format: "asn" is "AS<n>", metadata after the ROAs),
# written to a temporary file in the same directory and renamed over FILE.
roa_write_json() {
    local f=$1 tmp e p m a n=0 sep=""
    shift
    tmp=$f.tmp.$$
    {
        printf '{"roas":['
        for e in "$@"; do
            read -r p m a <<<"$e"
            printf '%s\n  {"prefix":"%s","maxLength":%s,"asn":"AS%s","ta":"dn42","mnt-by":"RRT-MNT"}' \
                "$sep" "$p" "$m" "$a"
            sep=,
            n=$((n + 1))
        done
        printf '\n],"metadata":{"counts":%s,"generated":%s,"valid":%s}}\n' "$n" "$(date +%s)" \
            "$(($(date +%s) + 86400))"
    } >"$tmp" && chmod 644 "$tmp" && mv -f "$tmp" "$f"
}

# roa_write_bird FILE "PREFIX MAXLEN ASN"...: a BIRD 2 include file as DN42 publishes it
# (`route 172.20.4.128/26 max 29 as 4242420049;`), written atomically (tmp + mv).
roa_write_bird() {
    local f=$1 tmp e p m a
    shift
    tmp=$f.tmp.$$
    {
        echo "# rootless-router interop test ROAs, $(date -u '+%F %T') UTC"
        for e in "$@"; do
            read -r p m a <<<"$e"
            echo "route $p max $m as $a;"
        done
    } >"$tmp" && chmod 644 "$tmp" && mv -f "$tmp" "$f"
}

# roa_v4 / roa_v6 "ENTRY"...: only the IPv4 / IPv6 entries (DN42 publishes one file each).
roa_v4() { local e; for e in "$@"; do [[ $e == *:* ]] || echo "$e"; done; }
roa_v6() { local e; for e in "$@"; do [[ $e == *:* ]] && echo "$e"; done; }

# ---------------------------------------------------------------- StayRTR

# stayrtr_start JSONFILE: StayRTR in the router's namespace on STAYRTR_ADDR, as uid 65533
# (unprivileged, not the router's uid), serving JSONFILE and re-reading it every second
# (`-refresh 1`); it sends Serial Notify to its clients when the data changes. Log in
# $W/stayrtr.log.
stayrtr_start() {
    local json=$1
    RRT_STAGE=stayrtr
    ip netns exec "$NS_R" setpriv --reuid=65533 --regid=65533 --clear-groups --inh-caps=-all \
        --bounding-set=-all --no-new-privs \
        stayrtr -bind "$STAYRTR_ADDR" -metrics.addr 127.0.0.1:9847 -cache "$json" -refresh 1 \
        -checktime=false -loglevel debug >>"$W/stayrtr.log" 2>&1 </dev/null &
    STAYRTR_PID=$!
    RRT_PIDS+=("$STAYRTR_PID")
    wait_until 10 eval 'nsx "$NS_R" ss -Htln "sport = :${STAYRTR_ADDR##*:}" | grep -q LISTEN' ||
        die "stayrtr did not listen on $STAYRTR_ADDR: $(tail -5 "$W/stayrtr.log")"
    grep -q 'New update' "$W/stayrtr.log" ||
        wait_until 5 grep -q 'New update' "$W/stayrtr.log" ||
        die "stayrtr did not load $json: $(tail -5 "$W/stayrtr.log")"
    RRT_STAGE=setup
}

# stayrtr_serials: the serials StayRTR has published so far (one per line).
stayrtr_serials() { grep -o 'new serial [0-9]*' "$W/stayrtr.log" | awk '{ print $3 }'; }

# ---------------------------------------------------------------- the router's config

# write_policy_router_config FILE: write_bgp_router_config's router (same tunnels, sessions,
# announced prefixes) with the issue-5 additions taken from these variables (each a block
# of TOML lines, empty by default):
#   RRC_ROUTER          more keys of [router] (region, country)
#   RRC_IF_A, RRC_IF_B  more keys of the peer-a / peer-b [[interface]] (latency, ...)
#   RRC_BGP_A, RRC_BGP_B more keys of the peer_a / peer_b [[bgp]] (import_limit, policies)
#   RRC_TAIL            more sections ([roa], [[policy]])
write_policy_router_config() {
    local f=$1
    {
        cat <<EOF
[router]
asn = $R_ASN
addresses = ["$BR_V4/32", "$BR_V6/128"]
announce = ["$R_NET4", "$R_NET6"]
control_socket = "$W/ctl.sock"
${RRC_ROUTER:-}

EOF
        router_tunnels_config | awk -v a="${RRC_IF_A:-}" -v b="${RRC_IF_B:-}" '
            { print }
            $0 == "name = \"peer-a\"" && a != "" { print a }
            $0 == "name = \"peer-b\"" && b != "" { print b }'
        cat <<EOF

[[bgp]]
name = "peer_a"
neighbor = "fe80::a"
interface = "peer-a"
remote_asn = $A_ASN
hold_time = $BGP_HOLD
keepalive = $BGP_KEEPALIVE
connect_retry = 2
${RRC_BGP_A:-}

[[bgp]]
name = "peer_b"
neighbor = "fe80::b"
interface = "peer-b"
remote_asn = $B_ASN
hold_time = $BGP_HOLD
keepalive = $BGP_KEEPALIVE
connect_retry = 2
${RRC_BGP_B:-}

${RRC_TAIL:-}
EOF
    } >"$f"
    chmod 644 "$f"
}

# policy_router_up CONFIG: namespaces, tunnels, the peers' wireguard-go, then the router
# (as uid 65534, no capabilities) with CONFIG, after `rootless-router check` accepted it
# (a check of its own: the config syntax of issue 5).
policy_router_up() {
    run_check config_accepted c_check_config "$1" || die "rootless-router check refused $1"
    router_start "$1"
    pass router_started
    RRT_NEED_ROUTER=1
}

# peer_bird_conf_with WHO STATIC-SPECS...: bgp_peer_bird_conf WHO plus static protocols,
# each spec "NAME FAMILY 'PREFIXES' 'FILTER-COMMANDS' [disabled]" as bird_conf_static takes
# them (eval'd: quote the lists). Sets PEER_CONF[WHO] so that peer_start uses it.
peer_bird_conf_with() {
    local who=$1 f spec
    shift
    f=$(bgp_peer_bird_conf "$who")
    for spec in "$@"; do
        eval "bird_conf_static \"\$f\" $spec"
    done
    PEER_CONF[$who]=$f
}

# ---------------------------------------------------------------- the router's view

# rr_route_info PREFIX [SESSION]: of the routes the router holds for exactly PREFIX (from
# SESSION when given): "STATE REASON ROA LOCAL_PREF PEER" of the first that is best, else
# the first accepted, else the first filtered. STATE is best | accepted | filtered | none;
# REASON the filter reason or "-"; ROA valid | invalid | unknown | - (normalised: RFC
# 6811's NotFound is "unknown").
rr_route_info() {
    ctl show routes all --json 2>/dev/null | "$PY" -c '
import json, sys
pfx, sess = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else None)
try:
    d = json.load(sys.stdin)
except ValueError:
    print("error - - - -"); sys.exit(0)
def roa(r):
    v = r.get("roa")
    if v is None: return "-"
    v = str(v).lower().replace("-", "").replace("_", "")
    return "unknown" if v in ("notfound", "unknown") else v
rs = [r for r in d.get("routes", []) if r.get("prefix") == pfx and (sess is None or r.get("peer") == sess)]
def out(state, r):
    print(state, r.get("reason") or r.get("filter_reason") or "-", roa(r),
          r.get("local_pref") if r.get("local_pref") is not None else "-", r.get("peer") or "-")
for want, state in ((lambda r: r.get("best") and not r.get("filtered"), "best"),
                    (lambda r: not r.get("filtered"), "accepted"),
                    (lambda r: r.get("filtered"), "filtered")):
    m = [r for r in rs if want(r)]
    if m:
        out(state, m[0]); break
else:
    print("none - - - -")
' "$@"
}

# rr_matches PREFIX SESSION STATE [X]: the router's route for PREFIX from SESSION is in
# STATE (best | accepted | filtered | none); X is the filter reason of a filtered route,
# the ROA state of an accepted one.
rr_matches() { # PREFIX SESSION STATE [REASON-OR-ROA]
    local got state reason roa
    got=$(rr_route_info "$1" "$2")
    read -r state reason roa _ <<<"$got"
    [ "$state" = "$3" ] || return 1
    [ -z "${4:-}" ] && return 0
    if [ "$3" = filtered ]; then [ "$reason" = "$4" ]; else [ "$roa" = "$4" ]; fi
}

# rr_all_match "PREFIX SESSION STATE [X]"...: rr_matches holds for each.
rr_all_match() {
    local e
    for e in "$@"; do
        # shellcheck disable=SC2086
        rr_matches $e || return 1
    done
}

# c_rr_decisions TIMEOUT "PREFIX SESSION STATE [REASON-OR-ROA]"...: within TIMEOUT seconds
# every PREFIX is in that state at the router (best with ROA state X, or filtered with
# reason R); prints what it saw and how long it took.
c_rr_decisions() {
    local t=$1 t0=$SECONDS e ok=0
    shift
    wait_until "$t" rr_all_match "$@" || ok=1
    echo "after $((SECONDS - t0)) s (limit $t s):"
    for e in "$@"; do
        local p s
        read -r p s _ <<<"$e"
        # shellcheck disable=SC2086
        if rr_matches $e; then
            echo "  ok   $p from $s: $(rr_route_info "$p" "$s") (want: ${e#* * })"
        else
            echo "  FAIL $p from $s: $(rr_route_info "$p" "$s") (want: ${e#* * })"
        fi
    done
    [ "$ok" = 0 ] || rtr_show
    return "$ok"
}

# rr_session_field SESSION FIELD: a field of `show bgp --json`'s session ("" if absent).
rr_session_field() { rr_json session "$1" "$2"; }

# rr_filtered_by SESSION REASON: the session's filtered count for REASON (`show bgp
# --json`, field filtered_by: an object reason -> count, or a list of [reason, count] /
# {reason, count}); "" when the router does not report it.
rr_filtered_by() {
    ctl show bgp --json 2>/dev/null | "$PY" -c '
import json, sys
name, reason = sys.argv[1], sys.argv[2]
try:
    d = json.load(sys.stdin)
except ValueError:
    sys.exit(0)
for s in d.get("sessions", []):
    if s.get("name") != name:
        continue
    fb = s.get("filtered_by")
    if isinstance(fb, dict):
        print(fb.get(reason, 0) if fb else "")
    elif isinstance(fb, list):
        n = 0
        for e in fb:
            if isinstance(e, dict) and e.get("reason") == reason:
                n += int(e.get("count", 0))
            elif isinstance(e, list) and len(e) == 2 and e[0] == reason:
                n += int(e[1])
        print(n)
' "$1" "$2"
}

# c_filtered_counts SESSION "REASON MIN"...: show bgp --json counts at least MIN routes of
# SESSION filtered for each REASON, and `show bgp SESSION` (text) names the reasons.
c_filtered_counts() {
    local s=$1 e r min n ok=0 txt
    shift
    for e in "$@"; do
        read -r r min <<<"$e"
        n=$(rr_filtered_by "$s" "$r")
        echo "$s: filtered_by[$r] = '${n}' (want >= $min)"
        [ -n "$n" ] && [ "$n" -ge "$min" ] || ok=1
    done
    echo "+ rootless-router ctl show bgp $s"
    txt=$(ctl show bgp "$s" 2>&1)
    echo "$txt"
    for e in "$@"; do
        read -r r _ <<<"$e"
        grep -qF -- "$r" <<<"$txt" || { echo "(text does not name $r)"; ok=1; }
    done
    [ "$ok" = 0 ] || ctl show bgp --json 2>&1 | head -c 3000
    return "$ok"
}

# c_show_filtered "PREFIX REASON"... -- PREFIX...: `show routes filtered` lists each
# filtered PREFIX on a line (or in the block after it) naming REASON, and does not list
# the PREFIXes after "--" (accepted ones).
c_show_filtered() {
    local out ok=0 e p r accepted=0
    echo "+ rootless-router ctl show routes filtered"
    out=$(ctl show routes filtered 2>&1)
    echo "$out"
    for e in "$@"; do
        if [ "$e" = -- ]; then accepted=1; continue; fi
        if [ "$accepted" = 1 ]; then
            awk -v p="$e" '$1 == p { f = 1 } END { exit !f }' <<<"$out" &&
                { echo "(lists accepted $e)"; ok=1; }
            continue
        fi
        read -r p r <<<"$e"
        # The prefix's line and the lines up to the next prefix line must name the reason.
        awk -v p="$p" -v r="$r" '
            $1 == p { on = 1; if (index($0, r)) found = 1; next }
            on && /^[0-9a-f.:]+\/[0-9]+/ { on = 0 }
            on && index($0, r) { found = 1 }
            END { exit !found }' <<<"$out" || { echo "($p not listed with reason $r)"; ok=1; }
    done
    return "$ok"
}

# bird_since_same OLD NEW: two readings of a BIRD session's `show protocols` since-time
# (HH:MM:SS.mmm) are the same moment. BIRD derives the wall-clock time from its monotonic
# clock at each display, so two readings of one moment can differ by a millisecond; a
# reset moves it by seconds (a session takes that long to come back).
bird_since_same() {
    [ -n "$1" ] && [ -n "$2" ] || return 1
    "$PY" -c '
import sys
def ms(t):
    h, m, s = t.split(":")
    return (int(h) * 3600 + int(m) * 60) * 1000 + round(float(s) * 1000)
d = abs(ms(sys.argv[1]) - ms(sys.argv[2]))
sys.exit(0 if min(d, 86400000 - d) <= 50 else 1)' "$1" "$2" 2>/dev/null
}

# since_marks: the session "since" of both peers' BIRD (`show protocols`) and the router's
# since_secs with the time it was read; compared by c_no_reset.
since_marks() {
    MARK_T=$SECONDS
    MARK_BIRD_A=$(birdc a show protocols peer_r | awk '$1 == "peer_r" { print $5 }')
    MARK_BIRD_B=$(birdc b show protocols peer_r | awk '$1 == "peer_r" { print $5 }')
    MARK_RR_A=$(rr_session_field peer_a since_secs)
    MARK_RR_B=$(rr_session_field peer_b since_secs)
    echo "marks at t=$MARK_T: bird a since $MARK_BIRD_A, bird b since $MARK_BIRD_B, router peer_a since_secs $MARK_RR_A, peer_b $MARK_RR_B"
}

# c_no_reset: since since_marks, no session went down: both BIRDs' peer_r are
# Established with the same "since", and the router's sessions are Established with
# since_secs grown by the time elapsed (minus 2 s of rounding).
c_no_reset() {
    local ok=0 el ba bb ra rb
    el=$((SECONDS - MARK_T))
    ba=$(birdc a show protocols peer_r | awk '$1 == "peer_r" { print $5, $6 }')
    bb=$(birdc b show protocols peer_r | awk '$1 == "peer_r" { print $5, $6 }')
    ra=$(rr_session_field peer_a since_secs)
    rb=$(rr_session_field peer_b since_secs)
    echo "after $el s: bird a '$ba' (was since $MARK_BIRD_A), bird b '$bb' (was since $MARK_BIRD_B)"
    echo "router: peer_a $(rtr_state peer_a) since_secs $ra (was $MARK_RR_A), peer_b $(rtr_state peer_b) since_secs $rb (was $MARK_RR_B)"
    [ "${ba#* }" = Established ] && bird_since_same "$MARK_BIRD_A" "${ba%% *}" ||
        { echo "(a's session was reset)"; ok=1; }
    [ "${bb#* }" = Established ] && bird_since_same "$MARK_BIRD_B" "${bb%% *}" ||
        { echo "(b's session was reset)"; ok=1; }
    rtr_established peer_a && rtr_established peer_b || ok=1
    [ -n "$ra" ] && [ -n "$MARK_RR_A" ] && [ "$ra" -ge $((MARK_RR_A + el - 2)) ] ||
        { echo "(router peer_a since_secs did not keep growing)"; ok=1; }
    [ -n "$rb" ] && [ -n "$MARK_RR_B" ] && [ "$rb" -ge $((MARK_RR_B + el - 2)) ] ||
        { echo "(router peer_b since_secs did not keep growing)"; ok=1; }
    return "$ok"
}

# c_route_lookup_not ADDR IFACE: the router's forwarding table does not send ADDR out of
# IFACE (no route, or another tunnel).
c_route_lookup_not() {
    local out
    echo "+ rootless-router ctl route-lookup $1"
    out=$(ctl route-lookup "$1" 2>&1)
    echo "$out"
    ! grep -qF -- "$2" <<<"$out"
}
# c_route_lookup_via ADDR IFACE: it does.
c_route_lookup_via() {
    local out
    echo "+ rootless-router ctl route-lookup $1"
    out=$(ctl route-lookup "$1" 2>&1)
    echo "$out"
    grep -qF -- "$2" <<<"$out"
}

# peers_all_match "WHO PREFIX [PATH]"...: each WHO answers and its best route for PREFIX
# has AS path PATH (none when PATH is empty).
peers_all_match() {
    local e who pfx want
    for e in "$@"; do
        read -r who pfx want <<<"$e"
        peer_alive "$who" || return 1
        [ "$(peer_as_path "$who" "$pfx")" = "$want" ] || return 1
    done
}

# c_peer_paths_within TIMEOUT "WHO PREFIX PATH"...: each peer's best route for PREFIX
# has AS path PATH ("" = WHO has no route for PREFIX) within TIMEOUT seconds.
c_peer_paths_within() {
    local t=$1 t0=$SECONDS ok=0 e who pfx want got
    shift
    wait_until "$t" peers_all_match "$@" || ok=1
    echo "after $((SECONDS - t0)) s (limit $t s):"
    for e in "$@"; do
        read -r who pfx want <<<"$e"
        got=$(peer_as_path "$who" "$pfx")
        echo "  $who: $pfx path '${got}' (want '${want}')"
        [ "$got" = "$want" ] || { ok=1; peer_show "$who" "$pfx"; }
    done
    return "$ok"
}
