#!/usr/bin/env python3
"""`make test`: run the given make targets in order, then print where the time went.

Each target is timed as a whole; the pytest target also writes the time of each suite (and of the
lab's build and start-up) to build/test-split.json, which the table shows under it. The table is
printed when a step fails too, and the exit status is the failed step's.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
SPLIT = REPO / "build" / "test-split.json"


def main(targets: list[str]) -> int:
    make = os.environ.get("MAKE", "make")
    SPLIT.unlink(missing_ok=True)
    env = dict(os.environ, MCI_TEST_SPLIT=str(SPLIT))
    rows, code = [], 0
    started = time.monotonic()
    for target in targets:
        t0 = time.monotonic()
        code = subprocess.call([make, "--no-print-directory", target], cwd=REPO, env=env)
        rows.append((target, time.monotonic() - t0, code))
        if code:
            break
    total = time.monotonic() - started
    print("\n==== make test: time per step ====")
    for target, seconds, rc in rows:
        print("%-38s %8.1f s%s" % (target, seconds, "  FAILED (exit %d)" % rc if rc else ""))
        if target == "pytest" and SPLIT.exists():
            for what, part in json.loads(SPLIT.read_text(encoding="utf-8")):
                print("  %-36s %8.1f s" % (what, part))
    print("%-38s %8.1f s (%.1f min)" % ("total", total, total / 60))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
