#!/bin/sh
# The whole test suite, from a fresh Debian 12 machine: installs what is
# missing, builds with warnings as errors, then runs every test
#   1. plain (RelWithDebInfo), then the deployment files validated against
#      their schemas, linted and cross-checked (tests/deploy),
#   2. under AddressSanitizer + UndefinedBehaviorSanitizer,
#   3. under ThreadSanitizer: the stress programs (tests/stress), which drive
#      every threaded path, the whole Kafka worker included; criterion 2.4.1
#      itself cannot start under TSan ("Could not initialize inheritable
#      arena", Criterion issue #274),
#   4. under valgrind memcheck (errors and definite leaks fail the run),
#   5. libFuzzer targets (tests/fuzz, built with clang + ASan + UBSan), each
#      for FUZZ_SECONDS (default 30) from its seed corpus in tests/fuzz/corpus.
# Usage: tests/run.sh [quick]   ("quick" stops after stage 1)
# Needs no running services: tests start their own redis-server.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
jobs=$(nproc 2>/dev/null || echo 2)

sh deploy/install-deps.sh

stage() {
	echo
	echo "=== $1"
}

build() { # dir, extra cmake args...
	dir=$1
	shift
	cmake -S "$top" -B "$dir" -DWB_WERROR=ON -DWB_TESTS=ON "$@" >/dev/null
	cmake --build "$dir" -j "$jobs" >/dev/null
}

stage "build and test (RelWithDebInfo, -Werror)"
build build
ctest --test-dir build --output-on-failure

stage "deployment files (Kubernetes, compose, Dockerfile, dashboard: schemas, lint, consistency)"
sh tests/deploy/run.sh
[ "${1:-}" = quick ] && exit 0

stage "AddressSanitizer + UndefinedBehaviorSanitizer"
build build-asan -DCMAKE_BUILD_TYPE=Debug -DWB_SANITIZE=address
# the integration tests repeat the plain stage's runs with slower binaries;
# under ASan only the stream ones run, to keep the suite short
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	LSAN_OPTIONS="suppressions=$top/tests/lsan.supp:print_suppressions=0" \
	ctest --test-dir build-asan --output-on-failure -E '^itest_(dlq|group|outage|rebalance|shutdown)$'

stage "ThreadSanitizer"
build build-tsan -DCMAKE_BUILD_TYPE=Debug -DWB_SANITIZE=thread
# stress_worker runs the whole worker in-process against wb-mock-kafka; the
# mock itself cannot run under TSan, so it comes from the plain build.
WB_MOCK_KAFKA="$top/build/wb-mock-kafka" STRESS_WORKER_EVENTS=300 \
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$top/tests/tsan.supp" \
	ctest --test-dir build-tsan --output-on-failure -R '^stress_'

stage "valgrind memcheck"
# criterion runs each test in a forked child; valgrind follows forks, but not
# into the redis-server, redis-cli and openssl processes the tests start.
# One program per core at a time (xargs -P): valgrind runs a program on one
# core, and the tests use their own ports and directories.
vg_one='t=$1
log="build/valgrind-$(basename "$t").log"
echo "valgrind $(basename "$t")"
valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
	--trace-children=yes --child-silent-after-fork=no \
	--trace-children-skip="*/redis-server,*/redis-cli,*/openssl,*/env,*/sh,*/wb-mock-kafka" \
	--suppressions="$2" "$t" --jobs 1 >/dev/null 2>"$log" || {
	cat "$log"
	echo "valgrind found errors in $t"
	exit 255
}'
for t in build/test_* build/stress_*; do
	[ -x "$t" ] && echo "$t"
done | xargs -P "$jobs" -I{} sh -c "$vg_one" sh {} "$top/tests/valgrind.supp" || exit 1
# the worker binary itself, on every recording (the tests above run it
# through sh, which valgrind does not follow)
for rec in tests/data/replay/*.jsonl; do
	case "$rec" in *.expected.jsonl) continue ;; esac
	echo "valgrind wabot-worker replay $(basename "$rec")"
	valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
		./build/wabot-worker replay --input "$rec" --output /dev/null --log-level error 2>build/valgrind.log || {
		cat build/valgrind.log
		echo "valgrind found errors in wabot-worker replay $rec"
		exit 1
	}
done
echo "valgrind: clean"

stage "fuzzing (libFuzzer, ${FUZZ_SECONDS:-30} s per target)"
CC=clang cmake -S "$top" -B build-fuzz -DWB_FUZZ=ON -DWB_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j "$jobs" >/dev/null
for f in build-fuzz/fuzz_*; do
	[ -x "$f" ] || continue
	name=$(basename "$f" | sed 's/^fuzz_//')
	work="build-fuzz/corpus-$name"
	rm -rf "$work"
	mkdir -p "$work"
	[ -d "tests/fuzz/corpus/$name" ] && cp -r "tests/fuzz/corpus/$name/." "$work/"
	echo "fuzz_$name"
	"$f" -max_total_time="${FUZZ_SECONDS:-30}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="build-fuzz/crash-$name-" "$work" >"build-fuzz/fuzz_$name.log" 2>&1 || {
		tail -n 60 "build-fuzz/fuzz_$name.log"
		echo "fuzz_$name found a failure; the input is in build-fuzz/crash-$name-*"
		exit 1
	}
	grep -E '^stat::number_of_executed_units' "build-fuzz/fuzz_$name.log" || true
done

stage "all stages passed"
