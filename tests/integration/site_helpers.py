"""The one place the integration suites run ansible-playbook as a user does and read its PLAY RECAP.

Every suite imports these instead of keeping its own copy, so the environment a playbook sees
(the repository's ansible.cfg, no colour codes in the output that the assertions read) and the
parsing of the recap are the same everywhere. Lab-specific lookups (``lab_dir``, ``lab_charts``)
live here too because more than one suite needs them.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(sys.executable).parent
# The counters ansible-playbook prints per host in its PLAY RECAP, in the order it prints them.
RECAP_COUNTERS = ("ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored")


@dataclasses.dataclass(frozen=True)
class Run:
    """What one ansible run left: its exit code and both streams."""

    args: tuple
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout then stderr, what a user sees on a terminal (errors and warnings go to stderr)."""
        return self.stdout + self.stderr


def ansible_env(extra=None) -> dict:
    """The caller's environment with the repository's ansible.cfg and plain-text output.

    A value of None in ``extra`` removes that variable, for runs that must not inherit it.
    """
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    for name, value in (extra or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = str(value)
    return env


def run_ansible(tool, *args, inventories=(), env=None, timeout=900, expect=0) -> Run:
    """``tool`` (ansible, ansible-playbook, ...) from this virtualenv, run from the repository.

    ``inventories`` are paths relative to the repository or absolute, each passed with ``-i``.
    With ``expect`` set, the exit code must be that one; the tail of the output says why not.
    """
    command = [str(BIN / tool)]
    for inventory in inventories:
        command += ["-i", str(REPO / inventory)]  # an absolute path replaces REPO
    command += [str(arg) for arg in args]
    done = subprocess.run(command, cwd=REPO, env=ansible_env(env), capture_output=True, text=True, timeout=timeout,
                          check=False)
    run = Run(tuple(command), done.returncode, done.stdout, done.stderr)
    if expect is not None:
        assert run.returncode == expect, run.stdout[-6000:] + run.stderr[-3000:]
    return run


def run_playbook(playbook, *args, inventories=("inventories/lab",), env=None, timeout=900, expect=0) -> Run:
    """ansible-playbook ``playbook`` (relative to the repository or absolute) with ``args`` after it."""
    return run_ansible("ansible-playbook", REPO / playbook, *args, inventories=inventories, env=env, timeout=timeout,
                       expect=expect)


def run_site(out_dir, *extra, inventories=("inventories/lab",), playbook="playbooks/site.yml", expect=0):
    """stdout of ``playbook`` (site.yml unless told) writing its status report into ``out_dir``."""
    return run_playbook(playbook, "-e", "status_output_dir=%s" % out_dir, *extra, inventories=inventories,
                        timeout=1800, expect=expect).stdout


def run_molecule(command, *args, scenario="default", env=None, timeout=1800, expect=0) -> Run:
    """``molecule <command> -s <scenario>`` from the repository (the lab scenarios under molecule/).

    Molecule finds ansible-playbook on PATH, so this virtualenv's comes first; its output is kept
    plain (no colour, no re-flowed lines) for the assertions that read it.
    """
    extra = {"PATH": "%s%s%s" % (BIN, os.pathsep, os.environ.get("PATH", "")), "NO_COLOR": "1", "COLUMNS": "400"}
    extra.update(env or {})
    command_line = [str(BIN / "molecule"), command, "-s", scenario] + [str(arg) for arg in args]
    done = subprocess.run(command_line, cwd=REPO, env=ansible_env(extra), capture_output=True, text=True,
                          timeout=timeout, check=False)
    run = Run(tuple(command_line), done.returncode, done.stdout, done.stderr)
    if expect is not None:
        assert run.returncode == expect, run.stdout[-6000:] + run.stderr[-3000:]
    return run


def recap(output) -> dict:
    """``{host: {ok, changed, unreachable, failed, skipped, rescued, ignored}}`` from the PLAY RECAP.

    Only the text after the last "PLAY RECAP" header is read, so a task's output that happens to look
    like a recap line is never counted; no recap (the run stopped before any play) gives {}.
    """
    start = output.rfind("PLAY RECAP")
    if start < 0:
        return {}
    found = {}
    for host, counters in re.findall(r"^(\S+)\s+:\s+(ok=\d+.*)$", output[start:], re.M):
        counts = {name: int(value) for name, value in re.findall(r"(\w+)=(\d+)", counters)}
        found[host] = {name: counts.get(name, 0) for name in RECAP_COUNTERS}
    return found


def changed(output) -> dict:
    """``{host: changed count}`` from the PLAY RECAP."""
    return {host: counts["changed"] for host, counts in recap(output).items()}


def core(lab, cluster):
    """The core API of one of the lab's clusters."""
    from kubernetes import client  # pylint: disable=import-outside-toplevel  # a lab-only dependency
    return client.CoreV1Api(lab.clusters[cluster].api_client())


# The lab with the interconnect suites' groups (net-a: cluster01, 02; net-b: 03, 04), and with
# cluster04 moved to net-c.
INTERCONNECT_LAB = (REPO / "inventories/lab", REPO / "tests/integration/inventories/interconnect")
INTERCONNECT_NET_C = INTERCONNECT_LAB + (REPO / "tests/integration/inventories/interconnect-net-c",)


def interconnect_playbook(name, *args, inventory=INTERCONNECT_LAB, expect=0, tmp=None) -> str:
    """Output of playbooks/``name``, which must exit with ``expect``.

    With ``tmp``, the merged kubeconfig is written there rather than in the user's ~/.kube.
    """
    extra = ("-e", "apiserver_kubeconfig_path=%s" % (tmp / "kubeconfig")) if tmp else ()
    return run_playbook("playbooks/" + name, *extra, *args, inventories=inventory, expect=expect).output


def merged_lab_kubeconfig(lab) -> dict:
    """One kubeconfig with a context per lab cluster, as the AWX credential of awx/credential_type.yml
    carries it; its current context is cluster04, so a cluster that names no context would show it."""
    import yaml  # pylint: disable=import-outside-toplevel

    merged = {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": []}
    for name, cluster in lab.clusters.items():
        config = yaml.safe_load(pathlib.Path(cluster.kubeconfig).read_text())
        merged["clusters"].append({"name": name, "cluster": config["clusters"][0]["cluster"]})
        merged["users"].append({"name": name, "user": config["users"][0]["user"]})
        merged["contexts"].append({"name": name, "context": {"cluster": name, "user": name}})
    merged["current-context"] = "cluster04"
    return merged


def lab_dir() -> str:
    """The lab's build directory (its tools and charts), as tools/lab/build.py names it."""
    return subprocess.run([sys.executable, str(REPO / "tools/lab/build.py"), "--print-dir"], check=True,
                          capture_output=True, text=True).stdout.strip()


def lab_charts():
    """The Istio charts the lab exported, or LAB_ISTIO_CHARTS; None when there are none."""
    explicit = os.environ.get("LAB_ISTIO_CHARTS")
    if explicit:
        return pathlib.Path(explicit)
    found = sorted(pathlib.Path.home().glob(".cache/multicloud-interconnect/lab/*/charts/istiod/Chart.yaml"))
    return found[0].parent.parent if found else None
