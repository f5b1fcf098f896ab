#!/usr/bin/env bash
# `rootless-router genkey` / `pubkey` against wireguard-tools' `wg genkey` / `wg pubkey`.
# Needs no root and no namespaces.
. "$(dirname "$0")/lib.sh"

require_tools wg "$PY"
require_router_bin
rrt_init

b64_32() { # a base64 string that decodes to exactly 32 bytes
    "$PY" -c 'import base64,sys; k=sys.argv[1]; assert len(k) == 44, len(k); assert len(base64.b64decode(k, validate=True)) == 32' "$1"
}

c_genkey_format() {
    local k
    k=$(to 10 "$RR_BIN" genkey) || { echo "genkey exited $?"; return 1; }
    echo "genkey: <${#k} chars>"
    [ "$(printf '%s\n' "$k" | wc -l)" = 1 ] || { echo "expected one line"; return 1; }
    b64_32 "$k" || { echo "not 44-char base64 of 32 bytes"; return 1; }
}

c_genkey_unique() {
    local k1 k2
    k1=$(to 10 "$RR_BIN" genkey) && k2=$(to 10 "$RR_BIN" genkey) || return 1
    [ "$k1" != "$k2" ] || { echo "two genkey runs returned the same key"; return 1; }
}

# Our pubkey of our genkey equals wg's pubkey of it, for several keys.
c_pubkey_of_genkey_matches_wg() {
    local i k ours theirs
    for i in 1 2 3 4 5; do
        k=$(to 10 "$RR_BIN" genkey) || return 1
        ours=$(printf '%s\n' "$k" | to 10 "$RR_BIN" pubkey) || { echo "pubkey exited $?"; return 1; }
        theirs=$(printf '%s\n' "$k" | wg pubkey) || { echo "wg pubkey rejected our genkey output"; return 1; }
        echo "key $i: rootless-router pubkey=$ours wg pubkey=$theirs"
        [ "$ours" = "$theirs" ] || return 1
    done
}

# wg's keys through our pubkey, including unclamped private keys (wg clamps).
c_pubkey_of_wg_genkey_matches_wg() {
    local i k ours theirs
    for i in 1 2 3 4 5; do
        k=$(wg genkey)
        ours=$(printf '%s\n' "$k" | to 10 "$RR_BIN" pubkey) || { echo "pubkey exited $?"; return 1; }
        theirs=$(printf '%s\n' "$k" | wg pubkey)
        echo "wg key $i: rootless-router pubkey=$ours wg pubkey=$theirs"
        [ "$ours" = "$theirs" ] || return 1
    done
    # An all-0xff private key (not clamped): both must clamp the same way.
    k=$("$PY" -c 'import base64; print(base64.b64encode(b"\xff" * 32).decode())')
    ours=$(printf '%s\n' "$k" | to 10 "$RR_BIN" pubkey) || { echo "pubkey exited $? on an unclamped key"; return 1; }
    theirs=$(printf '%s\n' "$k" | wg pubkey)
    echo "unclamped key: rootless-router pubkey=$ours wg pubkey=$theirs"
    [ "$ours" = "$theirs" ]
}

c_pubkey_rejects_garbage() {
    local out rc
    out=$(printf 'not a key\n' | to 10 "$RR_BIN" pubkey 2>&1)
    rc=$?
    echo "exit $rc: $out"
    [ "$rc" != 0 ] && [ "$rc" != 124 ]
}

run_check genkey_format c_genkey_format
run_check genkey_unique c_genkey_unique
run_check pubkey_of_genkey_matches_wg c_pubkey_of_genkey_matches_wg
run_check pubkey_of_wg_genkey_matches_wg c_pubkey_of_wg_genkey_matches_wg
run_check pubkey_rejects_garbage c_pubkey_rejects_garbage
