"""Faults on the lab: a cluster whose API server is stopped.

1. Before any write, the preflight names the cluster that cannot be used and the run changes nothing.
2. A cluster that dies after the checks, as a changing operation starts, is named in the error: the
   mesh lease is that operation's first call to every cluster, and it reads every cluster before it
   writes any, so the run stops there with nothing written; after the cluster returns, a re-run
   converges without duplicates or leftovers.
"""

from __future__ import annotations

import pytest
import yaml
from kubernetes import client
from site_helpers import recap, run_playbook  # pylint: disable=import-error

VICTIM = "cluster02"

pytestmark = pytest.mark.lab


def kube_system_snapshot(lab, names):
    """Resource versions of every Service and Secret in kube-system: any write changes one."""
    snapshot = {}
    for name in names:
        core = client.CoreV1Api(lab.clusters[name].api_client())
        snapshot[name] = sorted(
            (kind, item.metadata.name, item.metadata.resource_version)
            for kind, items in (("service", core.list_namespaced_service("kube-system").items),
                                ("secret", core.list_namespaced_secret("kube-system").items))
            for item in items)
    return snapshot


@pytest.fixture()
def victim_down(lab):
    lab.run("stop-apiserver", VICTIM)
    try:
        yield VICTIM
    finally:
        lab.run("start-apiserver", VICTIM)
        lab.run("up")


def test_preflight_stops_before_any_write_naming_the_dead_cluster(lab, victim_down):
    others = [name for name in lab.clusters if name != victim_down]
    before = kube_system_snapshot(lab, others)
    run = run_playbook("playbooks/site.yml", timeout=1200, expect=None)
    output = run.output
    assert run.returncode != 0, output
    assert "Stopped before any change" in output
    assert "cluster %s" % victim_down in output
    for name in others:
        assert "cluster %s:" % name not in output  # only the dead cluster is blamed
    assert kube_system_snapshot(lab, others) == before  # not one Service or Secret written anywhere


def test_cluster_dying_mid_run_is_named_and_a_rerun_converges(lab, tmp_path):
    kubeconfig = tmp_path / "merged.yaml"
    extra = ("-e", "apiserver_nodeport_kubeconfig_path=%s" % kubeconfig)
    others = [name for name in lab.clusters if name != VICTIM]
    before = kube_system_snapshot(lab, others)
    lab.run("stop-apiserver", VICTIM)
    try:
        # No preflight here: this is the cluster failing after the checks, as the writes begin.
        run = run_playbook("playbooks/apiserver_expose.yml", *extra, timeout=1200, expect=None)
    finally:
        lab.run("start-apiserver", VICTIM)
        lab.run("up")
    assert run.returncode != 0
    assert "cluster %s:" % VICTIM in run.output
    result = recap(run.output)
    # Stopped at the lease, on the controller, before any stage ran on a cluster host.
    assert result["localhost"]["failed"] == 1 and VICTIM not in result, result
    assert kube_system_snapshot(lab, others) == before  # no Service or Secret written anywhere

    run_playbook("playbooks/apiserver_expose.yml", *extra, timeout=1200)
    output = run_playbook("playbooks/apiserver_expose.yml", *extra, timeout=1200).output
    assert all(r["changed"] == 0 for r in recap(output).values()), recap(output)

    config = yaml.safe_load(kubeconfig.read_text())
    names = sorted(c["name"] for c in config["contexts"])
    assert len(names) == len(set(names)), "duplicate contexts"
    assert set(lab.clusters) <= set(names)
    for name in lab.clusters:
        services = client.CoreV1Api(lab.clusters[name].api_client()).list_namespaced_service(
            "kube-system", label_selector="app.kubernetes.io/managed-by=multicloud.interconnect").items
        assert len(services) == 1, (name, [s.metadata.name for s in services])
