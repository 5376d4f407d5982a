#!/usr/bin/env bash
# Smoke-runs every cargo-fuzz target for a short while (15 s each; FUZZ_SECONDS to change),
# starting from the committed seeds in seeds/TARGET (the grown corpus/ is not committed).
# Called by .ci/run. Installs cargo-fuzz when missing; skips, saying why, when nightly or
# cargo-fuzz cannot be had (an offline runner), so CI does not fail for a missing tool.
set -euo pipefail
cd "$(dirname "$0")"
secs="${FUZZ_SECONDS:-15}"

skip() {
    echo "fuzz smoke skipped: $*"
    exit 0
}

if ! cargo +nightly --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal >/dev/null 2>&1 ||
        skip "no nightly toolchain, and rustup could not install one"
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked ||
        skip "cargo-fuzz is not installed and could not be installed"
fi

targets=$(cargo +nightly fuzz list)
cargo +nightly fuzz build
for t in $targets; do
    echo "== fuzz $t for ${secs}s"
    mkdir -p "corpus/$t" "seeds/$t"
    cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- -max_total_time="$secs" -print_final_stats=1 2>&1 |
        grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==|SUMMARY|Done)" || true
    # cargo fuzz exits non-zero on a crash; pipefail would hide it behind grep, so check the
    # artifacts directory instead.
    if compgen -G "artifacts/$t/*" >/dev/null; then
        echo "fuzz $t found a crash:" artifacts/"$t"/*
        exit 1
    fi
done
echo "fuzz smoke: all targets ran ${secs}s without a crash"
