#!/usr/bin/env bash
# rootless-router's Prometheus metrics ([metrics] listen = "127.0.0.1:9324" in the router's
# namespace) with the BGP topology of t_50: the router as uid 65534 between two BIRD 2
# peers over WireGuard. Checks: a scrape parses with a real Prometheus parser (python3
# prometheus_client's text_string_to_metric_families, and `promtool check metrics` when
# installed); its numbers agree with `ctl --json` (sessions Established, routes imported,
# FIB size); tunnel bytes grow after a ping; hostile clients (a 1 MB header, a client that
# sends nothing, POST, /../) are refused while another client's scrape is answered; and
# SIGTERM closes the BGP sessions with a Cease that BIRD reports.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/bgp_lib.sh"
. "$(dirname "$0")/bgp_checks.sh"

METRICS=127.0.0.1:9324

require_netns metrics_parse
require_tools ip wg wireguard-go ping bird birdc setpriv nsenter unshare sysctl timeout curl "$PY"
require_router_bin

rrt_init
topo_up
bgp_peers_up
write_bgp_router_config "$W/router.toml"
printf '\n[metrics]\nlisten = "%s"\n' "$METRICS" >>"$W/router.toml"
router_start "$W/router.toml"
pass router_started
RRT_NEED_ROUTER=1
PEER_KIND=([a]=bird [b]=bird)
peer_start a
peer_start b

# scrape FILE: GET /metrics from inside the router's namespace.
scrape() {
    nsx "$NS_R" curl -sS --max-time 10 -o "$1" -w '%{http_code} %{content_type}\n' "http://$METRICS/metrics"
}

# metric FILE SAMPLE: the value of the sample whose name and labels are exactly SAMPLE.
metric() {
    awk -v s="$2" '$1 == s { print $2; found = 1 } END { exit !found }' "$1"
}

c_metrics_parse() {
    local f=$W/metrics.txt rc=0 head
    head=$(scrape "$f") || { echo "curl failed"; return 1; }
    echo "answer: $head"
    [ "$head" = "200 text/plain; version=0.0.4; charset=utf-8" ] || return 1
    "$PY" - "$f" <<'EOF' || rc=1
import sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1]).read()
fams = list(text_string_to_metric_families(text))
names = {f.name: f for f in fams}
print(len(fams), "families,", sum(len(f.samples) for f in fams), "samples")
want = ["rootless_router_tunnel_receive_bytes", "rootless_router_bgp_session_state",
        "rootless_router_bgp_routes_imported", "rootless_router_fib_routes",
        "rootless_router_dropped_packets", "rootless_router_icmp_errors_sent",
        "rootless_router_forwarded_packets"]
missing = [w for w in want if w not in names]
if missing:
    print("missing families:", missing)
    sys.exit(1)
for f in fams:
    if f.type == "counter" and not all(s.name.endswith("_total") for s in f.samples):
        print("counter without _total:", f.name)
        sys.exit(1)
EOF
    if command -v promtool >/dev/null 2>&1; then
        promtool check metrics <"$f" || rc=1
        echo "promtool: checked"
    else
        echo "promtool: not installed (the python parser checked it)"
    fi
    return "$rc"
}

# The session and route numbers of a scrape equal ctl's once routing has settled.
metrics_agree() {
    local f=$W/agree.txt s imp m4 m6 st
    scrape "$f" >/dev/null || return 1
    for s in peer_a peer_b; do
        st=$(grep -E "^rootless_router_bgp_session_state\{session=\"$s\",.*state=\"Established\"\} 1$" "$f")
        [ -n "$st" ] || { echo "$s: not Established in the metrics"; return 1; }
        imp=$(rr_json session "$s" imported)
        m4=$(grep -E "^rootless_router_bgp_routes_imported\{session=\"$s\",.*family=\"ipv4\"\} " "$f" | awk '{print $2}')
        m6=$(grep -E "^rootless_router_bgp_routes_imported\{session=\"$s\",.*family=\"ipv6\"\} " "$f" | awk '{print $2}')
        echo "$s: ctl imported=$imp, metrics ipv4=$m4 ipv6=$m6"
        [ -n "$imp" ] && [ "$imp" -gt 0 ] && [ "$((m4 + m6))" = "$imp" ] || return 1
    done
    local ctl_fib m_fib
    ctl_fib=$(ctl show bgp --json | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(d["fib_v4"], d["fib_v6"])')
    m_fib=$(metric "$f" 'rootless_router_fib_routes{family="ipv4"}') &&
        m_fib="$m_fib $(metric "$f" 'rootless_router_fib_routes{family="ipv6"}')" || return 1
    echo "fib (ipv4 ipv6): ctl $ctl_fib, metrics $m_fib"
    [ "$ctl_fib" = "$m_fib" ]
}
c_metrics_agree() {
    wait_until 30 metrics_agree
    metrics_agree
}

c_tunnel_bytes_grow() {
    local before after m='rootless_router_tunnel_receive_bytes_total{interface="peer-a"}'
    local t='rootless_router_tunnel_transmit_bytes_total{interface="peer-a"}' tb ta
    scrape "$W/b1.txt" >/dev/null || return 1
    before=$(metric "$W/b1.txt" "$m") && tb=$(metric "$W/b1.txt" "$t") || return 1
    nsx "$NS_A" ping -c 3 -i 0.2 -W 2 "$BR_V4" || return 1
    scrape "$W/b2.txt" >/dev/null || return 1
    after=$(metric "$W/b2.txt" "$m") && ta=$(metric "$W/b2.txt" "$t") || return 1
    local ctl_rx
    ctl_rx=$(ctl show interfaces --json | "$PY" -c '
import json, sys
for i in json.load(sys.stdin)["interfaces"]:
    if i["name"] == "peer-a": print(i["rx_bytes"])')
    echo "peer-a rx bytes: $before -> $after (ctl now: $ctl_rx); tx bytes: $tb -> $ta"
    [ "$after" -ge "$((before + 3 * 84))" ] && [ "$ta" -gt "$tb" ] && [ "$ctl_rx" -ge "$after" ]
}

# Hostile clients, from a Python script in the router's namespace: each is refused (or
# dropped) and a scrape by curl during them is answered.
c_bad_requests() {
    nsx "$NS_R" "$PY" - "$METRICS" <<'EOF'
import socket, subprocess, sys
host, port = sys.argv[1].rsplit(":", 1)
addr = (host, int(port))

def ask(data, read_timeout=15):
    s = socket.create_connection(addr, timeout=read_timeout)
    try:
        s.sendall(data)
    except OSError as e:
        print("  (send stopped:", e, ")")
    out = b""
    while True:
        try:
            b = s.recv(65536)
        except OSError as e:
            print("  (recv stopped:", e, ")")
            break
        if not b:
            break
        out += b
    s.close()
    return out.split(b"\r\n", 1)[0].decode(errors="replace")

def scrape():
    r = subprocess.run(["curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}",
                        "http://%s:%d/metrics" % addr], capture_output=True, text=True)
    return r.stdout

ok = True
def expect(what, got, want):
    global ok
    print("%-28s %s" % (what, got))
    if not got.startswith(want):
        ok = False

silent = [socket.create_connection(addr) for _ in range(3)]   # slowloris: send nothing
slow = socket.create_connection(addr)
slow.sendall(b"GET /metrics HTTP/1.1\r\nX-Slow: a")            # half a header, then silence
expect("scrape with idle clients", scrape(), "200")
expect("1 MB header", ask(b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n"), "HTTP/1.1 431")
expect("POST", ask(b"POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"), "HTTP/1.1 405")
expect("GET /../", ask(b"GET /../ HTTP/1.1\r\n\r\n"), "HTTP/1.1 404")
expect("GET /metrics/../x", ask(b"GET /metrics/../etc/passwd HTTP/1.1\r\n\r\n"), "HTTP/1.1 404")
expect("garbage", ask(b"\x00\x01\x02 hello\r\n\r\n"), "HTTP/1.1 400")
expect("scrape after all that", scrape(), "200")
# The silent client is dropped by the node (its read deadline), not left open forever.
silent[0].settimeout(20)
try:
    dropped = silent[0].recv(1) == b""
except OSError:
    dropped = True
expect("silent client dropped", "yes" if dropped else "no", "yes")
for s in silent + [slow]:
    s.close()
sys.exit(0 if ok else 1)
EOF
}

# SIGTERM: the router sends each session a Cease (Administrative shutdown) before it
# exits; BIRD says so in `show protocols all`.
bird_saw_cease() {
    birdc "$1" show protocols all peer_r | grep -q 'Received: Administrative shutdown'
}
c_sigterm_cease() {
    router_stop
    case $ROUTER_STOP_RESULT in "exited 0") ;; *) echo "not a clean exit"; return 1 ;; esac
    local rc=0 who
    for who in a b; do
        wait_until 10 bird_saw_cease "$who" || rc=1
        echo "---- BIRD $who: show protocols all peer_r"
        birdc "$who" show protocols all peer_r | head -12
    done
    return "$rc"
}

run_check sessions_established c_sessions_up 60
run_check metrics_parse c_metrics_parse
run_check metrics_agree_with_ctl c_metrics_agree
run_check tunnel_bytes_grow_after_ping c_tunnel_bytes_grow
run_check bad_requests_refused c_bad_requests
run_check sigterm_sends_cease c_sigterm_cease
RRT_NEED_ROUTER=
