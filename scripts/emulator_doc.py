"""Write docs/emulator.md from the emulator's module docstring (the single source of its choices).

Usage: python scripts/emulator_doc.py [--check]   (--check exits 1 when the page is out of date)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numsync.emulator

PAGE = Path(__file__).resolve().parents[1] / "docs" / "emulator.md"
HEADER = """# The OCP emulator

A real HTTP server (Starlette on uvicorn) that behaves like the OCP numbers CSV API, for
tests, the demo and rehearsals. Run it:

```sh
numsync emulator --port 8080 --state /tmp/ocp.json      # seeded tenant, persisted
numsync emulator --port 0 --port-file port --seed empty  # free port, written to ./port
numsync emulator --from-csv live.csv                     # seeded from an export
numsync emulator --limit Delete=5 --access-ttl 60        # tenant-specific limits, short tokens
```

Seeded users: `demo` / `demo-secret` (OWNER, all groups), `viewer` / `viewer-secret`
(VIEWER), `qa-owner` / `qa-owner-secret` (OWNER of `ocp-qa` only).

This page is generated from the module docstring of `numsync/emulator/__init__.py` by
`python scripts/emulator_doc.py`; a test keeps them in step.

"""


def render() -> str:
    doc = numsync.emulator.__doc__ or ""
    body = doc.split("\n\n", 1)[1].replace("``", "`")
    lines = []
    for line in body.splitlines():
        if set(line.strip()) == {"-"}:
            lines[-1] = "## " + lines[-1]
            continue
        lines.append(line)
    return HEADER + "\n".join(lines).strip() + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        if not PAGE.exists() or PAGE.read_text("utf-8") != text:
            print(f"{PAGE} is out of date: run python scripts/emulator_doc.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text, "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
