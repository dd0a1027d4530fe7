#!/usr/bin/env python3
"""Benchmark: site.yml on 2, 4 and 8 clusters: from nothing, the no-op re-run, and --check --diff.

Each size runs on the lab of `make lab-up`, recreated with that many clusters (one lab at a time,
its own network namespace), so "from nothing" means empty clusters. Prints per run: wall time,
changed count, module runs per cluster (task results that run a module, whether inside the task's
worker, as this collection's modules do on a local connection, or in a process of their own; set_fact,
assert, debug and includes do not count), steps per cluster (every task result, skipped ones
included: each costs the controller a worker for the host), and the controller's peak
memory (the resident sets of ansible-playbook and all its workers, summed, sampled every 0.2 s).
The idle lab's own load is measured first (its control planes share the two cores); before the
first run and before the no-op re-run the bench waits until the machine is back at that load for
15 s (the lab's start-up, then the Pods the first run started, such as istiod and the
clustermesh-apiserver, have finished) and prints how long that took. The no-op and the check run
each run twice and the faster is printed (they change nothing, so the second is the same run).

Beside each run: the controller's CPU (user + system of ansible-playbook and its workers) and the
lab's (what the whole machine was busy for meanwhile, less the controller's): the lab's control
planes share the controller's two cores, and an 8-cluster lab keeps more of them busy than a
4-cluster one. After the no-op of each size, "Ansible floor" runs a playbook of as many steps per
cluster as that no-op took, each a set_fact that does nothing else, on the same inventory: what
Ansible itself costs for that many steps, the part no change to the roles' work can take off.
Ends with t(8)/t(4) of the no-op run, of its controller CPU and of the floor, and leaves the lab
down.

Topologies: the lab's clusters in pairs, one network group per pair (cluster01+02 net-a with
Cilium, 03+04 net-b with Kosmos, 05+06 net-c with Cilium, 07+08 net-d with Kosmos), all groups
connected by Istio east-west gateways; 4 clusters is the demo topology. BENCH_SIZES overrides
"2 4 8".
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
LAB_PY = REPO / "tools" / "lab" / "lab.py"
PLAYBOOK = pathlib.Path(sys.executable).parent / "ansible-playbook"
GROUPS = ("net-a", "net-b", "net-c", "net-d")


def lab(*args):
    subprocess.run([sys.executable, str(LAB_PY), *args], check=True, capture_output=True, text=True, timeout=3600)


def inventory_for(size, workdir):
    """``size`` lab clusters in pairs (one group per pair, Cilium and Kosmos in turn), with the lab's group_vars."""
    lab_env = json.loads(subprocess.run([sys.executable, str(LAB_PY), "env"], check=True, capture_output=True,
                                        text=True).stdout)
    hosts = {}
    for index, cluster in enumerate(lab_env["clusters"][:size]):
        group = GROUPS[index // 2]
        hosts[cluster["name"]] = {
            "cluster_id": index + 1, "cluster_pod_cidrs": [cluster["pod_cidr"]],
            "cluster_service_cidrs": [cluster["service_cidr"]],
            "cluster_node_cidrs": ["%s.0/24" % cluster["apiserver_ip"].rsplit(".", 1)[0]],
            "cluster_network_group": group, "cluster_cni": "cilium" if GROUPS.index(group) % 2 == 0 else "kosmos"}
    groups = sorted({h["cluster_network_group"] for h in hosts.values()})
    inventory = {"all": {"children": {"clusters": {"hosts": hosts}},
                         "vars": {"interconnect_groups": groups}}}
    target = workdir / ("size%d" % size)
    target.mkdir()
    (target / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (target / "group_vars").symlink_to(REPO / "inventories/lab/group_vars")
    return target


def tree_rss_kib(root_pid):
    """Resident memory of ``root_pid`` and every descendant, in KiB."""
    children, rss = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, encoding="utf-8") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            with open("/proc/%s/statm" % entry, encoding="utf-8") as handle:
                rss[int(entry)] = int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total


def cpu_ticks():
    """(all, idle + iowait) clock ticks of the whole machine since boot, summed over its cores (/proc/stat)."""
    with open("/proc/stat", encoding="utf-8") as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    return sum(fields), fields[3] + fields[4]


def busy_cores(seconds=5.0):
    """Cores busy on the whole machine over ``seconds``: the lab's own load when nothing else runs."""
    total0, idle0 = cpu_ticks()
    time.sleep(seconds)
    total1, idle1 = cpu_ticks()
    return (os.cpu_count() or 1) * (1 - (idle1 - idle0) / max(total1 - total0, 1))


def settle(baseline, limit=240.0, margin=0.25, windows=3):
    """Wait until the machine has been back at the idle lab's load (``baseline`` cores + ``margin``) for
    ``windows`` windows of 5 s in a row, at most ``limit`` s: a run measures the controller, not the
    start-up of the lab or of the Pods the first run started (istiod, the clustermesh-apiserver).
    Returns (seconds waited, busy cores at the end)."""
    started, quiet, busy = time.monotonic(), 0, 0.0
    while quiet < windows and time.monotonic() - started < limit:
        busy = busy_cores()
        quiet = quiet + 1 if busy <= baseline + margin else 0
    return time.monotonic() - started, busy


def machine_busy_seconds():
    """CPU seconds the whole machine has been busy since boot, all cores together."""
    total, idle = cpu_ticks()
    return (total - idle) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Run:  # pylint: disable=too-few-public-methods
    """One ansible-playbook run: wall seconds, its output, controller and lab CPU seconds, peak controller MiB."""

    def __init__(self, command, env):
        busy0, cpu0 = machine_busy_seconds(), children_cpu_seconds()
        started = time.perf_counter()
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        peak = [0]

        def sample():
            while proc.poll() is None:
                peak[0] = max(peak[0], tree_rss_kib(proc.pid))
                time.sleep(0.2)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        self.output, _ = proc.communicate(timeout=3600)
        self.seconds = time.perf_counter() - started
        sampler.join()
        # ansible-playbook reaps its workers, so their CPU is in its own children's times, which are in ours.
        self.controller_cpu = children_cpu_seconds() - cpu0
        self.lab_cpu = max(machine_busy_seconds() - busy0 - self.controller_cpu, 0.0)
        self.peak_mib = peak[0] / 1024
        self.returncode = proc.returncode


def site(inventory, out, *extra):
    """(seconds, changed, module runs per cluster, steps per cluster, peak controller MiB, controller CPU s,
    lab CPU s) of one site.yml run."""
    calls_file = out.parent / "calls.json"
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               # the bench's counter beside the callbacks ansible.cfg enables (the variable replaces them)
               ANSIBLE_CALLBACK_PLUGINS=str(REPO / "tools/bench/callback"),
               ANSIBLE_CALLBACKS_ENABLED="module_calls,multicloud.interconnect.preload",
               MODULE_CALLS_FILE=str(calls_file))
    run = Run([str(PLAYBOOK), "-i", str(inventory), str(REPO / "playbooks/site.yml"),
               "-e", "status_output_dir=%s" % out, *extra], env)
    if run.returncode != 0:
        print(run.output[-4000:])
        raise SystemExit("site.yml %s failed on %s" % (" ".join(extra), inventory))
    changed = sum(int(n) for n in re.findall(r"^\S+\s+: ok=\d+\s+changed=(\d+)", run.output, re.M))
    counted = json.loads(calls_file.read_text(encoding="utf-8"))
    clusters = max(len([h for h in counted["steps"] if h != "localhost"]), 1)
    return (run.seconds, changed, sum(counted["modules"].values()) / clusters,
            sum(counted["steps"].values()) / clusters, run.peak_mib, run.controller_cpu, run.lab_cpu)


def floor(inventory, steps, workdir):
    """(seconds, controller CPU s, lab CPU s) of ``steps`` set_fact steps on every cluster of ``inventory``."""
    playbook = workdir / ("floor-%d.yml" % steps)
    playbook.write_text(yaml.safe_dump([{
        "name": "As many steps per cluster as the no-op run, each doing nothing else", "hosts": "clusters",
        "gather_facts": False,
        "tasks": [{"name": "Step %d" % n,
                   "ansible.builtin.set_fact": {"bench_floor_%d" % n: "{{ inventory_hostname }}"}}
                  for n in range(steps)]}]))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    run = Run([str(PLAYBOOK), "-i", str(inventory), str(playbook)], env)
    if run.returncode != 0:
        print(run.output[-4000:])
        raise SystemExit("the floor playbook failed on %s" % inventory)
    return run.seconds, run.controller_cpu, run.lab_cpu


def main():
    sizes = [int(s) for s in os.environ.get("BENCH_SIZES", "2 4 8").split()]
    print("site.yml benchmark: the lab recreated per size; module runs and steps per cluster count the controller's "
          "share too")
    print("  clusters  run             wall      changed  module runs/cluster  steps/cluster  controller peak"
          "  controller CPU  lab CPU")
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="bench-site-"))
    noop, noop_cpu, floors = {}, {}, {}
    try:
        for size in sizes:
            lab("down")
            lab("up", "--clusters", str(size))
            inventory = inventory_for(size, workdir)
            time.sleep(30)
            baseline = min(busy_cores() for _ in range(3))
            for name, extra in (("from nothing", ()), ("no-op re-run", ()), ("--check --diff", ("--check", "--diff"))):
                if name != "--check --diff":
                    waited, busy = settle(baseline)
                    print("  %-8d  (quiet after %.0f s: %.2f cores busy, the idle lab %.2f)"
                          % (size, waited, busy, baseline), flush=True)
                runs = [site(inventory, workdir / "out", *extra) for _ in range(1 if name == "from nothing" else 2)]
                seconds, changed, calls, steps, peak, controller_cpu, lab_cpu = min(runs)
                print("  %-8d  %-14s  %6.1f s  %7d  %19.1f  %13.1f  %11.0f MiB  %12.1f s  %5.1f s"
                      % (size, name, seconds, changed, calls, steps, peak, controller_cpu, lab_cpu), flush=True)
                if name == "no-op re-run":
                    noop[size], noop_cpu[size] = seconds, controller_cpu
                    seconds, controller_cpu, lab_cpu = min(floor(inventory, round(steps), workdir) for _ in range(2))
                    floors[size] = seconds
                    print("  %-8d  %-14s  %6.1f s  %7s  %19s  %13d  %15s  %12.1f s  %5.1f s"
                          % (size, "Ansible floor", seconds, "-", "-", round(steps), "-", controller_cpu, lab_cpu),
                          flush=True)
        if 4 in noop and 8 in noop:
            print("  no-op t(8)/t(4) = %.2f; its controller CPU %.2f; the Ansible floor of as many steps %.2f"
                  % (noop[8] / noop[4], noop_cpu[8] / noop_cpu[4], floors[8] / floors[4]))
    finally:
        lab("down")
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
