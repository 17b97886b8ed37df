#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer's coverage instrumentation on stable Rust (the flags
# cargo-fuzz passes for `--sanitizer none`) and runs each for RUNS executions, printing
# libFuzzer's final statistics. Crashing inputs are kept in fuzz/artifacts/<target>/.
#   bash fuzz/run.sh [RUNS] [TARGET...]      (default: 100000 runs of every target)
set -euo pipefail
cd "$(dirname "$0")"
runs="${1:-100000}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(entry sync_message invite_token file_request config api_request peer_book store_files)
triple="$(rustc -vV | sed -n 's/^host: //p')"
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-sanitizer-coverage-stack-depth \
--cfg fuzzing -Cdebug-assertions -Ccodegen-units=1"
cargo build --release --target "$triple" --bins
# Seeds for `entry`: the entries of the published test vectors (valid, refused and opaque,
# up to 8 KiB), so the fuzzer starts from real entries and explores the body rules, not only
# the header. libFuzzer reads them beside the corpus and writes new units to the corpus only.
mkdir -p seeds/entry
python3 - <<'PY'
import json, pathlib
vectors = json.load(open("../docs/protocol-vectors.json"))
hexes = [d["expected"]["entry_hex"] for d in vectors["drafts"]]
hexes += [v["entry_hex"] for v in vectors["accepted"] + vectors["refused"] if "entry_hex" in v]
for n, h in enumerate(h for h in hexes if len(h) <= 16384):
    pathlib.Path(f"seeds/entry/vector-{n:03}").write_bytes(bytes.fromhex(h))
PY
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" "artifacts/$target" "seeds/$target"
  # Inputs that once crashed a target are kept in fuzz/regressions/<target>/ and replayed
  # first, every run: a fixed bug stays fixed.
  if compgen -G "regressions/$target/*" > /dev/null; then
    echo "== $target: replaying $(ls "regressions/$target" | wc -l) regression inputs"
    "target/$triple/release/$target" "regressions/$target"/*
  fi
  echo "== $target: $runs runs"
  "target/$triple/release/$target" -runs="$runs" -print_final_stats=1 \
    -artifact_prefix="artifacts/$target/" "corpus/$target" "seeds/$target" 2>&1 \
    | grep -E '^(stat::|Done|==|.*(crash|panicked|ERROR))' || true
  # A crash makes libFuzzer exit non-zero and leave an artifact: fail the run on either.
  if compgen -G "artifacts/$target/crash-*" > /dev/null; then
    echo "crashing inputs in fuzz/artifacts/$target/" >&2
    exit 1
  fi
done
