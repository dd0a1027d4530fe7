#!/usr/bin/env python3
"""Benchmark: time to connect 2, 3 and 4 Cilium clusters from scratch, and a no-op re-run, on the lab.

For each size the Cilium release is uninstalled from every lab cluster first, then
playbooks/cilium_mesh.yml runs once (install, CA, peers, rollout wait, read-back) and once more
(nothing to change). Cluster03 and cluster04 join net-a only for the run (test inventories
cilium3/cilium4) and lose the release at the end; net-a (cluster01, cluster02) is converged again.

The lab's Pods are simulated: the figures measure the control plane (Helm, API server, the role's
checks), not data-plane convergence.
"""

from __future__ import annotations

import pathlib
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(0, str(REPO / "tests"))

from lab.conftest import _describe  # noqa: E402  pylint: disable=wrong-import-position
from test_cilium_mesh import INVENTORIES, LAB, helm_uninstall, playbook, recap  # noqa: E402

SIZES = {2: LAB, 3: LAB + [INVENTORIES / "cilium3"], 4: LAB + [INVENTORIES / "cilium3", INVENTORIES / "cilium4"]}
CLUSTERS = ("cluster01", "cluster02", "cluster03", "cluster04")


def timed(inventories):
    start = time.monotonic()
    run = playbook("cilium_mesh.yml", inventories, timeout=1800)
    elapsed = time.monotonic() - start
    if run.returncode != 0:
        raise SystemExit("cilium_mesh.yml failed:\n%s\n%s" % (run.stdout[-5000:], run.stderr[-2000:]))
    return elapsed, sum(c.get("changed", 0) for c in recap(run.stdout).values())


def main() -> int:
    lab = _describe()
    rows = []
    try:
        for size, inventories in SIZES.items():
            for cluster in CLUSTERS:
                helm_uninstall(lab, cluster)
            first, changed_first = timed(inventories)
            again, changed_again = timed(inventories)
            rows.append((size, first, changed_first, again, changed_again))
    finally:
        for cluster in ("cluster03", "cluster04"):
            helm_uninstall(lab, cluster)
        playbook("cilium_mesh.yml", LAB, timeout=1800)
    print("cilium_mesh benchmark on the lab (simulated Pods; control plane only)")
    print("%-9s %-22s %-22s %s" % ("clusters", "from scratch", "no-op re-run", "per cluster (scratch)"))
    for size, first, changed_first, again, changed_again in rows:
        print("%-9d %7.1f s (changed=%-3d) %7.1f s (changed=%-3d) %7.1f s"
              % (size, first, changed_first, again, changed_again, first / size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
