"""The export read whole, then parsed, against the export parsed as it arrives: wall time and peak RSS.

    python -m benchmarks.export_stream --numbers 100000

An emulator is seeded with a synthetic tenant's export (:mod:`benchmarks.tenant`). Each way
runs ``--repeat`` times, each in a fresh process (so its peak RSS is its own), and once more
per repeat under tracemalloc (Python's own peak allocation, which the C allocator's reuse of
freed memory does not blur): ``whole`` is ``parse_export(client.export())`` (the body held as
bytes, then the records), ``streamed`` is ``client.export_records()``. Both must give the
same records. The wall time is mostly the emulator writing the export.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from benchmarks import tenant as tenants

ROOT = Path(__file__).resolve().parents[1]


def child(way: str, base_url: str, token_url: str) -> None:
    """One export in this process (the login included, alike for both ways); prints wall seconds, peak RSS and a
    digest of the records."""
    from numsync.emulator.process import SEEDED_TOTP_SECRET
    from numsync.ocp import Credentials, OCPAuth, OCPClient
    from numsync.ocp.csvcodec import parse_export
    from numsync.ocp.otp import OtpPolicy

    credentials = Credentials(username="demo", password="demo-secret", totp_secret=SEEDED_TOTP_SECRET)
    auth = OCPAuth(token_url, credentials, otp=OtpPolicy(tenants.OTP_PERIOD, tenants.OTP_LOOK_AROUND))
    with OCPClient(base_url, auth, timeout=300) as client:
        traced = way.endswith("-traced")
        if traced:  # Python's own allocations, which the allocator's reuse of freed memory does not blur
            tracemalloc.start()
        started = time.perf_counter()
        records = parse_export(client.export()) if way.startswith("whole") else client.export_records()
        wall = time.perf_counter() - started
        heap = tracemalloc.get_traced_memory()[1] / 1e6 if traced else 0.0
    digest = hashlib.sha256(repr(records).encode()).hexdigest()[:16]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"way": way, "wall": wall, "rss_mb": rss, "heap_mb": heap, "records": len(records), "digest": digest}
    print(json.dumps(out))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--numbers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    from numsync.emulator.process import EmulatorProcess

    with tempfile.TemporaryDirectory(prefix="numsync-export-") as tmp:
        live = Path(tmp) / "live.csv"
        live.write_bytes(tenants.export_csv(tenants.build(args.numbers, 0.01)))
        size = live.stat().st_size
        with EmulatorProcess(
            "--from-csv",
            str(live),
            otp_period=tenants.OTP_PERIOD,
            otp_look_around=tenants.OTP_LOOK_AROUND,
            timeout=300,
        ) as emu:
            env = dict(os.environ, PYTHONPATH=str(ROOT))
            ways = ("whole", "streamed", "whole-traced", "streamed-traced")
            results: dict[str, list[dict[str, float | str]]] = {way: [] for way in ways}
            for _ in range(args.repeat):
                for way in results:
                    out = subprocess.run(
                        [sys.executable, "-m", "benchmarks.export_stream", "--child", way, emu.base_url, emu.token_url],
                        cwd=ROOT,
                        env=env,
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                    results[way].append(json.loads(out.stdout.strip().splitlines()[-1]))
    digests = {r["digest"] for runs in results.values() for r in runs}
    if len(digests) != 1:
        raise SystemExit(f"the two ways gave different records: {digests}")
    print(f"export of {args.numbers} numbers, {size / 1e6:.1f} MB; best of {args.repeat} fresh processes")
    print("| way | wall s (best) | peak RSS MB (highest) | peak Python heap MB (tracemalloc, highest) |")
    print("|---|---|---|---|")
    for way in ("whole", "streamed"):
        best = min(float(r["wall"]) for r in results[way])
        rss = max(float(r["rss_mb"]) for r in results[way])
        heap = max(float(r["heap_mb"]) for r in results[f"{way}-traced"])
        print(f"| {way} | {best:.2f} | {rss:.0f} | {heap:.0f} |")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4])
        sys.exit(0)
    sys.exit(main())
