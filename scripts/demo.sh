#!/usr/bin/env bash
# The bundled example, end to end: start the OCP emulator on a free loopback port, then
# validate, plan (saved), apply the saved plan, and plan again, which must find nothing to do.
set -euo pipefail
cd "$(dirname "$0")/.."
workdir=.demo
rm -rf "$workdir" && mkdir -p "$workdir"

# two-factor is on, as on OCP; a 2 s code period (numsync.yaml's demo otp: policy) keeps the four logins quick
numsync emulator --otp-period 2 --port 0 --port-file "$workdir/port" --state "$workdir/emulator-state.json" >"$workdir/emulator.log" 2>&1 &
emulator=$!
trap 'kill "$emulator" 2>/dev/null || true; wait "$emulator" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  [ -s "$workdir/port" ] && break
  kill -0 "$emulator" 2>/dev/null || { cat "$workdir/emulator.log" >&2; exit 1; }
  sleep 0.1
done
[ -s "$workdir/port" ] || { echo "the emulator did not start; see $workdir/emulator.log" >&2; exit 1; }

export OCP_EMULATOR_URL="http://127.0.0.1:$(cat "$workdir/port")"
export OCP_USERNAME=demo OCP_PASSWORD=demo-secret   # the emulator's seeded OWNER user
export OCP_TOTP_SECRET=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP  # its documented two-factor secret (docs/emulator.md)
export NUMSYNC_STATE_DIR="$workdir/state"            # the record of used code steps, kept with the demo
if [ -t 1 ]; then step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }; else step() { printf '\n== %s\n' "$*"; }; fi

step "OCP emulator listening on $OCP_EMULATOR_URL (state: $workdir/emulator-state.json)"
step "numsync validate"
numsync validate
step "numsync plan --out $workdir/plan.json"
numsync plan --out "$workdir/plan.json"
step "numsync apply $workdir/plan.json"
numsync apply "$workdir/plan.json"
step "numsync plan --detailed-exitcode   (must report no changes)"
numsync plan --detailed-exitcode || { echo "the second plan still has changes: the apply did not converge" >&2; exit 1; }

step "Someone edits a note directly in OCP (out of band), then: numsync drift"
python - <<'PY'
import os, httpx
url = os.environ["OCP_EMULATOR_URL"] + "/_emulator/numbers/+442079460958"
httpx.patch(url, json={"NOTE": "changed by hand in the OCP console"}).raise_for_status()
PY
set +e
numsync drift --format text --format "html=$workdir/drift.html" --format "junit=$workdir/drift.xml"
status=$?
set -e
[ "$status" -eq 2 ] || { echo "drift should have exited 2 (drift found), got $status" >&2; exit 1; }
step "Demo finished: applied, verified, and the out-of-band edit was reported (also in $workdir/drift.html)."
