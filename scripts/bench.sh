#!/usr/bin/env bash
# Crate-level benchmarks (ipsec, nicsim, miniport) with short measurement times, then the
# Markdown report and plots (scripts/bench-report.py).
#
#   scripts/bench.sh                 # everything, 1 s warm-up, 3 s measurement per benchmark
#   WARMUP=2 MEASURE=5 scripts/bench.sh
#   scripts/bench.sh 'esp_seal/aes-gcm-128'   # a criterion filter (regex) for every crate
#
# Output: $CARGO_TARGET_DIR/criterion (default ./target/criterion), the table on stdout and in
# docs/bench/results.md, PNG plots in docs/bench/. Never set -C target-cpu=native (see
# ../shared/spec/performance.md: RustCrypto SHA becomes ~120x slower on this machine).
set -euo pipefail
cd "$(dirname "$0")/.."
WARMUP="${WARMUP:-1}"
MEASURE="${MEASURE:-3}"
FILTER=("$@")
TARGET="${CARGO_TARGET_DIR:-target}"
echo "load before: $(cat /proc/loadavg)" >&2
for spec in "ipsec crypto" "nicsim engine" "miniport oids"; do
    set -- $spec
    cargo bench -p "$1" --bench "$2" -- --warm-up-time "$WARMUP" --measurement-time "$MEASURE" \
        --noplot "${FILTER[@]}"
done
echo "load after: $(cat /proc/loadavg)" >&2
python3 scripts/bench-report.py "$TARGET" --out docs/bench
