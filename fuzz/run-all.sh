#!/usr/bin/env bash
# A fuzzing campaign: builds every cargo-fuzz target once, runs each for SECONDS of wall time
# (JOBS targets at a time, default 1), and prints a table per target: CPU seconds,
# executions, crashes, corpus entries. Exits 1 when any target crashed.
#
#   fuzz/run-all.sh [--merge] SECONDS [JOBS] [TARGET...]
#
# With TARGETs, only those run (a campaign can top up the targets that have had the least
# time); without, every target does.
#
# The working corpus lives under the cargo target directory and grows from run to run; it is
# seeded from the committed fuzz/corpus/<target>/ each time. Crash inputs are saved under
# fuzz/artifacts/<target>/ (not committed). With --merge, the inputs that add coverage over
# the committed corpus are merged into fuzz/corpus/<target>/ (libFuzzer -merge=1); review
# before committing and keep the committed corpus small.
#
# Release builds with AddressSanitizer by default (FUZZ_SANITIZER=none to disable); when the
# sanitized build fails, the script falls back to no sanitizer and says so.
set -euo pipefail

merge=0
if [ "${1:-}" = "--merge" ]; then
  merge=1
  shift
fi
seconds="${1:?usage: fuzz/run-all.sh [--merge] SECONDS [JOBS] [TARGET...]}"
jobs="${2:-1}"
shift $(( $# < 2 ? $# : 2 ))
case "$seconds$jobs" in
  *[!0-9]*) echo "SECONDS and JOBS are whole numbers" >&2; exit 2 ;;
esac

cd "$(dirname "$0")"
fuzz_dir="$(pwd)"
# cargo-fuzz passes nightly-only flags (-Z, sanitizer coverage) to rustc; the stable toolchain
# accepts them when told it is bootstrapping.
export RUSTC_BOOTSTRAP=1
target_dir="${CARGO_TARGET_DIR:-$fuzz_dir/target}"
triple="$(rustc -vV | sed -n 's/^host: //p')"
sanitizer="${FUZZ_SANITIZER:-address}"

if ! cargo fuzz build -O --sanitizer "$sanitizer"; then
  if [ "$sanitizer" = none ]; then
    exit 2
  fi
  echo "the $sanitizer-sanitized build failed: building without a sanitizer" >&2
  sanitizer=none
  cargo fuzz build -O --sanitizer none
fi
bin_dir="$target_dir/$triple/release"
work="$target_dir/fuzz-campaign"
mkdir -p "$work" "$fuzz_dir/artifacts"

# Runs one target; writes "target cpu_seconds executions crashes corpus new" to $work/$1.row.
run_one() {
  local target="$1"
  local corpus="$work/$target/corpus" artifacts="$fuzz_dir/artifacts/$target/"
  mkdir -p "$corpus" "$artifacts"
  if [ -d "$fuzz_dir/corpus/$target" ]; then
    cp -n "$fuzz_dir/corpus/$target"/* "$corpus"/ 2>/dev/null || true
  fi
  local before crashes_before status=0
  before="$(find "$corpus" -type f | wc -l)"
  crashes_before="$(find "$artifacts" -type f | wc -l)"
  local TIMEFORMAT='%3U %3S'
  { time "$bin_dir/$target" "$corpus" -max_total_time="$seconds" -print_final_stats=1 \
      -max_len=20000 -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$artifacts" \
      >"$work/$target.log" 2>&1 || status=$?; } 2>"$work/$target.time"
  local cpu executions after crashes
  cpu="$(awk '{ printf "%.0f", $1 + $2 }' "$work/$target.time")"
  executions="$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$target.log" | tail -1)"
  after="$(find "$corpus" -type f | wc -l)"
  crashes="$(( $(find "$artifacts" -type f | wc -l) - crashes_before ))"
  if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then
    crashes=1
  fi
  echo "$target $cpu ${executions:-0} $crashes $after $((after - before))" >"$work/$target.row"
  if [ "$merge" = 1 ]; then
    "$bin_dir/$target" -merge=1 "$fuzz_dir/corpus/$target" "$corpus" >"$work/$target.merge.log" 2>&1
  fi
}

targets="$(cargo fuzz list)"
if [ "$#" -gt 0 ]; then
  for wanted in "$@"; do
    if ! printf '%s\n' $targets | grep -qx -- "$wanted"; then
      echo "no fuzz target named $wanted (cargo fuzz list names them)" >&2
      exit 2
    fi
  done
  targets="$*"
fi
echo "fuzzing $(echo "$targets" | wc -w) targets for ${seconds}s each, $jobs at a time, sanitizer: $sanitizer"
running=0
for target in $targets; do
  rm -f "$work/$target.row"
  echo "--- $target"
  run_one "$target" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

failed=0
printf '\n| target | CPU s | executions | exec/s | crashes | corpus | new |\n'
printf '|---|---:|---:|---:|---:|---:|---:|\n'
for target in $targets; do
  if [ ! -f "$work/$target.row" ]; then
    printf '| %s | run failed, see %s |\n' "$target" "$work/$target.log"
    failed=1
    continue
  fi
  read -r name cpu executions crashes corpus new <"$work/$target.row"
  rate=$(( executions / (cpu > 0 ? cpu : 1) ))
  printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$cpu" "$executions" "$rate" "$crashes" "$corpus" "$new"
  if [ "$crashes" -ne 0 ]; then
    failed=1
    echo "  crash inputs: fuzz/artifacts/$name/, log: $work/$name.log" >&2
  fi
done
exit "$failed"
