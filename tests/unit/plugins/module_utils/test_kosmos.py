"""Kosmos ClusterLink planning: groups from the inventory, objects per side, comparison, read-back."""

from __future__ import annotations

import base64
import json

import pytest

from ansible_collections.multicloud.interconnect.plugins.module_utils import _kosmos as kosmos
from ansible_collections.multicloud.interconnect.plugins.module_utils._topology import topology_from_inventory

DEFAULTS = {
    "kosmos_network_type": "gateway",
    "kosmos_host_cluster": None,
    "kosmos_cni": "calico",
    "kosmos_default_nic": "*",
    "kosmos_ip_family": "auto",
    "kosmos_bridge_cidrs": {"ip": "220.0.0.0/8", "ip6": "9480::/16"},
    "kosmos_local_cidrs": {"ip": "210.0.0.0/8", "ip6": "9470::/16"},
}


def cluster(group="net-b", cni="kosmos", pods=("10.244.0.0/16",), **extra):
    values = {"cluster_network_group": group, "cluster_cni": cni, "cluster_pod_cidrs": list(pods),
              "cluster_service_cidrs": ["10.96.0.0/16"], "cluster_kubeconfig": "/k/%s.yaml" % group}
    values.update(extra)
    return values


def lab_net_b(**per_cluster):
    inventory = {
        "cluster01": cluster(group="net-a", cni="cilium"),
        "cluster03": cluster(),
        "cluster04": cluster(pods=("10.245.0.0/16",)),
    }
    for name, extra in per_cluster.items():
        inventory[name].update(extra)
    return inventory


ORDER = ("cluster01", "cluster03", "cluster04")


def plan_of(inventory, order=ORDER):
    """The plan of the model built from ``inventory`` with its hosts in ``order`` (the inventory's)."""
    return kosmos.plan_groups(topology_from_inventory({name: inventory[name] for name in order}), DEFAULTS)


def model(values):
    """The model of one cluster with these host variables."""
    return topology_from_inventory({"cluster04": values}).clusters["cluster04"]


def test_plan_picks_only_kosmos_groups_and_first_cluster_as_host():
    plan = plan_of(lab_net_b())
    assert plan["ok"], plan["errors"]
    assert list(plan["groups"]) == ["net-b"]
    group = plan["groups"]["net-b"]
    assert group["host"] == "cluster03" and group["network_type"] == "gateway"
    assert [m["name"] for m in group["members"]] == ["cluster03", "cluster04"]
    assert [m["root"] for m in group["members"]] == [True, False]
    assert plan["clusters"]["cluster04"] == {"name": "cluster04", "group": "net-b", "host": "cluster03",
                                             "host_inventory": "cluster03", "is_host": False}
    assert "cluster01" not in plan["clusters"]
    # every inventory cluster is reachable for unjoins, Kosmos or not
    assert set(plan["known_clusters"]) == {"cluster01", "cluster03", "cluster04"}


def test_host_follows_inventory_order_and_kosmos_host_cluster():
    plan = plan_of(lab_net_b(), ["cluster04", "cluster03"])
    assert plan["groups"]["net-b"]["host"] == "cluster04"
    plan = plan_of(lab_net_b(cluster03={"kosmos_host_cluster": "cluster04"},
                             cluster04={"kosmos_host_cluster": "cluster04"}))
    assert plan["ok"] and plan["groups"]["net-b"]["host"] == "cluster04"
    assert plan["clusters"]["cluster04"]["is_host"]


@pytest.mark.parametrize("extra, code, field", [
    ({"cluster03": {"kosmos_network_type": "p2p"}}, "KOSMOS_GROUP_SETTING_MISMATCH", "kosmos_network_type"),
    ({"cluster04": {"kosmos_host_cluster": "cluster04"}}, "KOSMOS_GROUP_SETTING_MISMATCH", "kosmos_host_cluster"),
    ({"cluster03": {"kosmos_network_type": "mesh"}, "cluster04": {"kosmos_network_type": "mesh"}},
     "KOSMOS_NETWORK_TYPE_INVALID", "kosmos_network_type"),
    ({"cluster03": {"kosmos_host_cluster": "cluster09"}, "cluster04": {"kosmos_host_cluster": "cluster09"}},
     "KOSMOS_HOST_NOT_IN_GROUP", "kosmos_host_cluster"),
    ({"cluster04": {"kosmos_ip_family": "ipv6"}}, "KOSMOS_IP_FAMILY_UNSUPPORTED", "kosmos_ip_family"),
    ({"cluster04": {"kosmos_ip_family": "both"}}, "KOSMOS_IP_FAMILY_INVALID", "kosmos_ip_family"),
    ({"cluster04": {"kosmos_bridge_cidrs": {"ip": "230.0.0.0/8", "ip6": "9480::/16"}}},
     "KOSMOS_GROUP_SETTING_MISMATCH", "kosmos_bridge_cidrs"),
])
def test_plan_refuses_inconsistent_groups(extra, code, field):
    plan = plan_of(lab_net_b(**extra))
    assert not plan["ok"]
    problem = next(p for p in plan["errors"] if p["code"] == code)
    assert problem["field"] == field
    assert problem["fix"]
    assert "nothing was changed" in kosmos.failure_message(plan["errors"])


def test_role_default_is_not_replaced_by_one_clusters_value():
    # cluster03 says p2p, cluster04 says nothing: it gets the role default (gateway), so they disagree.
    plan = plan_of(lab_net_b(cluster03={"kosmos_network_type": "p2p"}))
    problem = plan["errors"][0]
    assert problem["clusters"] == ["cluster03", "cluster04"]
    assert "gateway" in problem["message"] and "p2p" in problem["message"]


@pytest.mark.parametrize("pods, family", [
    (["10.244.0.0/16"], "ipv4"),
    (["fd00:10:244::/56"], "ipv6"),
    (["10.244.0.0/16", "fd00:10:244::/56"], "all"),
    ([], "ipv4"),
])
def test_ip_family_is_derived_from_pod_cidrs(pods, family):
    assert kosmos.derive_ip_family(pods) == family


def test_cluster_link_options_carry_inventory_settings():
    options = kosmos.cluster_link_options(model(
        cluster(cluster_global_cidrs={"10.245.0.0/16": "10.145.0.0/16"}, kosmos_network_type="p2p",
                kosmos_cni="flannel", kosmos_default_nic="eth1",
                kosmos_nic_node_names=[{"interface_name": "bond0", "node_names": ["n1"]}],
                kosmos_autodetection_method="can-reach=8.8.8.8")), DEFAULTS)
    assert options == {
        "enable": True, "cni": "flannel", "networkType": "p2p", "ipFamily": "ipv4", "useIPPool": False,
        "defaultNICName": "eth1",
        "bridgeCIDRs": {"ip": "220.0.0.0/8", "ip6": "9480::/16"},
        "localCIDRs": {"ip": "210.0.0.0/8", "ip6": "9470::/16"},
        "globalCIDRsMap": {"10.245.0.0/16": "10.145.0.0/16"},
        "nicNodeNames": [{"interfaceName": "bond0", "nodeName": ["n1"]}],
        "autodetectionMethod": "can-reach=8.8.8.8",
    }
    plain = kosmos.cluster_link_options(model(cluster()), DEFAULTS)
    assert "globalCIDRsMap" not in plain and "nicNodeNames" not in plain and plain["networkType"] == "gateway"


def test_kubeconfig_is_stable_and_token_based():
    first = kosmos.build_kubeconfig("cluster04", "https://172.30.4.10:6443", b"CA", "tok")
    assert first == kosmos.build_kubeconfig("cluster04", "https://172.30.4.10:6443", b"CA", "tok")
    config = json.loads(first)
    assert config["users"][0]["user"] == {"token": "tok"}
    assert config["clusters"][0]["cluster"]["certificate-authority-data"] == base64.b64encode(b"CA").decode()
    assert config["current-context"] == "cluster04"
    with pytest.raises(kosmos.KosmosError, match="cluster04"):
        kosmos.build_kubeconfig("cluster04", "", b"", "tok")


def test_member_objects_match_what_a_join_creates():
    labels = kosmos.managed_labels("net-b", "cluster03")
    member = {(o["kind"], o["metadata"]["name"]) for o in kosmos.member_objects("kosmos-system", labels, False)}
    assert member == {("Namespace", "kosmos-system"), ("ServiceAccount", "kosmos-control"),
                      ("ServiceAccount", "clusterlink-operator"), ("ClusterRole", "kosmos"),
                      ("ClusterRoleBinding", "kosmos"), ("Secret", "kosmos-control-token")}
    host = {(o["kind"], o["metadata"]["name"]) for o in kosmos.member_objects("kosmos-system", labels, True)}
    assert ("Namespace", "kosmos-system") not in host and len(host) == 5


def member(name="cluster04", root=False, **options):
    link = kosmos.cluster_link_options(model(cluster()), DEFAULTS)
    link.update(options)
    return {"name": name, "root": root, "cluster_link_options": link}


def test_cluster_object_fields():
    obj = kosmos.cluster_object(member("cluster03", root=True), "kosmos-system", "ghcr.io/kosmos-io",
                                kosmos.managed_labels("net-b", "cluster03"), b"KUBECONFIG")
    assert obj["apiVersion"] == "kosmos.io/v1alpha1" and obj["kind"] == "Cluster"
    assert obj["metadata"]["annotations"] == {"kosmos.io/cluster-role": "root"}
    assert obj["metadata"]["labels"][kosmos.HOST_LABEL] == "cluster03"
    assert base64.b64decode(obj["spec"]["kubeconfig"]) == b"KUBECONFIG"
    assert obj["spec"]["clusterLinkOptions"]["enable"] is True
    assert obj["spec"]["clusterTreeOptions"] == {"enable": False}
    assert "annotations" not in kosmos.cluster_object(member(), "kosmos-system", "r", {}, b"k")["metadata"]


def observed_from(desired, **spec_changes):
    observed = json.loads(json.dumps(desired))
    observed["metadata"].update(resourceVersion="7", finalizers=["kosmos.io/operator-controller"])
    observed["metadata"]["labels"]["extra"] = "kept"
    observed["status"] = {"clusterLinkStatus": {"podCIDRs": ["10.245.0.0/16"]}}
    observed["spec"]["clusterLinkOptions"].update(spec_changes)
    return observed


def test_object_changes_ignores_server_and_controller_fields():
    desired = kosmos.cluster_object(member(), "kosmos-system", "r", kosmos.managed_labels("net-b", "cluster03"), b"k")
    assert kosmos.object_changes(desired, observed_from(desired)) == []
    assert kosmos.object_changes(desired, None) == ["(create)"]
    terminating = observed_from(desired)
    terminating["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert kosmos.object_changes(desired, terminating) == ["(create)"]


def test_object_changes_finds_mode_switch_and_removed_global_map():
    desired = kosmos.cluster_object(member(), "kosmos-system", "r", {}, b"k")
    observed = observed_from(desired, networkType="p2p", globalCIDRsMap={"10.245.0.0/16": "10.145.0.0/16"})
    assert kosmos.object_changes(desired, observed) == ["spec.clusterLinkOptions.globalCIDRsMap",
                                                        "spec.clusterLinkOptions.networkType"]
    merged = kosmos.merged_for_replace(desired, observed)
    assert merged["spec"]["clusterLinkOptions"]["networkType"] == "gateway"
    assert "globalCIDRsMap" not in merged["spec"]["clusterLinkOptions"]
    # what others own survives the replace
    assert merged["metadata"]["finalizers"] == ["kosmos.io/operator-controller"]
    assert merged["metadata"]["labels"]["extra"] == "kept"
    assert merged["metadata"]["resourceVersion"] == "7"
    assert kosmos.object_changes(desired, merged) == []


def test_global_map_is_replaced_not_merged():
    desired = kosmos.cluster_object(member(globalCIDRsMap={"10.97.0.0/16": "10.197.0.0/16"}), "ns", "r", {}, b"k")
    observed = observed_from(desired, globalCIDRsMap={"10.245.0.0/16": "10.145.0.0/16"})
    merged = kosmos.merged_for_replace(desired, observed)
    assert merged["spec"]["clusterLinkOptions"]["globalCIDRsMap"] == {"10.97.0.0/16": "10.197.0.0/16"}


def test_unknown_kubeconfig_in_check_mode_counts_as_a_change():
    with_config = kosmos.cluster_object(member(), "ns", "r", {}, b"k")
    without = kosmos.cluster_object(member(), "ns", "r", {}, None)
    assert "spec.kubeconfig" in kosmos.object_changes(without, observed_from(with_config))


def test_masked_hides_kubeconfigs_and_secret_data():
    obj = kosmos.cluster_object(member(), "ns", "r", {}, b"token-inside")
    secret = kosmos.controlpanel_secret("ns", {}, b"token-inside")
    for shown in (kosmos.masked(obj), kosmos.masked(secret)):
        text = json.dumps(shown)
        assert base64.b64encode(b"token-inside").decode() not in text
        assert kosmos.MASK in text and "sha256:" in text
    assert kosmos.masked(None) is None


def test_stale_clusters_only_ours_and_this_hosts():
    def obj(name, host="cluster03", managed=True):
        labels = {kosmos.HOST_LABEL: host}
        if managed:
            labels[kosmos.MANAGED_BY_LABEL] = kosmos.MANAGED_BY
        return {"metadata": {"name": name, "labels": labels}}
    observed = [obj("cluster03"), obj("cluster04"), obj("cluster02"), obj("kosmos-control-cluster", managed=False),
                obj("cluster09", host="cluster01")]
    assert kosmos.stale_clusters(observed, ["cluster03", "cluster04"], "cluster03") == ["cluster02"]
    assert kosmos.stale_clusters(observed, [], "cluster03") == ["cluster02", "cluster03", "cluster04"]


def test_readback_reports_controller_objects_honestly():
    members = [member("cluster03", root=True), member("cluster04")]
    observed = {m["name"]: observed_from(kosmos.cluster_object(m, "kosmos-system", "r", {}, b"k")) for m in members}
    observed["cluster03"]["metadata"]["annotations"] = {"kosmos.io/cluster-role": "root"}
    report = kosmos.readback(members, observed, [], [], {"cluster04": {"Secret/controlpanel-config": True}})
    assert report["ok"]
    entry = report["clusters"]["cluster04"]
    assert entry["network_type"] == "gateway" and entry["cluster_nodes"] == kosmos.NOT_OBSERVED
    assert entry["gateway_nodes"] == kosmos.NOT_OBSERVED
    assert report["clusters"]["cluster03"]["root"]
    lines = kosmos.render_readback("net-b", "gateway", "cluster03", report)
    assert "matches the inventory" in lines[0]
    assert any("not observed (controller-created; needs real clusters)" in line for line in lines)


def test_readback_with_controller_objects_and_gateway_roles():
    members = [member("cluster04")]
    observed = {"cluster04": observed_from(kosmos.cluster_object(members[0], "kosmos-system", "r", {}, b"k"))}
    nodes = [{"metadata": {"name": "cluster04-w1"}, "spec": {"clusterName": "cluster04", "roles": ["gateway"]}},
             {"metadata": {"name": "cluster04-w2"}, "spec": {"clusterName": "cluster04"}}]
    report = kosmos.readback(members, observed, nodes, [{"metadata": {"name": "cluster04-w1"}}])
    entry = report["clusters"]["cluster04"]
    assert entry["cluster_nodes"] == ["cluster04-w1", "cluster04-w2"]
    assert entry["gateway_nodes"] == ["cluster04-w1"]
    assert entry["node_configs"] == ["cluster04-w1"]


def test_readback_flags_differences_missing_objects_and_member_side():
    members = [member("cluster03", root=True), member("cluster04")]
    drifted = observed_from(kosmos.cluster_object(members[1], "kosmos-system", "r", {}, b"k"), networkType="p2p")
    report = kosmos.readback(members, {"cluster04": drifted}, None, None,
                             {"cluster04": {"Secret/controlpanel-config": False}})
    assert not report["ok"]
    assert report["clusters"]["cluster03"]["mismatches"] == ["clusters.kosmos.io/cluster03 is missing"]
    mismatches = report["clusters"]["cluster04"]["mismatches"]
    assert "spec.clusterLinkOptions.networkType" in mismatches
    assert "member Secret/controlpanel-config is missing" in mismatches


def test_diagnosis_pairs_and_matrices():
    clusters = {"a": {"nodes": [{"name": "a1", "ip": "172.30.3.11", "pod_ip": "10.244.1.5"}]},
                "b": {"nodes": [{"name": "b1", "ip": "172.30.4.11", "pod_ip": None},
                                {"name": "b2", "ip": "172.30.4.12", "pod_ip": "10.245.2.5"}]}}
    pairs = kosmos.diagnosis_pairs(clusters)
    assert len(pairs) == 4  # a1->b1, a1->b2, b1->a1, b2->a1
    assert {"src_cluster": "a", "dst_cluster": "b", "src_node": "a1", "dst_node": "b2",
            "host_target": "172.30.4.12", "pod_target": "10.245.2.5"} in pairs
    not_run = kosmos.data_plane_matrix(pairs, None)
    assert not_run["a"]["b"] == "not run (3 probes; the data plane needs real clusters)"
    ran = kosmos.data_plane_matrix(pairs, {"a1>172.30.4.11": True, "a1>172.30.4.12": True, "a1>10.245.2.5": False,
                                           "b1>172.30.3.11": True, "b1>10.244.1.5": True,
                                           "b2>172.30.3.11": True, "b2>10.244.1.5": True})
    assert ran["a"]["b"].startswith("FAIL 2/3: pod a1->b2")
    assert ran["b"]["a"] == "ok 4/4"


def test_control_plane_matrix_names_the_broken_side():
    members = [member("a"), member("b")]
    observed = {"a": observed_from(kosmos.cluster_object(members[0], "ns", "r", {}, b"k"))}
    report = kosmos.readback(members, observed, None, None)
    matrix = kosmos.control_plane_checks("net-b", "gateway", report, {"a": 3, "b": 3})
    assert matrix["a"]["a"] == "-"
    assert matrix["a"]["b"].startswith("FAIL") and "b not joined" in matrix["a"]["b"]
    observed["b"] = observed_from(kosmos.cluster_object(members[1], "ns", "r", {}, b"k"))
    report = kosmos.readback(members, observed, None, None)
    assert kosmos.control_plane_checks("net-b", "gateway", report, {"a": 3, "b": 3})["b"]["a"] == "ok"
    assert "a has no nodes" in kosmos.control_plane_checks("net-b", "gateway", report, {"b": 3})["b"]["a"]
