#!/usr/bin/env bash
# Smoke test of the `ipsec-nic` tool as a user runs it (CI runs this after the tests):
#   1. `cargo run -- demo` (the README's first command): real Linux traffic through two
#      emulated hosts as root, the in-memory fallback otherwise (CI=true requires root);
#   2. `sa export --wireshark` of the SA config the demo wrote: tshark decrypts the capture;
#   3. `pcap decap` of the demo capture (both directions), `pcap encap` of the result, and a
#      second decap: the round trip gives the same plaintext frames, offload == --software.
# Kept short: 1-second throughput runs, an 8 MiB capture.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --quiet --bin ipsec-nic
bin=$(pwd)/target/debug/ipsec-nic
[ -n "${CARGO_TARGET_DIR:-}" ] && bin=$CARGO_TARGET_DIR/debug/ipsec-nic

echo "== cli-smoke: ipsec-nic demo"
out=$(cd "$work" && cargo run --quiet --manifest-path "$OLDPWD/Cargo.toml" --bin ipsec-nic -- \
  demo --seconds 1 --udp-rate 50M --pcap-limit-mib 8 2>"$work/demo.err") || {
  cat "$work/demo.err" >&2; printf '%s\n' "$out"; echo "cli-smoke: demo FAILED" >&2; exit 1; }
printf '%s\n' "$out" | sed -n '1,6p'
if grep -q "not root / no CAP_NET_ADMIN" "$work/demo.err"; then
  if [ "${CI:-}" = true ]; then
    echo "cli-smoke: CI=true but the demo fell back to the in-memory wire" >&2
    cat "$work/demo.err" >&2
    exit 1
  fi
  echo "cli-smoke: SKIPPED the namespace checks (not root / no CAP_NET_ADMIN)"
  exit 0
fi
printf '%s\n' "$out" | grep -q "result: OK" || { echo "cli-smoke: demo did not report OK" >&2; exit 1; }
pcap=$work/ipsec-nic-demo.pcap
sas=$work/ipsec-nic-demo.sas.toml
[ -s "$pcap" ] && [ -s "$sas" ] || { echo "cli-smoke: demo wrote no capture/SA config" >&2; exit 1; }
for k in $(sed -n 's/^[a-z]*_key = "\([0-9a-f]\{16\}\).*/\1/p' "$sas"); do
  if printf '%s' "$out" | grep -q "$k" || grep -q "$k" "$work/demo.err"; then
    echo "cli-smoke: key bytes printed by the demo" >&2; exit 1
  fi
done

echo "== cli-smoke: sa export --wireshark + tshark"
"$bin" sa export --wireshark --config "$sas" >"$work/uat"
if command -v tshark >/dev/null 2>&1; then
  args=()
  while IFS= read -r l; do args+=(-o "uat:esp_sa:$l"); done <"$work/uat"
  protos=$(tshark -r "$pcap" -c 2000 -o esp.enable_encryption_decode:TRUE "${args[@]}" \
    -T fields -e frame.protocols 2>/dev/null)
  esp=$(printf '%s\n' "$protos" | grep -c ':esp' || true)
  inner=$(printf '%s\n' "$protos" | grep -cE ':esp:(tcp|udp)' || true)
  echo "cli-smoke: tshark decrypted $inner of $esp ESP frames"
  [ "$esp" -gt 0 ] && [ "$inner" = "$esp" ] || { echo "cli-smoke: tshark decryption FAILED" >&2; exit 1; }
elif [ "${CI:-}" = true ]; then
  echo "cli-smoke: tshark missing under CI=true" >&2; exit 1
else
  echo "cli-smoke: tshark not installed, decryption check SKIPPED"
fi

echo "== cli-smoke: pcap decap / encap round trip of the demo capture"
# Both directions as seen by a receiver (decap), and by a sender (encap): A's file with the
# other direction mirrored.
mirror() { # $1: direction to turn into $2
  awk -v from="$1" -v to="$2" '
    /^\[\[sa\]\]/ { flip = 0 }
    $0 == "direction = \"" from "\"" { flip = 1; print "direction = \"" to "\""; next }
    flip && /^local = /  { l = $0; sub(/^local/, "remote", l); hold_l = l; next }
    flip && /^remote = / { r = $0; sub(/^remote/, "local", r); print r; print hold_l; next }
    { print }' "$sas"
}
mirror outbound inbound >"$work/decap.toml"
mirror inbound outbound >"$work/encap.toml"
"$bin" pcap decap --config "$work/decap.toml" --in "$pcap" --out "$work/plain.pcap" 2>"$work/decap.log"
cat "$work/decap.log"
grep -q " 0 dropped" "$work/decap.log" || { echo "cli-smoke: decap dropped frames" >&2; exit 1; }
"$bin" pcap encap --config "$work/encap.toml" --in "$work/plain.pcap" --out "$work/esp.pcap" 2>"$work/encap.log"
cat "$work/encap.log"
"$bin" pcap encap --software --config "$work/encap.toml" --in "$work/plain.pcap" --out "$work/esp-sw.pcap" 2>/dev/null
cmp -s "$work/esp.pcap" "$work/esp-sw.pcap" || { echo "cli-smoke: offload and --software differ" >&2; exit 1; }
"$bin" pcap decap --config "$work/decap.toml" --in "$work/esp.pcap" --out "$work/plain2.pcap" 2>/dev/null
cmp -s "$work/plain.pcap" "$work/plain2.pcap" || { echo "cli-smoke: round trip changed the frames" >&2; exit 1; }
if cmp -s "$work/esp.pcap" "$pcap"; then
  echo "cli-smoke: re-encapsulation reproduces the demo capture byte for byte"
fi
echo "cli-smoke: ok"
