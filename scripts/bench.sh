#!/usr/bin/env bash
# All benchmarks with short measurement times, then the Markdown report and plots
# (scripts/bench-report.py):
#   crates: ipsec `crypto`, nicsim `engine` (incl. engine_vs_raw + interleaved summary),
#           miniport `oids`;
#   root:   `pipeline` (two hosts vs engine-only, host CPU offload vs software, interleaved
#           summary in <target>/criterion/ipsec-nic-summary.json);
#   as root only: examples/tap_bench (hosts on TAP devices vs raw TAP), output kept in
#           <target>/criterion/tap_bench.txt (SKIP_TAP=1 skips it).
#
#   scripts/bench.sh                 # everything, 1 s warm-up, 3 s measurement per benchmark
#   WARMUP=2 MEASURE=5 scripts/bench.sh
#   scripts/bench.sh 'esp_seal/aes-gcm-128'   # a criterion filter (regex) for every bench
#
# Output: $CARGO_TARGET_DIR/criterion (default ./target/criterion), every bench's stdout in
# <target>/criterion/bench-stdout.txt, the table on stdout and in docs/bench/results.md, PNG
# plots in docs/bench/. Never set -C target-cpu=native (see ../shared/spec/performance.md:
# RustCrypto SHA becomes ~120x slower on this machine).
set -euo pipefail
cd "$(dirname "$0")/.."
WARMUP="${WARMUP:-1}"
MEASURE="${MEASURE:-3}"
FILTER=("$@")
TARGET="${CARGO_TARGET_DIR:-target}"
mkdir -p "$TARGET/criterion"
OUT="$TARGET/criterion/bench-stdout.txt"
: > "$OUT"
echo "load before: $(cat /proc/loadavg)" | tee -a "$OUT" >&2
for spec in "ipsec crypto" "nicsim engine" "miniport oids" "ipsec-nic pipeline"; do
    set -- $spec
    echo "== $1 $2 (load $(cut -d' ' -f1-3 /proc/loadavg))" | tee -a "$OUT" >&2
    cargo bench -p "$1" --bench "$2" -- --warm-up-time "$WARMUP" --measurement-time "$MEASURE" \
        --noplot "${FILTER[@]}" | tee -a "$OUT"
done
if [ "${SKIP_TAP:-0}" != 1 ] && [ "$(id -u)" = 0 ] && [ ${#FILTER[@]} -eq 0 ]; then
    cargo run --release --example tap_bench | tee "$TARGET/criterion/tap_bench.txt"
fi
echo "load after: $(cat /proc/loadavg)" | tee -a "$OUT" >&2
python3 scripts/bench-report.py "$TARGET" --out docs/bench
