"""Filters of the kosmos role: the plan from hostvars, CRDs from a manifest source, probe planning."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.multicloud.interconnect.plugins.filter import kosmos as filters

CRD = """---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  creationTimestamp: null
  name: %s
spec: {group: kosmos.io}
status:
  acceptedNames: {kind: "", plural: ""}
"""


def test_plan_reads_contract_and_kosmos_variables_from_hostvars():
    hostvars = {
        "cluster03": {"cluster_network_group": "net-b", "cluster_cni": "kosmos", "cluster_pod_cidrs": ["10.244.0.0/16"],
                      "kosmos_network_type": "p2p", "unrelated": 1},
        "cluster04": {"cluster_network_group": "net-b", "cluster_cni": "kosmos", "cluster_pod_cidrs": ["10.245.0.0/16"],
                      "kosmos_network_type": "p2p", "cluster_global_cidrs": {"10.245.0.0/16": "10.145.0.0/16"}},
    }
    plan = filters.kosmos_plan(hostvars, ["cluster03", "cluster04"], {"kosmos_network_type": "gateway"})
    assert plan["ok"]
    members = plan["groups"]["net-b"]["members"]
    assert [m["cluster_link_options"]["networkType"] for m in members] == ["p2p", "p2p"]
    assert members[1]["cluster_link_options"]["globalCIDRsMap"] == {"10.245.0.0/16": "10.145.0.0/16"}
    assert "globalCIDRsMap" not in members[0]["cluster_link_options"]


def test_plan_message_lists_every_error():
    hostvars = {"a": {"cluster_network_group": "g", "cluster_cni": "kosmos", "kosmos_network_type": "p2p"},
                "b": {"cluster_network_group": "g", "cluster_cni": "kosmos", "kosmos_network_type": "gateway"}}
    plan = filters.kosmos_plan(hostvars, ["a", "b"], {})
    message = filters.kosmos_plan_message(plan)
    assert "KOSMOS_GROUP_SETTING_MISMATCH [group g: a, b]" in message and "nothing was changed" in message
    assert "field: kosmos_network_type; fix: " in message


def test_crds_are_picked_from_file_texts_and_cleaned():
    texts = [CRD % "clusters.kosmos.io" + CRD % "serviceexports.multicluster.x-k8s.io",
             CRD % "nodeconfigs.kosmos.io", CRD % "clusternodes.kosmos.io",
             "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: clusterlink-network-manager}\n"]
    crds = filters.kosmos_crds(texts)
    assert [c["metadata"]["name"] for c in crds] == ["clusters.kosmos.io", "clusternodes.kosmos.io",
                                                     "nodeconfigs.kosmos.io"]
    assert all("status" not in c and "creationTimestamp" not in c["metadata"] for c in crds)


def test_missing_crds_are_named():
    with pytest.raises(AnsibleFilterError, match="nodeconfigs.kosmos.io"):
        filters.kosmos_crds([CRD % "clusters.kosmos.io", CRD % "clusternodes.kosmos.io"])
    with pytest.raises(AnsibleFilterError, match="not YAML"):
        filters.kosmos_crds(["a: [b"])


def test_probe_pods_and_targets():
    listing = [{"item": {"name": "a"}, "resources": [
        {"metadata": {"name": "floater-x", "namespace": "kosmos-system"}, "spec": {"nodeName": "a1"},
         "status": {"phase": "Running"}},
        {"metadata": {"name": "floater-host-x", "namespace": "kosmos-system"},
         "spec": {"nodeName": "a1", "hostNetwork": True}, "status": {"phase": "Running"}},
        {"metadata": {"name": "pending", "namespace": "kosmos-system"}, "spec": {"nodeName": "a2"},
         "status": {"phase": "Pending"}},
    ]}]
    probe_pods = filters.kosmos_probe_pods(listing)
    assert probe_pods == {"a": {"pod": {"a1": {"name": "floater-x", "namespace": "kosmos-system"}},
                                "host": {"a1": {"name": "floater-host-x", "namespace": "kosmos-system"}}}}
    pairs = [{"src_cluster": "a", "dst_cluster": "b", "src_node": "a1", "dst_node": "b1",
              "host_target": "172.30.4.11", "pod_target": "10.245.1.5"},
             {"src_cluster": "a", "dst_cluster": "b", "src_node": "a2", "dst_node": "b1",
              "host_target": "172.30.4.11", "pod_target": "10.245.1.5"}]
    probes = filters.kosmos_probe_targets(pairs, probe_pods, [{"name": "a", "kubeconfig": "/k/a.yaml"}])
    assert [(p["kind"], p["pod"], p["target"], p["kubeconfig"]) for p in probes] == [
        ("pod", "floater-x", "10.245.1.5", "/k/a.yaml"), ("host", "floater-host-x", "172.30.4.11", "/k/a.yaml")]
    # a2 has no running probe Pod: its probes count as failed, not as passed
    matrix = filters.kosmos_data_plane(pairs, [{"item": probes[0], "rc": 0}, {"item": probes[1], "rc": 1}])
    assert matrix["a"]["b"].startswith("FAIL 1/4")
    assert filters.kosmos_data_plane(pairs)["a"]["b"].startswith("not run")


def test_diagnosis_text_has_both_matrices():
    diagnosis = {"group": "net-b", "host": "a", "network_type": "p2p",
                 "readback": {"ok": True, "clusters": {}, "stale": []},
                 "control_plane": {"a": {"a": "-", "b": "ok"}, "b": {"a": "ok", "b": "-"}},
                 "data_plane": {"a": {"b": "not run (6 probes; the data plane needs real clusters)"}}}
    text = "\n".join(filters.kosmos_diagnosis_text(diagnosis))
    assert "Control plane" in text and "Data plane" in text and "needs real clusters" in text
