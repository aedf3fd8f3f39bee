#!/usr/bin/env bash
# Run every cargo-fuzz target for a bounded time on a copy of its committed seed corpus.
#
#   scripts/fuzz.sh [seconds-per-target]      (default 20)
#
# Installs cargo-fuzz if missing. The toolchain is stable, so RUSTC_BOOTSTRAP=1 lets
# cargo-fuzz use the nightly-only sanitizer flags. Builds go to fuzz/target (or
# $FUZZ_TARGET_DIR); the working corpus is fuzz/run/<target> (ignored by git), so the committed
# seeds under fuzz/corpus/ never change. Fails if any target crashes, printing the artifact;
# a crash input belongs under fuzz/regressions/<target>/ (replayed by tests/fuzz_regressions.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-20}"
if ! [[ "$secs" =~ ^[0-9]+$ ]] || [ "$secs" -lt 1 ]; then
    echo "usage: $0 [seconds-per-target]" >&2
    exit 2
fi
targets=(oid_set_info oid_parsers nic_rx_frame ipsec_inbound replay_model transport_inbound pcap_decap wfp_sequence)
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/fuzz/target}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

cd fuzz
echo "== cargo fuzz build"
cargo fuzz build

failed=()
for t in "${targets[@]}"; do
    rm -rf "run/$t" "artifacts/$t"
    mkdir -p "run/$t" "artifacts/$t"
    cp corpus/"$t"/* "run/$t/"
    echo "== fuzz $t for ${secs}s"
    if ! cargo fuzz run "$t" "run/$t" -- -max_total_time="$secs" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 >"run/$t.log" 2>&1; then
        failed+=("$t")
        echo "!! $t: crash or error; last lines of fuzz/run/$t.log:"
        tail -n 40 "run/$t.log"
        for a in artifacts/"$t"/*; do
            [ -e "$a" ] && echo "!! artifact: fuzz/$a (copy it to fuzz/regressions/$t/)"
        done
    else
        grep -E "stat::number_of_executed_units|Done [0-9]+ runs" "run/$t.log" | tail -n 2 || true
    fi
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "!! fuzzing found crashes in: ${failed[*]}"
    exit 1
fi
echo "== fuzzing: no crashes"
