#!/usr/bin/env bash
# Smoke-runs every cargo-fuzz target for a short while (15 s each; FUZZ_SECONDS to change),
# starting from the committed seeds in seeds/TARGET (the grown corpus/ is not committed);
# FUZZ_TARGETS="dotenv manifest" runs only those.
# Called by .ci/run. Needs rustup; installs the nightly toolchain and cargo-fuzz when missing.
#
# Exits non-zero when the build fails, when a target crashes, leaks, times out or runs out of
# memory (libFuzzer's exit status, and any file it leaves in artifacts/TARGET), and when the
# tools cannot be had — unless FUZZ_ALLOW_SKIP=1 (an offline runner), which then skips,
# saying why. Prints the executions of every target at the end.
set -euo pipefail
cd "$(dirname "$0")"
secs="${FUZZ_SECONDS:-15}"
cargo_fuzz_version="0.13.2"

unavailable() {
    if [ "${FUZZ_ALLOW_SKIP:-0}" = 1 ]; then
        echo "fuzz smoke skipped (FUZZ_ALLOW_SKIP=1): $*"
        exit 0
    fi
    echo "fuzz smoke failed: $* (set FUZZ_ALLOW_SKIP=1 to skip on a runner without them)" >&2
    exit 1
}

if ! cargo +nightly --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal ||
        unavailable "no nightly toolchain, and rustup could not install one"
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --version "$cargo_fuzz_version" --locked ||
        unavailable "cargo-fuzz is not installed and could not be installed"
fi

targets="${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}" # FUZZ_TARGETS="a b": only those
[ -n "$targets" ] || { echo "fuzz smoke: no targets" >&2; exit 1; }
cargo +nightly fuzz build
summary=""
for t in $targets; do
    echo "== fuzz $t for ${secs}s"
    mkdir -p "corpus/$t" "seeds/$t"
    log="$(mktemp)"
    stamp="$(mktemp)" # only artifacts newer than this are this run's (older ones are kept)
    rc=0
    cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1 || rc=$?
    grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==|SUMMARY|Done)" "$log" || true
    execs=$(grep -Eo "^stat::number_of_executed_units: *[0-9]+" "$log" | grep -Eo "[0-9]+$" || echo "?")
    new=$(find "artifacts/$t" -type f -newer "$stamp" 2>/dev/null || true)
    rm -f "$stamp"
    if [ "$rc" != 0 ] || [ -n "$new" ]; then
        tail -n 60 "$log"
        rm -f "$log"
        echo "fuzz $t failed (exit $rc); new artifacts:" $new >&2
        exit 1
    fi
    rm -f "$log"
    summary+="$(printf '%-16s %12s executions\n' "$t" "$execs")"$'\n'
done
echo "fuzz smoke: all targets ran ${secs}s without a crash"
printf '%s' "$summary"
