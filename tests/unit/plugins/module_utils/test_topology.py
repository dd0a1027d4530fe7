"""One test per validation rule: each mutates a valid demo topology so that exactly that rule fires."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.multicloud.interconnect.plugins.module_utils import _topology as topo


def demo():
    """The house plan's demo topology: valid, with overlap only across groups."""
    return {
        "cluster01": {"cluster_id": 1, "cluster_pod_cidrs": ["10.244.0.0/16"], "cluster_service_cidrs": ["10.96.0.0/16"],
                      "cluster_node_cidrs": ["172.30.1.0/24"], "cluster_network_group": "net-a", "cluster_cni": "cilium",
                      "cluster_eastwest_gateway": {"replicas": 1, "service_type": "NodePort"}},
        "cluster02": {"cluster_id": 2, "cluster_pod_cidrs": ["10.245.0.0/16"], "cluster_service_cidrs": ["10.97.0.0/16"],
                      "cluster_network_group": "net-a", "cluster_cni": "cilium"},
        "cluster03": {"cluster_id": 3, "cluster_pod_cidrs": ["10.244.0.0/16"], "cluster_service_cidrs": ["10.96.0.0/16"],
                      "cluster_network_group": "net-b", "cluster_cni": "kosmos",
                      "cluster_eastwest_gateway": {"service_type": "LoadBalancer", "address": "gw.example.com"}},
        "cluster04": {"cluster_id": 4, "cluster_pod_cidrs": ["10.245.0.0/16"], "cluster_service_cidrs": ["10.97.0.0/16"],
                      "cluster_network_group": "net-b", "cluster_cni": "kosmos"},
    }


GROUPS = ["net-a", "net-b"]


def codes(report, severity=None):
    return sorted({p.code for p in report.problems if severity is None or p.severity == severity})


def test_demo_topology_is_valid_with_cross_group_overlap_as_information():
    report = topo.validate_inventory(demo(), GROUPS)
    assert report.ok, report.failure_message()
    assert codes(report, topo.ERROR) == []
    assert "CIDR_OVERLAP_ACROSS_GROUPS" in codes(report, topo.INFO)


def _set(cluster, key, value):
    def mutate(inv):
        inv[cluster][key] = value
    # the clusters the problem must name: the one changed, by the name it has afterwards
    mutate.who = {value if key == "cluster_name" and isinstance(value, str) else cluster}
    return mutate


def _both(key, value, other_key, other_value):
    """The same two settings on both clusters of net-a."""
    def mutate(inv):
        for cluster in ("cluster01", "cluster02"):
            inv[cluster][key] = value
            inv[cluster][other_key] = other_value
    mutate.who = {"cluster01", "cluster02"}
    return mutate


def _drop(cluster, key):
    def mutate(inv):
        inv[cluster].pop(key)
    mutate.who = {cluster}
    return mutate


CASES = [
    # names
    ("NAME_TOO_LONG", _set("cluster01", "cluster_name", "a" * 33), ["cluster_name"]),
    ("NAME_INVALID", _set("cluster01", "cluster_name", "Cluster_01"), ["cluster_name"]),
    ("NAME_RESERVED", _set("cluster01", "cluster_name", "default"), ["cluster_name"]),
    ("NAME_DUPLICATE", _set("cluster02", "cluster_name", "cluster01"), ["cluster_name"]),
    # IDs
    ("ID_NOT_INTEGER", _set("cluster01", "cluster_id", "one"), ["cluster_id"]),
    ("ID_NOT_INTEGER", _set("cluster01", "cluster_id", True), ["cluster_id"]),
    ("ID_OUT_OF_RANGE", _set("cluster01", "cluster_id", 0), ["cluster_id"]),
    ("ID_OUT_OF_RANGE", _set("cluster01", "cluster_id", 256), ["cluster_id"]),
    ("ID_DUPLICATE", _set("cluster02", "cluster_id", 1), ["cluster_id"]),
    ("MAX_CONNECTED_INVALID", _set("cluster01", "mesh_max_connected_clusters", 300), ["mesh_max_connected_clusters"]),
    ("MAX_CONNECTED_MISMATCH", _set("cluster01", "mesh_max_connected_clusters", 511), ["mesh_max_connected_clusters"]),
    # CIDRs
    ("CIDR_MISSING", _drop("cluster02", "cluster_pod_cidrs"), ["cluster_pod_cidrs"]),
    ("CIDR_INVALID", _set("cluster02", "cluster_pod_cidrs", ["10.245.0.0/33"]), ["cluster_pod_cidrs"]),
    ("CIDR_INVALID", _set("cluster02", "cluster_pod_cidrs", ["10.245.0.0"]), ["cluster_pod_cidrs"]),
    ("CIDR_HOST_BITS", _set("cluster02", "cluster_pod_cidrs", ["10.245.1.0/16"]), ["cluster_pod_cidrs"]),
    ("CIDR_OVERLAP_IN_CLUSTER", _set("cluster02", "cluster_service_cidrs", ["10.245.128.0/20"]),
     ["cluster_service_cidrs"]),
    ("CIDR_OVERLAP_IN_CLUSTER", _set("cluster01", "cluster_node_cidrs", ["10.96.0.0/24"]), ["cluster_node_cidrs"]),
    ("CIDR_SERVICE_FAMILY_REPEATED", _set("cluster02", "cluster_service_cidrs", ["10.97.0.0/16", "10.98.0.0/16"]),
     ["cluster_service_cidrs"]),
    ("CIDR_OVERLAP_IN_GROUP", _set("cluster02", "cluster_pod_cidrs", ["10.244.128.0/17"]),
     ["cluster_pod_cidrs/cluster_service_cidrs"]),
    ("CIDR_OVERLAP_IN_GROUP", _set("cluster04", "cluster_service_cidrs", ["10.96.0.0/16"]),
     ["cluster_pod_cidrs/cluster_service_cidrs"]),
    # Kosmos global CIDR map
    ("GLOBAL_CIDR_KEY_UNKNOWN", _set("cluster03", "cluster_global_cidrs", {"10.244.0.0/17": "10.10.0.0/17"}),
     ["cluster_global_cidrs"]),
    ("GLOBAL_CIDR_SIZE_MISMATCH", _set("cluster03", "cluster_global_cidrs", {"10.244.0.0/16": "10.10.0.0/24"}),
     ["cluster_global_cidrs"]),
    ("GLOBAL_CIDR_INVALID", _set("cluster03", "cluster_global_cidrs", {"10.244.0.0/16": "10.10.0.1/16"}),
     ["cluster_global_cidrs"]),
    ("GLOBAL_CIDR_UNSUPPORTED", _set("cluster01", "cluster_global_cidrs", {"10.244.0.0/16": "10.10.0.0/16"}),
     ["cluster_global_cidrs"]),
    # groups
    ("GROUP_MISSING", _drop("cluster02", "cluster_network_group"), ["cluster_network_group"]),
    ("GROUP_NOT_SINGLE", _set("cluster02", "cluster_network_group", ["net-a", "net-b"]), ["cluster_network_group"]),
    ("GROUP_NAME_INVALID", _set("cluster02", "cluster_network_group", "Net_A"), ["cluster_network_group"]),
    ("GROUP_MIXED_CNI", _set("cluster02", "cluster_cni", "kosmos"), ["cluster_cni"]),
    ("CNI_INVALID", _set("cluster02", "cluster_cni", "calico"), ["cluster_cni"]),
    ("GATEWAY_INVALID", _set("cluster01", "cluster_eastwest_gateway", {"replicas": 0}),
     ["cluster_eastwest_gateway.replicas"]),
    ("GATEWAY_INVALID", _set("cluster01", "cluster_eastwest_gateway", {"service_type": "ClusterIP"}),
     ["cluster_eastwest_gateway.service_type"]),
    ("GATEWAY_INVALID", _set("cluster01", "cluster_eastwest_gateway", {"address": "not an address!"}),
     ["cluster_eastwest_gateway.address"]),
    ("GATEWAY_INVALID", _set("cluster01", "cluster_eastwest_gateway", {"node_port": 80}),
     ["cluster_eastwest_gateway.node_port"]),
    ("GATEWAY_INVALID", _set("cluster01", "cluster_eastwest_gateway", {"replica": 2}), ["cluster_eastwest_gateway"]),
    ("INTERCONNECT_NO_GATEWAY", _drop("cluster03", "cluster_eastwest_gateway"), ["cluster_eastwest_gateway"]),
    # a group's routed space: nodes of one cluster, Pods and Services of its peers
    ("CIDR_NODE_OVERLAPS_PEER", _set("cluster01", "cluster_node_cidrs", ["10.245.7.0/24"]), ["cluster_node_cidrs"]),
    ("CIDR_NODE_OVERLAPS_PEER", _set("cluster04", "cluster_node_cidrs", ["10.96.0.0/20"]), ["cluster_node_cidrs"]),
    # Kosmos's own local and bridge CIDRs
    ("KOSMOS_RESERVED_OVERLAP", _set("cluster03", "cluster_node_cidrs", ["210.1.0.0/24"]), ["cluster_node_cidrs"]),
    ("KOSMOS_RESERVED_OVERLAP", _set("cluster04", "cluster_pod_cidrs", ["220.16.0.0/16"]), ["cluster_pod_cidrs"]),
    ("KOSMOS_RESERVED_OVERLAP", _set("cluster03", "kosmos_local_cidrs", {"ip": "10.96.0.0/12", "ip6": "9470::/16"}),
     ["cluster_service_cidrs"]),
    ("KOSMOS_RESERVED_INVALID", _set("cluster03", "kosmos_bridge_cidrs", {"ip": "220.0.0.1/8"}),
     ["kosmos_bridge_cidrs.ip"]),
    # Cilium clustermesh-apiserver nodePorts
    ("CILIUM_NODE_PORT_CLASH", _set("cluster02", "cilium_clustermesh_node_port", 32001),
     ["cilium_clustermesh_node_port"]),
    ("CILIUM_NODE_PORT_INVALID", _set("cluster02", "cilium_clustermesh_node_port", "high"),
     ["cilium_clustermesh_node_port"]),
    ("CILIUM_NODE_PORT_OUT_OF_RANGE", _set("cluster02", "cilium_clustermesh_node_port_base", 32767),
     ["cilium_clustermesh_node_port"]),
    # Cilium datapath: no SNAT inside a group
    ("CILIUM_ROUTING_MODE_INVALID", _set("cluster01", "cilium_routing_mode", "vxlan"), ["cilium_routing_mode"]),
    ("CILIUM_ROUTING_MODE_MIXED", _set("cluster01", "cilium_routing_mode", "native"), ["cilium_routing_mode"]),
    ("CILIUM_NATIVE_ROUTING_CIDR_UNCOVERED", _both("cilium_routing_mode", "native", "cilium_native_routing_cidrs",
                                                   ["10.244.0.0/16"]), ["cilium_native_routing_cidrs"]),
    ("CILIUM_NATIVE_ROUTING_CIDR_INVALID", _both("cilium_routing_mode", "native", "cilium_native_routing_cidrs",
                                                 ["10.244.0.0"]), ["cilium_native_routing_cidrs"]),
]


def test_a_cilium_cluster_without_cluster_id_is_allocated_one_not_refused():
    inventory = demo()
    inventory["cluster01"].pop("cluster_id")
    report = topo.validate_inventory(inventory, GROUPS)
    assert report.ok, report.failure_message()
    notes = [p for p in report.problems if p.code == "ID_TO_ALLOCATE"]
    assert [(p.severity, p.clusters, p.field) for p in notes] == [("info", ("cluster01",), "cluster_id")]
    # its nodePort (base + ID) is not known before the install: not judged here
    assert not [p for p in report.problems if p.code.startswith("CILIUM_NODE_PORT")]


@pytest.mark.parametrize("code,mutate,fields", CASES, ids=["%s-%d" % (c[0], i) for i, c in enumerate(CASES)])
def test_each_rule_reports_its_code_field_and_fix(code, mutate, fields):
    inventory = demo()
    mutate(inventory)
    report = topo.validate_inventory(inventory, GROUPS)
    matching = [p for p in report.errors if p.code == code]
    assert matching, "expected %s, got %s" % (code, codes(report))
    assert not report.ok
    problem = matching[0]
    assert problem.field in fields
    assert mutate.who & set(problem.clusters), "%s names %s, not the changed cluster %s" % (
        code, problem.where, ", ".join(sorted(mutate.who)))
    assert problem.fix, "every error says how to fix it"
    message = report.failure_message()
    assert message.startswith("Topology validation refused (%d problem" % len(report.errors))
    assert "field: %s; fix: %s" % (problem.field, problem.fix) in message


@pytest.mark.parametrize("groups,code", [
    (["net-a", "net-c"], "INTERCONNECT_UNKNOWN_GROUP"),
    (["net-a", "net-a"], "INTERCONNECT_DUPLICATE"),
    ([7], "INTERCONNECT_INVALID"),
])
def test_interconnect_list_rules(groups, code):
    report = topo.validate_inventory(demo(), groups)
    assert code in codes(report, topo.ERROR)


def test_host_bits_error_shows_corrected_network():
    inventory = demo()
    inventory["cluster02"]["cluster_pod_cidrs"] = ["10.245.1.0/16"]
    (problem,) = [p for p in topo.validate_inventory(inventory, GROUPS).errors if p.code == "CIDR_HOST_BITS"]
    assert "10.245.0.0/16" in problem.fix


def test_ids_up_to_511_when_the_mesh_allows_511():
    inventory = demo()
    for hv in inventory.values():
        hv["mesh_max_connected_clusters"] = 511
    inventory["cluster01"]["cluster_id"] = 300
    assert topo.validate_inventory(inventory, GROUPS).ok
    inventory["cluster01"]["cluster_id"] = 512
    assert "ID_OUT_OF_RANGE" in codes(topo.validate_inventory(inventory, GROUPS), topo.ERROR)


@pytest.mark.parametrize("key,value", [("cluster_ipam_mode", "eni"), ("cluster_cni_chaining_mode", "aws-cni")])
def test_id_with_bit_7_warns_only_with_eni_or_aws_cni(key, value):
    inventory = demo()
    inventory["cluster01"]["cluster_id"] = 200
    plain = topo.validate_inventory(inventory, GROUPS)
    assert plain.ok and "ID_BREAKS_ENI" not in codes(plain)
    assert "ID_ENI_RANGE" in codes(plain, topo.INFO)
    inventory["cluster01"][key] = value
    warned = topo.validate_inventory(inventory, GROUPS)
    assert warned.ok
    assert "ID_BREAKS_ENI" in codes(warned, topo.WARNING)


def test_kosmos_global_map_lifts_in_group_overlap():
    inventory = demo()
    inventory["cluster04"]["cluster_pod_cidrs"] = ["10.244.0.0/16"]
    refused = topo.validate_inventory(inventory, GROUPS)
    (overlap,) = [p for p in refused.errors if p.code == "CIDR_OVERLAP_IN_GROUP"]
    assert overlap.clusters == ("cluster03", "cluster04") and overlap.group == "net-b"
    assert "cluster_global_cidrs" in overlap.fix  # the Kosmos-only remedy is offered in a Kosmos group
    inventory["cluster04"]["cluster_global_cidrs"] = {"10.244.0.0/16": "10.20.0.0/16"}
    assert topo.validate_inventory(inventory, GROUPS).ok


def test_global_cidrs_must_not_overlap_each_other():
    inventory = demo()
    inventory["cluster04"]["cluster_pod_cidrs"] = ["10.244.0.0/16"]
    inventory["cluster03"]["cluster_global_cidrs"] = {"10.244.0.0/16": "10.20.0.0/16"}
    inventory["cluster04"]["cluster_global_cidrs"] = {"10.244.0.0/16": "10.20.0.0/16"}
    assert "GLOBAL_CIDR_OVERLAP" in codes(topo.validate_inventory(inventory, GROUPS), topo.ERROR)


def test_ipv6_and_dual_stack_are_checked_like_ipv4():
    inventory = demo()
    inventory["cluster01"]["cluster_pod_cidrs"] = ["10.244.0.0/16", "fd00:10:244::/56"]
    inventory["cluster02"]["cluster_pod_cidrs"] = ["10.245.0.0/16", "fd00:10:244::/64"]
    report = topo.validate_inventory(inventory, GROUPS)
    (overlap,) = [p for p in report.errors if p.code == "CIDR_OVERLAP_IN_GROUP"]
    assert "fd00:10:244::/56" in overlap.message and "fd00:10:244::/64" in overlap.message


def test_every_problem_is_reported_in_one_run():
    inventory = demo()
    inventory["cluster02"]["cluster_id"] = 1
    inventory["cluster02"]["cluster_pod_cidrs"] = ["10.244.0.0/16"]
    inventory["cluster04"]["cluster_name"] = "default"
    del inventory["cluster03"]["cluster_eastwest_gateway"]
    found = codes(topo.validate_inventory(inventory, GROUPS), topo.ERROR)
    assert {"ID_DUPLICATE", "CIDR_OVERLAP_IN_GROUP", "NAME_RESERVED", "INTERCONNECT_NO_GATEWAY"} <= set(found)


def test_report_renders_a_table_row_per_cluster():
    lines = topo.validate_inventory(demo(), GROUPS).render()
    assert lines[1].startswith("Result: OK")
    rows = [line for line in lines if line.startswith("cluster0")]
    assert [row.split()[0] for row in rows] == ["cluster01", "cluster02", "cluster03", "cluster04"]


def test_as_dict_is_structured():
    inventory = demo()
    inventory["cluster02"]["cluster_id"] = 1
    data = topo.validate_inventory(inventory, GROUPS).as_dict()
    assert data["ok"] is False
    assert data["errors"][0]["code"] == "ID_DUPLICATE"
    assert data["findings"]["errors"] == data["errors"]
    assert data["clusters"]["cluster02"]["errors"] == 1
    assert data["groups"]["net-b"]["eastwest_gateways"] == ["cluster03"]


def test_single_cidr_string_is_accepted_as_a_list():
    inventory = copy.deepcopy(demo())
    inventory["cluster01"]["cluster_pod_cidrs"] = "10.244.0.0/16"
    assert topo.validate_inventory(inventory, GROUPS).ok


def test_peers_are_the_other_clusters_of_the_group():
    topology = topo.topology_from_inventory(demo(), GROUPS)
    assert topology.peers("cluster01") == ["cluster02"]
    assert topology.groups()["net-b"].gateway_clusters == ("cluster03",)


def _problem(report, code):
    found = [p for p in report.problems if p.code == code]
    assert len(found) == 1, [p.as_dict() for p in report.problems]
    return found[0]


def test_node_network_overlapping_a_peer_pod_range_names_both_clusters_and_both_ranges():
    inventory = demo()
    inventory["cluster01"]["cluster_node_cidrs"] = ["10.245.7.0/24"]
    problem = _problem(topo.validate_inventory(inventory, GROUPS), "CIDR_NODE_OVERLAPS_PEER")
    assert problem.clusters == ("cluster01", "cluster02") and problem.group == "net-a"
    assert "10.245.7.0/24" in problem.message and "pod CIDR 10.245.0.0/16" in problem.message


def test_node_overlaps_found_by_the_sweep_are_those_a_cluster_by_peer_walk_finds():
    """Random groups with many overlaps: the sweep reports exactly the pairs, in the same order."""
    import ipaddress
    import random

    rng = random.Random(7)

    def net():
        raw = "10.%d.%d.0/%d" % (rng.randrange(4), rng.randrange(0, 256, 16), rng.choice((16, 20, 24)))
        return str(ipaddress.ip_network(raw, strict=False))

    inventory = {}
    for i in range(24):
        inventory["c%02d" % i] = {"cluster_id": i + 1, "cluster_network_group": "g%d" % (i % 3), "cluster_cni": "cilium",
                                  "cluster_pod_cidrs": [net()], "cluster_service_cidrs": [net()],
                                  "cluster_node_cidrs": [net(), net()]}
    expected = []
    for group in ("g0", "g1", "g2"):
        members = [n for n in inventory if inventory[n]["cluster_network_group"] == group]
        for name in members:
            for peer in members:
                if peer == name:
                    continue
                for node in inventory[name]["cluster_node_cidrs"]:
                    for kind in ("pod", "service"):
                        for other in inventory[peer]["cluster_%s_cidrs" % kind]:
                            if ipaddress.ip_network(node, strict=False).overlaps(ipaddress.ip_network(other, strict=False)):
                                expected.append((name, peer, str(ipaddress.ip_network(node, strict=False)), kind))
    found = [(p.clusters, p.message) for p in topo.validate_inventory(inventory, []).problems
             if p.code == "CIDR_NODE_OVERLAPS_PEER"]
    assert len(expected) > 20
    wanted = sorted((tuple(sorted((name, peer))), "node network %s of cluster %s overlaps %s CIDR" % (node, name, kind))
                    for name, peer, node, kind in expected)
    got = sorted((clusters, message[message.index("node network"):message.index(" CIDR") + 5]) for clusters, message in found)
    assert got == wanted


def test_a_peer_range_mapped_to_a_global_cidr_no_longer_collides_with_node_networks():
    inventory = demo()
    inventory["cluster04"]["cluster_node_cidrs"] = ["10.244.200.0/24"]   # inside cluster03's Pod range
    assert "CIDR_NODE_OVERLAPS_PEER" in codes(topo.validate_inventory(inventory, GROUPS))
    inventory["cluster03"]["cluster_global_cidrs"] = {"10.244.0.0/16": "10.10.0.0/16"}   # peers see 10.10/16
    report = topo.validate_inventory(inventory, GROUPS)
    assert report.ok, [p.as_dict() for p in report.errors]


def test_kosmos_reserved_ranges_follow_the_inventory_and_apply_to_kosmos_groups_only():
    inventory = demo()
    inventory["cluster01"]["cluster_node_cidrs"] = ["210.1.0.0/24"]      # a Cilium group: Kosmos is not there
    assert "KOSMOS_RESERVED_OVERLAP" not in codes(topo.validate_inventory(inventory, GROUPS))
    inventory["cluster03"]["cluster_node_cidrs"] = ["210.1.0.0/24"]
    problem = _problem(topo.validate_inventory(inventory, GROUPS), "KOSMOS_RESERVED_OVERLAP")
    assert problem.clusters == ("cluster03",) and "kosmos_local_cidrs 210.0.0.0/8" in problem.message
    for host in ("cluster03", "cluster04"):
        inventory[host]["kosmos_local_cidrs"] = {"ip": "198.18.0.0/16", "ip6": "9470::/16"}
    assert "KOSMOS_RESERVED_OVERLAP" not in codes(topo.validate_inventory(inventory, GROUPS))


def test_clustermesh_node_ports_clash_only_when_two_clusters_would_use_one_port():
    inventory = demo()
    # base + cluster_id: 32001 and 32002, distinct
    assert "CILIUM_NODE_PORT_CLASH" not in codes(topo.validate_inventory(inventory, GROUPS))
    inventory["cluster01"]["cilium_clustermesh_node_port_base"] = 32001   # 32002 == cluster02's 32000 + 2
    problem = _problem(topo.validate_inventory(inventory, GROUPS), "CILIUM_NODE_PORT_CLASH")
    assert problem.clusters == ("cluster01", "cluster02") and "32002" in problem.message
    inventory["cluster01"]["cilium_clustermesh_service_type"] = "LoadBalancer"
    assert "CILIUM_NODE_PORT_CLASH" not in codes(topo.validate_inventory(inventory, GROUPS))


def test_one_duplicate_id_is_reported_as_such_not_also_as_a_port_clash():
    inventory = demo()
    inventory["cluster02"]["cluster_id"] = 1
    assert "ID_DUPLICATE" in codes(topo.validate_inventory(inventory, GROUPS))
    assert "CILIUM_NODE_PORT_CLASH" not in codes(topo.validate_inventory(inventory, GROUPS))


def test_native_routing_is_valid_when_a_derived_range_spans_the_group_and_refused_when_too_wide():
    inventory = demo()
    for cluster in ("cluster01", "cluster02"):
        inventory[cluster]["cilium_routing_mode"] = "native"
    assert topo.validate_inventory(inventory, GROUPS).ok
    inventory["cluster02"]["cluster_pod_cidrs"] = ["172.20.0.0/16"]
    problem = _problem(topo.validate_inventory(inventory, GROUPS), "CILIUM_NATIVE_ROUTING_CIDR_TOO_WIDE")
    assert set(problem.clusters) == {"cluster01", "cluster02"} and problem.group == "net-a"
    for cluster in ("cluster01", "cluster02"):
        inventory[cluster]["cilium_ip_masq_agent"] = True
    assert topo.validate_inventory(inventory, GROUPS).ok


def awx_slice(inventory, number, count):
    """The hosts an AWX job slice sees: sorted by name, every count-th from number (1-based)."""
    names = sorted(inventory)[number - 1::count]
    return {name: inventory[name] for name in names}


def test_a_job_slice_is_refused_naming_the_clusters_it_cannot_see():
    mesh = sorted(demo())
    whole = topo.validate_inventory(demo(), GROUPS, mesh)
    assert whole.ok, whole.render()
    part = awx_slice(demo(), 1, 2)
    # Without the list, a slice looks like a smaller, valid mesh: this is what the rule is for.
    assert topo.validate_inventory(part, GROUPS).ok
    report = topo.validate_inventory(part, GROUPS, mesh)
    missing = next(p for p in report.errors if p.code == "MESH_CLUSTERS_MISSING")
    assert list(missing.clusters) == sorted(set(mesh) - set(part)) and missing.field == "mesh_clusters"
    assert "job_slice_count" in missing.message + missing.fix and not report.ok


def test_mesh_clusters_must_list_every_cluster_and_only_host_names():
    mesh = sorted(demo())
    report = topo.validate_inventory(demo(), GROUPS, mesh[1:])
    unlisted = next(p for p in report.errors if p.code == "MESH_CLUSTERS_UNLISTED")
    assert list(unlisted.clusters) == [mesh[0]]
    assert "MESH_CLUSTERS_INVALID" in codes(topo.validate_inventory(demo(), GROUPS, mesh + [7]))
