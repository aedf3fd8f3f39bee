#!/usr/bin/env bash
# Interop check against an independent ESP implementation: Wireshark's dissector.
#
# Runs the end-to-end example (two emulated NICs, AES-GCM-128 ESP offload), then has tshark
# decrypt and authenticate the capture with the SA the example prints in Wireshark's esp_sa
# format. Expects every ICV to verify except the one frame the example tampers with.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v tshark >/dev/null 2>&1; then
  if [ "${CI:-}" = true ]; then
    echo "interop-tshark: tshark missing under CI=true (scripts/install-deps.sh installs it)" >&2
    exit 1
  fi
  echo "interop-tshark: SKIPPED (tshark not installed; run scripts/install-deps.sh as root)" >&2
  exit 0
fi

pcap=target/interop-offload_roundtrip.pcap
out=$(cargo run --quiet --example offload_roundtrip -- "$pcap")
entry=$(printf '%s\n' "$out" | sed -n 's/^wireshark esp_sa entry *//p')
[ -n "$entry" ] || { echo "interop-tshark: the example printed no esp_sa entry" >&2; exit 1; }

verdicts=$(tshark -r "$pcap" \
  -o esp.enable_encryption_decode:TRUE -o esp.enable_authentication_check:TRUE \
  -o "uat:esp_sa:$entry" -V 2>/dev/null | grep -E 'ESP ICV' | grep -oE '\[(correct|incorrect)' | sort | uniq -c)
correct=$(printf '%s\n' "$verdicts" | awk '$2=="[correct" {print $1}')
incorrect=$(printf '%s\n' "$verdicts" | awk '$2=="[incorrect" {print $1}')
echo "interop-tshark: tshark verified ${correct:-0} ICVs as correct, ${incorrect:-0} as incorrect"
# 1000 offloaded packets + 1 replayed copy are genuine; 1 frame is deliberately tampered.
if [ "${correct:-0}" != 1001 ] || [ "${incorrect:-0}" != 1 ]; then
  echo "interop-tshark: FAILED (expected 1001 correct, 1 incorrect)" >&2
  exit 1
fi
echo "interop-tshark: ok"
