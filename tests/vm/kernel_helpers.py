"""Shared by the kernel_upgrade tests: a throw-away inventory, Node objects, playbook runs."""

from __future__ import annotations

import pathlib
import sys

import yaml
from kubernetes import client

# The runner every suite shares (tests/ is on sys.path, see tests/conftest.py).
from integration.site_helpers import Run, run_playbook

# kwok (tools/lab) manages only Nodes with this annotation: it keeps them Ready.
KWOK_ANNOTATION = {"kwok.x-k8s.io/node": "fake"}
# Nothing else in the shared lab schedules onto the test's Node.
TEST_TAINT = {"key": "multicloud.interconnect/kernel-test", "value": "true", "effect": "NoSchedule"}


def write_inventory(path: pathlib.Path, kubeconfig: str, nodes: dict, node_vars: dict | None = None) -> pathlib.Path:
    inventory = {"all": {"children": {
        "clusters": {"hosts": {"cluster01": {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "cluster_id": 1,
            "cluster_pod_cidrs": ["10.244.0.0/16"],
            "cluster_service_cidrs": ["10.96.0.0/16"],
            "cluster_network_group": "net-a",
            "cluster_cni": "cilium",
            "cluster_kubeconfig": kubeconfig,
        }}},
        "cluster01_nodes": {"hosts": nodes, "vars": node_vars or {}},
    }}}
    path.mkdir(parents=True, exist_ok=True)
    (path / "hosts.yml").write_text(yaml.safe_dump(inventory, sort_keys=False))
    return path


def playbook(inventory: pathlib.Path, *extra: str, timeout: int = 1800) -> Run:
    """playbooks/kernel_upgrade.yml on ``inventory``, not asserted: each test judges its exit code."""
    return run_playbook("playbooks/kernel_upgrade.yml", *extra, inventories=(inventory,),
                        env={"ANSIBLE_HOST_KEY_CHECKING": "False"}, timeout=timeout, expect=None)


def flat(output: str) -> str:
    """The output with every run of whitespace as one space: the YAML callback folds long messages."""
    return " ".join(output.split())


def create_node(api_client, name: str, managed: bool = True) -> None:
    core = client.CoreV1Api(api_client)
    body = client.V1Node(
        metadata=client.V1ObjectMeta(name=name, annotations=KWOK_ANNOTATION if managed else {},
                                     labels={"kubernetes.io/hostname": name, "type": "kwok",
                                             "multicloud.interconnect/test": "kernel-upgrade"}),
        spec=client.V1NodeSpec(taints=[client.V1Taint(**TEST_TAINT)]))
    delete_node(api_client, name)
    core.create_node(body)


def delete_node(api_client, name: str) -> None:
    core = client.CoreV1Api(api_client)
    try:
        core.delete_node(name)
    except client.exceptions.ApiException as err:
        if err.status != 404:
            raise


def unschedulable(api_client, name: str) -> bool:
    return bool(client.CoreV1Api(api_client).read_node(name).spec.unschedulable)
