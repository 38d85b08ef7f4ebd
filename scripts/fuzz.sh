#!/usr/bin/env bash
# Runs every fuzz target for a while (default 2 minutes each, or $1: "10s")
# on top of its seed corpus, and prints how many inputs each one tried.
# A failing input is written by Go to the package's testdata/fuzz/<Target>/
# and becomes a seed once committed. make fuzz (FUZZTIME=…), make test (10s).
set -euo pipefail
cd "$(dirname "$0")/.."
time="${1:-2m}"
targets=(
	"./internal/storage FuzzParseManifest"
	"./internal/storage FuzzReadQCOW2Header"
	"./internal/nbd FuzzClientReplies"
	"./internal/nbd FuzzGateOptions"
	"./internal/console FuzzRFBClientHandshake"
	"./internal/console FuzzRFBServerHandshake"
	"./internal/vmspec FuzzBuildDomain"
)
summary=()
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	echo "==> fuzz $name ($pkg) for $time"
	log="$(mktemp)"
	ok=false
	for attempt in 1 2; do
		if go test -run='^$' -fuzz="^${name}\$" -fuzztime="$time" "$pkg" 2>&1 | tee "$log"; then
			ok=true
			break
		fi
		# Go's fuzzing engine sometimes ends a run with "context deadline
		# exceeded" when -fuzztime runs out under load, having found
		# nothing (a finding is always written out as a failing input):
		# that is run once more; anything else is a finding.
		if grep -q 'Failing input written' "$log" || ! grep -q 'context deadline exceeded' "$log"; then
			break
		fi
		echo "==> fuzz $name: the engine timed out without a finding; running it once more"
	done
	if ! $ok; then
		echo "fuzz $name FAILED: the failing input is in $pkg/testdata/fuzz/$name/" >&2
		rm -f "$log"
		exit 1
	fi
	execs="$(grep -o 'execs: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo 0)"
	rm -f "$log"
	summary+=("$(printf '%-26s %-20s %12s execs' "$name" "$pkg" "$execs")")
done
echo "==> fuzzing done ($time each):"
printf '    %s\n' "${summary[@]}"
