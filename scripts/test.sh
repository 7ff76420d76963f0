#!/usr/bin/env bash
# test.sh - installs what is missing, builds, and runs every test: the README's test command, and
# what .ci/run runs. Steps: release build + its unit tests; ASan+UBSan build + the whole ctest
# suite; libFuzzer targets, each for FUZZ_SECONDS over its committed corpus; cppcheck; clang-tidy.
# Environment: FUZZ_SECONDS (default 20), CTEST_ARGS (extra ctest arguments, e.g. "-L unit").
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
jobs=$(nproc 2>/dev/null || echo 2)
step() { printf '\n=== %s\n' "$*"; }

step "dependencies"
scripts/deps.sh all

step "release build (-Werror)"
scripts/build.sh release
step "release: unit tests"
(cd build && ctest --output-on-failure -L 'unit|fuzz-corpus' -j "$jobs")

step "ASan+UBSan build"
scripts/build.sh asan
step "ASan+UBSan: every test"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# shellcheck disable=SC2086
(cd build-asan && ctest --output-on-failure -j "$jobs" --timeout 600 ${CTEST_ARGS:-})

step "fuzzing (${FUZZ_SECONDS}s per target)"
fuzz_targets=$(for f in tests/fuzz/fuzz_*.c; do basename "$f" .c; done | tr '\n' ' ')
TARGETS="$fuzz_targets" scripts/build.sh fuzz
for f in build-fuzz/tests/fuzz_*; do
	[ -x "$f" ] || continue
	name=$(basename "$f")
	work=$(mktemp -d)
	cp -r "tests/fuzz/corpus/$name/." "$work/"
	echo "--- $name"
	rc=0
	"$f" -max_total_time="$FUZZ_SECONDS" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 "$work" >"$work.log" 2>&1 || rc=$?
	grep -E "^(stat::number_of_executed_units|#[0-9]+ *DONE)" "$work.log" || true
	if [ "$rc" -ne 0 ]; then
		tail -n 60 "$work.log" >&2
		echo "fuzz target $name failed (exit $rc)" >&2
		exit 1
	fi
	rm -rf "$work" "$work.log"
done

step "cppcheck"
cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability --std=c11 \
	--inline-suppr -I wire -I crypto -I conf $(for d in proxy/*/; do printf -- '-I %s ' "$d"; done) crypto conf proxy

step "clang-tidy"
# The project's .clang-tidy over every C file of the three libraries, with the release build's
# compile commands (build/compile_commands.json), two files at a time; about 1.5 minutes on 2
# cores. clang-tidy exits 0 on warnings, so any warning or error line fails the step.
command -v clang-tidy >/dev/null || { echo "clang-tidy not found (Debian package clang-tidy)" >&2; exit 1; }
tidy_log=$(mktemp)
rc=0
# Each file's output is collected and printed in one piece, so the two jobs' lines do not mix.
# shellcheck disable=SC2016
printf '%s\n' crypto/*.c conf/*.c proxy/*.c proxy/*/*.c | xargs -n 1 -P 2 sh -c \
	'out=$(clang-tidy -p build --quiet "$1" 2>&1); rc=$?; [ -z "$out" ] || printf "%s\n" "$out"; exit $rc' tidy \
	>"$tidy_log" || rc=$?
if [ "$rc" -ne 0 ] || grep -qE ': (warning|error):' "$tidy_log"; then
	grep -v 'warnings\? generated\.$' "$tidy_log" >&2 || true
	rm -f "$tidy_log"
	echo "clang-tidy: findings above (exit $rc)" >&2
	exit 1
fi
rm -f "$tidy_log"

step "all tests passed"
