"""playbooks/cilium_mesh.yml on the lab's net-a (cluster01, cluster02), as a user runs it.

check -> apply -> check -> apply, then every cluster is read back through the API. The helpers
here are shared with test_cilium_mesh_changes.py.
"""

from __future__ import annotations

import base64
import pathlib
import subprocess

import pytest
from site_helpers import REPO, core, lab_dir, recap, run_playbook  # pylint: disable=import-error

INVENTORIES = REPO / "tests/integration/inventories"
LAB = [REPO / "inventories/lab", INVENTORIES / "cilium"]
RELEASE = "cilium"
NAMESPACE = "kube-system"


def playbook(name, inventories, *extra, timeout=900):
    """The run of playbooks/``name``, not asserted: each test judges its own exit code.

    MCI_LAB_DIR saves the cilium overlay's group_vars from running tools/lab/build.py at every use.
    """
    return run_playbook("playbooks/" + name, *extra, inventories=inventories, env={"MCI_LAB_DIR": lab_dir()},
                        timeout=timeout, expect=None)


def release_revisions(lab, cluster) -> list:
    """Helm's release Secrets of our release: one per revision, so any Helm call that changed something shows."""
    secrets = core(lab, cluster).list_namespaced_secret(NAMESPACE, label_selector="owner=helm,name=%s" % RELEASE)
    return sorted(s.metadata.name for s in secrets.items)


def mesh_state(lab, cluster) -> dict:
    from kubernetes.client.rest import ApiException
    api = core(lab, cluster)
    config = api.read_namespaced_config_map("cilium-config", NAMESPACE).data
    peers = sorted(k for k in (api.read_namespaced_secret("cilium-clustermesh", NAMESPACE).data or {}) if "." not in k)
    try:
        ca = base64.b64decode(api.read_namespaced_secret("cilium-ca", NAMESPACE).data["ca.crt"])
    except ApiException:
        ca = None
    service = api.read_namespaced_service("clustermesh-apiserver", NAMESPACE)
    return {"name": config.get("cluster-name"), "id": config.get("cluster-id"), "peers": peers, "ca": ca,
            "max": config.get("max-connected-clusters"), "service_type": service.spec.type,
            "node_port": service.spec.ports[0].node_port}


def helm_uninstall(lab, cluster):
    helm = pathlib.Path(lab_dir()) / "bin" / "helm"
    return subprocess.run([str(helm), "uninstall", RELEASE, "-n", NAMESPACE, "--kubeconfig",
                           lab.clusters[cluster].kubeconfig, "--ignore-not-found", "--wait"],
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def converged(lab):
    before = {c: release_revisions(lab, c) for c in ("cluster01", "cluster02")}
    check = playbook("cilium_mesh.yml", LAB, "--check", "--diff")
    after_check = {c: release_revisions(lab, c) for c in ("cluster01", "cluster02")}
    apply = playbook("cilium_mesh.yml", LAB)
    check_again = playbook("cilium_mesh.yml", LAB, "--check", "--diff")
    apply_again = playbook("cilium_mesh.yml", LAB)
    return {"before": before, "check": check, "after_check": after_check, "apply": apply,
            "check_again": check_again, "apply_again": apply_again,
            "state": {c: mesh_state(lab, c) for c in ("cluster01", "cluster02")}}


@pytest.mark.lab
def test_check_mode_shows_the_plan_and_changes_nothing(converged):
    run = converged["check"]
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert converged["after_check"] == converged["before"]
    if not converged["before"]["cluster01"]:  # from scratch the plan names the peer and its address
        assert '"name": "cluster02"' in run.stdout and '"port": 32002' in run.stdout
    # neither the CA key nor the long certificate shows (base64 PEM starts with LS0tLS1CRUdJTi)
    assert "LS0tLS1CRUdJTi" not in run.stdout + run.stderr and "BEGIN" not in run.stdout


@pytest.mark.lab
def test_apply_then_nothing_left_to_change(converged):
    assert converged["apply"].returncode == 0, converged["apply"].stdout[-6000:] + converged["apply"].stderr[-3000:]
    for name in ("check_again", "apply_again"):
        run = converged[name]
        assert run.returncode == 0, run.stdout[-6000:]
        counts = recap(run.stdout)
        for host in ("cluster01", "cluster02", "cluster03", "cluster04"):
            assert counts[host]["changed"] == 0, (name, host, run.stdout[-6000:])


@pytest.mark.lab
def test_every_cluster_lists_exactly_its_peers_with_one_ca(converged):
    state = converged["state"]
    assert (state["cluster01"]["name"], state["cluster01"]["id"]) == ("cluster01", "1")
    assert (state["cluster02"]["name"], state["cluster02"]["id"]) == ("cluster02", "2")
    assert state["cluster01"]["peers"] == ["cluster02"]
    assert state["cluster02"]["peers"] == ["cluster01"]
    assert state["cluster01"]["ca"] and state["cluster01"]["ca"] == state["cluster02"]["ca"]
    assert state["cluster01"]["max"] == state["cluster02"]["max"] == "255"
    assert (state["cluster01"]["node_port"], state["cluster02"]["node_port"]) == (32001, 32002)
    assert "cluster02" in converged["apply_again"].stdout and "(MISMATCH)" not in converged["apply_again"].stdout
