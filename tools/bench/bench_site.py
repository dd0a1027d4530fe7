#!/usr/bin/env python3
"""Benchmark: site.yml from nothing and the no-op re-run on 2, 3 and 4 clusters.

Each size runs on a lab of its own (its own network namespace, address block and state
directory, brought up fresh, so "from nothing" means empty clusters), leaving the shared lab of
`make lab-up` alone. Prints wall time per run, the changed count, and the peak resident memory
of the Ansible controller (the largest process of the run: ansible-playbook and its workers).

Topologies: 2 = net-a (cluster01, cluster02, Cilium); 3 = net-a + net-b with cluster03 (Kosmos);
4 = the demo topology. Environment: BENCH_SIZES (default "2 3 4").
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
LAB_PY = REPO / "tools" / "lab" / "lab.py"
PLAYBOOK = pathlib.Path(sys.executable).parent / "ansible-playbook"
STATE = pathlib.Path.home() / ".cache" / "multicloud-interconnect" / "bench-lab-state"
LAB_ENV = {"LAB_NETNS": "mci-labb", "LAB_NET_PREFIX": "172.28", "LAB_STATE_DIR": str(STATE)}


def lab(*args):
    subprocess.run([sys.executable, str(LAB_PY), *args], env=dict(os.environ, **LAB_ENV), check=True,
                   capture_output=True, text=True, timeout=3600)


def inventory_for(size, workdir):
    """The demo inventory cut to ``size`` clusters, with the lab's group_vars."""
    full = yaml.safe_load((REPO / "inventories/lab/hosts.yml").read_text())
    hosts = full["all"]["children"]["clusters"]["hosts"]
    names = sorted(hosts)[:size]
    for name in list(hosts):
        if name not in names:
            del hosts[name]
    groups = sorted({hosts[n]["cluster_network_group"] for n in names})
    full["all"].setdefault("vars", {})["interconnect_groups"] = groups
    for name in names:  # the node block of this lab instance
        hosts[name]["cluster_node_cidrs"] = ["%s.%d.0/24" % (LAB_ENV["LAB_NET_PREFIX"], int(name[-2:]))]
    target = workdir / ("size%d" % size)
    target.mkdir()
    (target / "hosts.yml").write_text(yaml.safe_dump(full))
    (target / "group_vars").symlink_to(REPO / "inventories/lab/group_vars")
    return target


# Runs one command and prints the largest resident set of it and its descendants: a fresh
# high-water mark per run, which the benchmark's own process could not give twice.
_PEAK = ("import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
         "sys.stderr.write('PEAK_KIB=%d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
         "sys.exit(code)")


def site(inventory, out, name_changes=False):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1", **LAB_ENV)
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", _PEAK, str(PLAYBOOK), "-i", str(inventory),
                          str(REPO / "playbooks/site.yml"), "-e", "status_output_dir=%s" % out],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=3600, check=False)
    seconds = time.perf_counter() - started
    if run.returncode != 0:
        print(run.stdout[-4000:], run.stderr[-2000:])
        raise SystemExit("site.yml failed on %s" % inventory)
    changed = sum(int(n) for n in re.findall(r"^\S+\s+: ok=\d+\s+changed=(\d+)", run.stdout, re.M))
    # Name what changed, so a re-run that is not a no-op says where.
    task = None
    for line in run.stdout.splitlines():
        if line.startswith("TASK ["):
            task = line[6:].split("]")[0]
        elif line.startswith("changed: ") and name_changes:
            print("    changed: %s (%s)" % (task, line[9:].split(" ")[0]))
    peak_kib = int(re.search(r"PEAK_KIB=(\d+)", run.stderr).group(1))
    return seconds, changed, peak_kib / 1024


def main():
    sizes = [int(s) for s in os.environ.get("BENCH_SIZES", "2 3 4").split()]
    print("site.yml benchmark: a fresh lab per size (namespace %s)" % LAB_ENV["LAB_NETNS"])
    print("  clusters  from nothing        no-op re-run        controller peak RSS")
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="bench-site-"))
    try:
        for size in sizes:
            lab("down")
            lab("up", "--clusters", str(size))
            inventory = inventory_for(size, workdir)
            first, first_changed, _peak = site(inventory, workdir / "out")
            again, again_changed, peak = site(inventory, workdir / "out", name_changes=True)
            print("  %-8d  %6.1f s (changed=%-3d)  %6.1f s (changed=%d)  %6.0f MiB"
                  % (size, first, first_changed, again, again_changed, peak), flush=True)
    finally:
        lab("down")
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
