"""Session fixture for the local multi-cluster lab (tools/lab/lab.py).

Import the fixture from a top-level conftest with
``from tests.lab.conftest import lab  # noqa: F401`` (or list this module in
``pytest_plugins``). The first use builds the binaries if needed and starts the lab through
the same entry point as ``make lab-up``; later test runs reuse a running lab.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAB_PY = REPO / "tools" / "lab" / "lab.py"


def pytest_configure(config):
    config.addinivalue_line("markers", "lab: needs the local multi-cluster lab (root, network namespace)")


@dataclass
class Cluster:
    name: str
    index: int
    kubeconfig: str
    ca_file: str
    apiserver_ip: str
    pod_cidr: str
    service_cidr: str
    network_group: str
    nodes: list[dict] = field(default_factory=list)

    @property
    def node_ips(self) -> list[str]:
        return [n["ip"] for n in self.nodes]

    @property
    def worker_ips(self) -> list[str]:
        return [n["ip"] for n in self.nodes if not n["control_plane"]]

    def api_client(self):
        from kubernetes import config
        return config.new_client_from_config(config_file=self.kubeconfig)


@dataclass
class Lab:
    state_dir: Path
    netns: str
    clusters: dict[str, Cluster]
    bin_dir: Path | None = None

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a lab.py command (up, down, status, stop-apiserver ...)."""
        return subprocess.run([sys.executable, str(LAB_PY), *args], check=check, text=True,
                              capture_output=True, timeout=900)

    def real_pods(self, cluster: str) -> list[dict]:
        """The Pods the lab runs for real in ``cluster``, as its pod runner reports them."""
        f = self.state_dir / cluster / "pods.json"
        return json.loads(f.read_text())["pods"] if f.exists() else []

    def real_pod(self, cluster: str, prefix: str, timeout: float = 180) -> dict:
        """The Pod ``<namespace>/<prefix>...`` once every one of its containers runs."""
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            for pod in self.real_pods(cluster):
                seen = pod if pod["pod"].startswith(prefix) else seen
                if pod["pod"].startswith(prefix) and pod["pause_pid"] and all(
                        c["state"] == "running" or (c["init"] and c["state"] == "completed") for c in pod["containers"]):
                    return pod
            time.sleep(1)
        raise AssertionError(f"{cluster}: no running Pod {prefix}* after {timeout:.0f}s; last seen: {seen}")

    def in_pod(self, cluster: str, prefix: str, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a lab binary in the network of a Pod the lab runs (what kubectl exec would reach)."""
        pod = self.real_pod(cluster, prefix)
        return subprocess.run(["nsenter", f"--net=/proc/{pod['pause_pid']}/ns/net", "--", *argv],
                              text=True, capture_output=True, timeout=timeout, check=False)

    def in_netns(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a command inside the lab's network namespace (it routes to the Pods the lab runs)."""
        return subprocess.run(["ip", "netns", "exec", self.netns, *argv], text=True, capture_output=True,
                              timeout=timeout, check=False)


def _describe() -> Lab:
    out = subprocess.run([sys.executable, str(LAB_PY), "env"], check=True, text=True, capture_output=True).stdout
    st = json.loads(out)
    clusters = {
        c["name"]: Cluster(name=c["name"], index=c["index"], kubeconfig=c["kubeconfig"], ca_file=c["ca_file"],
                           apiserver_ip=c["apiserver_ip"], pod_cidr=c["pod_cidr"], service_cidr=c["service_cidr"],
                           network_group=c["network_group"], nodes=c["nodes"])
        for c in st["clusters"]
    }
    return Lab(state_dir=Path(st["state_dir"]), netns=st.get("netns", "mci-lab"), clusters=clusters,
               bin_dir=Path(st["bin_dir"]) if st.get("bin_dir") else None)


@pytest.fixture(scope="session")
def lab(request) -> Lab:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (it creates a network namespace)")
    started = time.monotonic()
    p = subprocess.run([sys.executable, str(LAB_PY), "up"], text=True, capture_output=True, timeout=3600, check=False)
    # The first `up` of a session may build the lab: the time per suite (top-level conftest) shows it
    # apart. The suites import this fixture twice (top-level conftest and this one): the first counts.
    if getattr(request.config, "mci_lab_up", None) is None:
        request.config.mci_lab_up = time.monotonic() - started
    if p.returncode != 0:
        pytest.fail(f"lab up failed:\n{p.stdout[-4000:]}\n{p.stderr[-4000:]}")
    return _describe()
