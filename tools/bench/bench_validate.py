#!/usr/bin/env python3
"""Benchmark: validate 5,000 dual-stack clusters (20,000 networks) against a naive pairwise baseline.

Prints the time of the full pure validation (names, IDs, CIDR parsing, every overlap rule), the
time of a naive pairwise ipaddress overlap scan over the same networks, and their ratio. Both
find the same in-group overlaps, which the script checks before printing figures.

Targets: the validation under 1 s, and at least 100 times faster than the baseline.
Environment: BENCH_CLUSTERS (default 5000), BENCH_GROUP_SIZE (default 100).
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import pathlib
import sys
import time
import tracemalloc

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / ".collections"))

from ansible_collections.multicloud.interconnect.plugins.module_utils import _topology  # noqa: E402


def make_inventory(count: int, group_size: int) -> dict:
    """Groups of ``group_size`` clusters; every group reuses the same ranges (overlap across groups only)."""
    inventory = {}
    for index in range(count):
        slot = index % group_size
        inventory["c%05d" % index] = {
            "cluster_id": slot % 255 + 1,  # repeats across groups: ID_DUPLICATE work is measured too
            "cluster_pod_cidrs": ["10.%d.%d.0/24" % (slot // 256, slot % 256), "fd00:%x::/64" % slot],
            "cluster_service_cidrs": ["172.%d.%d.0/24" % (16 + slot // 256, slot % 256), "fd01:%x::/112" % slot],
            "cluster_network_group": "g%03d" % (index // group_size),
            "cluster_cni": "cilium",
        }
    # One deliberate in-group overlap, so both methods have something to find.
    inventory["c00001"]["cluster_pod_cidrs"][0] = "10.0.0.0/23"
    return inventory


def naive_in_group_overlaps(inventory: dict) -> set:
    """Every pair of networks compared with ipaddress: what a validator without a sweep does."""
    networks = []
    for name, hv in inventory.items():
        for cidr in hv["cluster_pod_cidrs"] + hv["cluster_service_cidrs"]:
            networks.append((ipaddress.ip_network(cidr), name, hv["cluster_network_group"]))
    found = set()
    for (a, name_a, group_a), (b, name_b, group_b) in itertools.combinations(networks, 2):
        if a.version == b.version and a.overlaps(b) and group_a == group_b and name_a != name_b:
            found.add(frozenset((name_a, name_b)))
    return found


def main() -> None:
    count = int(os.environ.get("BENCH_CLUSTERS", "5000"))
    group_size = int(os.environ.get("BENCH_GROUP_SIZE", "100"))
    inventory = make_inventory(count, group_size)
    networks = sum(len(hv["cluster_pod_cidrs"]) + len(hv["cluster_service_cidrs"]) for hv in inventory.values())
    print("validate_topology benchmark: %d clusters, %d networks (dual-stack Pod and Service), groups of %d"
          % (count, networks, group_size))

    started = time.perf_counter()
    report = _topology.validate_inventory(inventory, [])
    sweep_seconds = time.perf_counter() - started
    # Memory is measured in a second run: tracing slows Python down and would distort the time.
    tracemalloc.start()
    _topology.validate_inventory(inventory, [])
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    swept = {frozenset(p.clusters) for p in report.errors if p.code == "CIDR_OVERLAP_IN_GROUP"}
    print("  sort-and-sweep validation (all rules): %8.3f s   peak Python memory %.1f MiB   errors %d"
          % (sweep_seconds, peak / 2**20, len(report.errors)))

    print("  naive pairwise ipaddress baseline (%d comparisons) running ..." % (networks * (networks - 1) // 2),
          flush=True)
    started = time.perf_counter()
    naive = naive_in_group_overlaps(inventory)
    naive_seconds = time.perf_counter() - started
    print("  naive pairwise baseline (overlaps only):  %8.3f s   errors %d" % (naive_seconds, len(naive)))
    if naive != swept:
        print("MISMATCH: the sweep found %s, the baseline %s" % (sorted(map(sorted, swept)), sorted(map(sorted, naive))))
        sys.exit(1)
    ratio = naive_seconds / sweep_seconds
    print("  ratio baseline / sweep: %.0fx   target: sweep < 1 s and ratio >= 100x: %s"
          % (ratio, "MET" if sweep_seconds < 1.0 and ratio >= 100 else "NOT MET"))


if __name__ == "__main__":
    main()
