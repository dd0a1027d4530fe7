"""Pure planning of the cilium role: values, peers, kernel, CA and read-back."""

from __future__ import annotations

import base64
import subprocess

import pytest

from ansible_collections.multicloud.interconnect.plugins.module_utils import _cilium as c
from ansible_collections.multicloud.interconnect.plugins.module_utils._topology import cluster_from_vars
from ansible_collections.multicloud.interconnect.plugins.module_utils import _kernel as k

SETTINGS = {"service_type": "NodePort", "node_port": None, "node_port_base": 32000, "max_connected_clusters": 255,
            "ipam_mode": "cluster-pool", "pod_cidrs": ["10.244.0.0/16"], "service_annotations": {}}


def nodes(prefix, count=2, external=False, kernel="6.1.0-18-amd64"):
    result = []
    for i in range(count):
        addresses = [{"type": "InternalIP", "address": "%s.%d" % (prefix, 10 + i)}, {"type": "Hostname", "address": "n"}]
        if external:
            addresses.append({"type": "ExternalIP", "address": "203.0.113.%d" % (10 + i)})
        result.append({"metadata": {"name": "%s-node%d" % (prefix, i)},
                       "status": {"addresses": addresses, "nodeInfo": {"kernelVersion": kernel}}})
    return result


def member(name, cid, group="net-a", settings=None, service=None, node_list=None):
    hv = {"cluster_id": cid, "cluster_network_group": group}
    node_list = node_list if node_list is not None else nodes("172.30.%d" % cid)
    return c.member(cluster_from_vars(name, hv), settings or SETTINGS, node_list, service)


def mesh(count, group="net-a"):
    return [member("cluster%02d" % i, i, group) for i in range(1, count + 1)]


@pytest.mark.parametrize("version, fmt", [("1.18.7", "list"), ("v1.18.99", "list"), ("1.19.0-rc.1", "map"),
                                          ("1.19.0", "map"), ("1.20.1", "map"), ("2.0", "map")])
def test_clusters_format_follows_the_chart_version(version, fmt):
    assert c.clusters_format(version) == fmt


def test_clusters_format_refuses_a_non_version():
    with pytest.raises(c.CiliumError, match="cilium_chart_version"):
        c.clusters_format("latest")


@pytest.mark.parametrize("kernel, old", [("4.9.17", True), ("5.4.0-150-generic", True), ("5.10.0-28-amd64", False),
                                         ("6.8.0", False), ("4.18.0-553.16.1.el8_10.x86_64", False),
                                         ("4.18.0-513.24.1.el8_9.x86_64", True)])
@pytest.mark.parametrize("minimum", ["5.10", ""])
def test_kernel_findings_compare_versions(kernel, old, minimum):
    found = c.kernel_findings(nodes("10.0.0", 1, kernel=kernel), minimum)
    assert bool(found["too_old"]) is old
    assert found["unknown"] == []


@pytest.mark.parametrize("kernel", ["3.10.0-1160.el7.x86_64", "4.18.0-553.16.1.el8_10.x86_64", "4.18.0-553.el8_10",
                                    "4.18.0-513.24.1.el8_9.x86_64", "5.4.0-150-generic", "5.10.0-28-amd64",
                                    "5.14.0-427.13.1.el9_4.x86_64", "6.9.7-1.el9.elrepo.x86_64"])
def test_cilium_preflight_and_kernel_role_agree_on_every_node(kernel):
    """A node the kernel role leaves alone must pass the Cilium preflight, and the reverse."""
    role_floor = k.minimum_for("cilium", "")
    role_skips = k.meets_minimum(kernel, role_floor, "cilium")
    preflight_refuses = bool(c.kernel_findings(nodes("10.0.0", 1, kernel=kernel), "")["too_old"])
    assert role_skips is not preflight_refuses


def test_kernel_floor_refuses_a_non_version_naming_the_field():
    with pytest.raises(c.CiliumError, match="cilium_kernel_min_version 'latest'"):
        c.kernel_findings(nodes("10.0.0", 1, kernel="6.8.0"), "latest")


def test_kernel_problems_name_every_old_node_and_unknown_ones():
    findings = {"cluster02": c.kernel_findings(nodes("10.0.2", 2, kernel="4.9.17"), "5.10"),
                "cluster01": c.kernel_findings(nodes("10.0.1", 1, kernel="kwok"), "5.10")}
    problems = c.kernel_problems(findings, "5.10", allow_unknown=False)
    expected = [("CILIUM_KERNEL_UNKNOWN", ("cluster01",)), ("CILIUM_KERNEL_TOO_OLD", ("cluster02",))]
    assert [(p.code, p.clusters) for p in problems] == expected
    assert "10.0.1-node0 (kwok)" in problems[0].message
    assert "10.0.2-node0 (4.9.17), 10.0.2-node1 (4.9.17)" in problems[1].message
    assert c.kernel_problems(findings, "5.10", allow_unknown=True) == [problems[1]]


def test_node_addresses_prefer_external_ips():
    assert c.node_addresses(nodes("10.1.0", 2, external=True)) == ["203.0.113.10", "203.0.113.11"]
    assert c.node_addresses(nodes("10.1.0", 2)) == ["10.1.0.10", "10.1.0.11"]


def test_nodeport_member_gets_base_plus_id_and_node_ips():
    entry = member("cluster07", 7)
    assert entry["node_port"] == 32007
    assert entry["endpoint"] == {"ips": ["172.30.7.10", "172.30.7.11"], "port": 32007}


def lb_service(ingress):
    return {"spec": {"type": "LoadBalancer", "ports": [{"port": 2379, "nodePort": 31111}]},
            "status": {"loadBalancer": {"ingress": ingress}}}


@pytest.mark.parametrize("service, expected", [
    (None, {"pending": "the clustermesh-apiserver Service does not exist yet"}),
    (lb_service([]), {"pending": "the load balancer has no ingress address yet"}),
    (lb_service([{"ip": "10.9.0.2"}, {"ip": "10.9.0.1"}]), {"ips": ["10.9.0.1", "10.9.0.2"], "port": 2379}),
    (lb_service([{"hostname": "lb.example.com"}]), {"address": "lb.example.com", "port": 2379}),
])
def test_load_balancer_endpoint_comes_from_the_service(service, expected):
    settings = dict(SETTINGS, service_type="LoadBalancer")
    assert member("cluster01", 1, settings=settings, service=service)["endpoint"] == expected


@pytest.mark.parametrize("version", ["1.18.7", "1.19.0"])
def test_render_lists_exactly_the_peers_of_the_group(version):
    members = mesh(3) + [member("cluster09", 9, group="net-b")]
    result = c.render(members[0], members, SETTINGS, None, None, version)
    clusters = result["values"]["clustermesh"]["config"]["clusters"]
    assert result["peers"] == ["cluster02", "cluster03"]
    if version == "1.18.7":
        assert clusters == [{"name": "cluster02", "ips": ["172.30.2.10", "172.30.2.11"], "port": 32002},
                            {"name": "cluster03", "ips": ["172.30.3.10", "172.30.3.11"], "port": 32003}]
    else:
        assert clusters == {"cluster02": {"ips": ["172.30.2.10", "172.30.2.11"], "port": 32002},
                            "cluster03": {"ips": ["172.30.3.10", "172.30.3.11"], "port": 32003}}


def test_removed_cluster_disappears_from_every_peer():
    before = mesh(3)
    after = before[:2]
    for entry in after:
        rendered = c.render(entry, after, SETTINGS, None, None, "1.19.0")
        assert "cluster03" not in rendered["values"]["clustermesh"]["config"]["clusters"]
    assert "cluster03" in c.render(before[0], before, SETTINGS, None, None, "1.19.0")["peers"]


def test_render_owns_identity_mesh_service_tls_and_ipam():
    ca = {"cert": "Y2VydA==", "key": "a2V5"}
    settings = dict(SETTINGS, service_type="LoadBalancer", max_connected_clusters=511,
                    service_annotations={"service.kubernetes.io/qcloud-loadbalancer-internal-subnetid": "subnet-1"})
    entry = member("cluster01", 1, settings=settings)
    values = c.render(entry, [entry], settings, ca, None, "1.18.7")["values"]
    assert values["cluster"] == {"name": "cluster01", "id": 1}
    assert values["tls"] == {"ca": {"cert": "Y2VydA==", "key": "a2V5"}}
    assert values["ipam"] == {"mode": "cluster-pool", "operator": {"clusterPoolIPv4PodCIDRList": ["10.244.0.0/16"]}}
    mesh_values = values["clustermesh"]
    assert mesh_values["useAPIServer"] is True and mesh_values["maxConnectedClusters"] == 511
    assert mesh_values["config"] == {"enabled": True, "clusters": []}
    assert mesh_values["apiserver"]["tls"] == {"auto": {"enabled": True, "method": "helm"}}
    assert mesh_values["apiserver"]["service"] == {
        "type": "LoadBalancer",
        "annotations": {"service.kubernetes.io/qcloud-loadbalancer-internal-subnetid": "subnet-1"}}


def test_pending_peers_are_reported_not_written():
    settings = dict(SETTINGS, service_type="LoadBalancer")
    members = [member("cluster01", 1, settings=settings), member("cluster02", 2, settings=settings, service=None)]
    result = c.render(members[0], members, settings, None, None, "1.19.0")
    assert result["values"]["clustermesh"]["config"]["clusters"] == {}
    assert result["pending_peers"] == ["cluster02 (the clustermesh-apiserver Service does not exist yet)"]


def test_extra_values_merge_under_the_role_keys_with_conflicts_named():
    owned = {"cluster": {"name": "a", "id": 1}, "clustermesh": {"useAPIServer": True}}
    extra = {"cluster": {"id": 9}, "hubble": {"enabled": False}, "clustermesh": {"useAPIServer": True, "x": 1}}
    merged, conflicts = c.merge_extra(owned, extra)
    assert merged == {"cluster": {"name": "a", "id": 1}, "hubble": {"enabled": False},
                      "clustermesh": {"useAPIServer": True, "x": 1}}
    assert conflicts == ["cluster.id"]


def test_ipam_dual_stack_and_other_modes():
    assert c.ipam_values("cluster-pool", ["10.1.0.0/16", "fd00::/104"])["operator"] == {
        "clusterPoolIPv4PodCIDRList": ["10.1.0.0/16"], "clusterPoolIPv6PodCIDRList": ["fd00::/104"]}
    assert c.ipam_values("kubernetes", ["10.1.0.0/16"]) == {"mode": "kubernetes"}


def test_mesh_problems_catch_shared_ports_range_and_limit():
    settings = dict(SETTINGS, node_port=32100)
    members = [member("cluster01", 1, settings=settings), member("cluster02", 2, settings=settings),
               member("cluster03", 3, settings=dict(SETTINGS, node_port=40000))]
    expected = {"net-a": ["cluster01", "cluster02", "cluster03", "cluster04"]}
    problems = {p.code: p for p in c.mesh_problems(members, expected)}
    assert sorted(problems) == ["CILIUM_GROUP_MEMBER_LEFT_OUT", "CILIUM_NODE_PORT_CLASH", "CILIUM_NODE_PORT_OUT_OF_RANGE"]
    assert "cluster03: clustermesh-apiserver nodePort 40000 is outside" in problems["CILIUM_NODE_PORT_OUT_OF_RANGE"].message
    clash = problems["CILIUM_NODE_PORT_CLASH"]
    assert clash.clusters == ("cluster01", "cluster02") and clash.group == "net-a" and "32100" in clash.message
    assert problems["CILIUM_GROUP_MEMBER_LEFT_OUT"].clusters == ("cluster04",)
    assert all(p.fix and p.field for p in problems.values())
    assert c.mesh_problems(mesh(2), {"net-a": ["cluster01", "cluster02"]}) == []


def test_mesh_problems_refuse_a_service_type_the_chart_does_not_take():
    settings = dict(SETTINGS, service_type="ClusterIP")
    problems = c.mesh_problems([member("cluster01", 1, settings=settings), member("cluster02", 2)],
                               {"net-a": ["cluster01", "cluster02"]})
    assert [(p.code, p.clusters, p.field) for p in problems] == [
        ("CILIUM_SERVICE_TYPE_INVALID", ("cluster01",), "cilium_clustermesh_service_type")]
    assert problems[0].fix == "use NodePort or LoadBalancer"


def make_ca(tmp_path):
    key, crt = tmp_path / "ca.key", tmp_path / "ca.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(crt), "-subj", "/CN=test", "-days", "2"],
                   check=True, capture_output=True)
    return base64.b64encode(crt.read_bytes()).decode(), base64.b64encode(key.read_bytes()).decode()


def test_fingerprint_reads_pem_and_base64_alike(tmp_path):
    cert, _key = make_ca(tmp_path)
    pem = base64.b64decode(cert).decode()
    assert c.pem_fingerprint(cert) == c.pem_fingerprint(pem)
    # what a user compares it with
    openssl = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", str(tmp_path / "ca.crt")],
                             check=True, capture_output=True, text=True).stdout.strip()
    assert openssl.split("=", 1)[1] == c.pem_fingerprint(cert)
    assert c.pem_fingerprint("not a cert") is None and c.pem_fingerprint(None) is None


def test_choose_ca_adopts_one_refuses_two_and_obeys_the_source(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = dict(zip(("ca.crt", "ca.key"), make_ca(tmp_path / "a")))
    two = dict(zip(("ca.crt", "ca.key"), make_ca(tmp_path / "b")))
    assert c.choose_ca("net-a", {"cluster01": None, "cluster02": None}, None, None) == {"source": "files"}
    adopted = c.choose_ca("net-a", {"cluster01": None, "cluster02": one}, None, None)
    assert adopted["source"] == "cluster" and adopted["cluster"] == "cluster02" and adopted["key"] == one["ca.key"]
    with pytest.raises(c.CiliumError) as err:
        c.choose_ca("net-a", {"cluster01": one, "cluster02": two}, None, None)
    assert "CILIUM_CA_CONFLICT [group net-a: cluster01, cluster02] network group net-a: clusters already run " \
           "different Cilium CAs" in str(err.value)
    assert "field: cilium_ca_source_cluster; fix: set cilium_ca_source_cluster" in str(err.value)
    assert c.choose_ca("net-a", {"cluster01": one, "cluster02": two}, "cluster02", None)["cert"] == two["ca.crt"]
    with pytest.raises(c.CiliumError, match=r"CILIUM_CA_SOURCE_INVALID \[group net-a: cluster03\] network group net-a: "
                                            "cilium_ca_source_cluster is cluster03"):
        c.choose_ca("net-a", {"cluster01": one}, "cluster03", None)
    # a provided CA installs a group, or names the CA it runs; another one needs the rotation's stages
    assert c.choose_ca("net-a", {"cluster01": None}, None, {"cert": two["ca.crt"], "key": "y"}) == {"source": "provided"}
    assert c.choose_ca("net-a", {"cluster01": one}, None, {"cert": one["ca.crt"], "key": "y"}) == {"source": "provided"}
    with pytest.raises(c.CiliumError) as err:
        c.choose_ca("net-a", {"cluster01": one, "cluster02": one}, None, {"cert": two["ca.crt"], "key": "y"})
    assert "CILIUM_CA_PROVIDED_DIFFERS [group net-a: cluster01, cluster02] network group net-a: cilium_ca_cert is CA " \
           "%s, but the clusters run CA %s" % (c.pem_fingerprint(two["ca.crt"]), c.pem_fingerprint(one["ca.crt"])) \
        in str(err.value)
    assert "field: cilium_ca_cert; fix: move the group to that CA with playbooks/ca_rotate.yml" in str(err.value)


def test_mask_hides_the_key_but_shows_that_it_changed():
    before = {"tls": {"ca": {"cert": "c", "key": "SECRET1"}}}
    after = {"tls": {"ca": {"cert": "c", "key": "SECRET2"}}}
    masked_before, masked_after = c.mask_values(before, after)
    assert "SECRET" not in repr((masked_before, masked_after))
    assert masked_after["tls"]["ca"]["key"] == c.MASK_CHANGED
    assert c.mask_values(after, after)[1]["tls"]["ca"]["key"] == c.MASK
    assert before["tls"]["ca"]["key"] == "SECRET1"  # inputs untouched
    assert masked_after["tls"]["ca"]["cert"] == "<certificate unreadable>"


def test_mesh_report_finds_missing_unexpected_identity_and_ca():
    expected = {"cluster01": {"name": "cluster01", "id": 1, "group": "net-a", "peers": ["cluster02"]},
                "cluster02": {"name": "cluster02", "id": 2, "group": "net-a", "peers": ["cluster01"]}}
    good = {"cluster01": {"config": {"cluster-name": "cluster01", "cluster-id": "1"}, "peers": ["cluster02"],
                          "ca_fingerprint": "AA"},
            "cluster02": {"config": {"cluster-name": "cluster02", "cluster-id": "2"}, "peers": ["cluster01"],
                          "ca_fingerprint": "AA"}}
    assert c.mesh_report(expected, good)["ok"] is True
    bad = {"cluster01": dict(good["cluster01"], peers=["cluster02", "cluster03"]),
           "cluster02": dict(good["cluster02"], peers=[], ca_fingerprint="BB", config={"cluster-name": "x"})}
    report = c.mesh_report(expected, bad)
    assert report["ok"] is False
    assert report["clusters"]["cluster01"]["unexpected_peers"] == ["cluster03"]
    assert report["clusters"]["cluster02"]["missing_peers"] == ["cluster01"]
    assert report["clusters"]["cluster02"]["identity_ok"] is False
    assert not report["clusters"]["cluster01"]["ca_match"]
    assert any("MISMATCH" in line for line in c.render_report(report))


def _b64(text):
    return base64.b64encode(text.encode()).decode()


def test_clustermesh_secret_peers_count_only_keys_whose_config_names_endpoints():
    data = {
        "cluster02": _b64("endpoints:\n- https://cluster02.mesh.cilium.io:32002\ntrusted-ca-file: /x\n"),
        "cluster03": _b64("endpoints:\n- https://cluster03.mesh.cilium.io:32003\n"),
        "cluster02.etcd-client.crt": _b64("-----BEGIN CERTIFICATE-----"),
        # chart 1.20: peer addresses for the agents' /etc/hosts, not a peer
        "cilium-host-aliases": _b64('{"cluster02.mesh.cilium.io": ["172.30.2.11"]}'),
        "broken": "***",
    }
    assert c.clustermesh_secret_peers(data) == ["cluster02", "cluster03"]
    assert c.clustermesh_secret_peers(None) == []


def test_ca_files_and_the_cluster_readers_print_one_ca_with_one_fingerprint(tmp_path):
    """ca_files (the controller's copy, through cryptography) and the status report and
    cilium_mesh_info (the cluster's cilium-ca, stdlib) once printed one CA two ways."""
    from cryptography import x509  # pylint: disable=import-outside-toplevel
    from ansible_collections.multicloud.interconnect.plugins.module_utils import _ca  # pylint: disable=import-outside-toplevel
    cert, _key = make_ca(tmp_path)
    loaded = x509.load_pem_x509_certificate(base64.b64decode(cert))
    assert _ca.fingerprint(loaded) == c.pem_fingerprint(cert)


def test_status_and_mesh_info_fingerprint_a_ca_the_same_way_whatever_its_encoding():
    cert_b64 = _b64("-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n")
    pem = base64.b64decode(cert_b64).decode()
    assert c.pem_fingerprint(cert_b64) == c.pem_fingerprint(pem) == c.pem_fingerprint(pem.replace("\n", "\r\n"))


def group_ranges(*pairs):
    return [(name, c.parse_cidr(cidr)) for name, cidr in pairs]


NET_A_RANGES = group_ranges(("cluster01", "10.244.0.0/16"), ("cluster02", "10.245.0.0/16"),
                            ("cluster01", "fd00:10:244::/56"), ("cluster02", "fd00:10:245::/56"))


def test_tunnel_mode_needs_no_exemption_and_says_so_explicitly():
    values, problems = c.datapath("cluster01", "net-a", {}, NET_A_RANGES)
    assert (values, problems) == ({"routingMode": "tunnel"}, [])


def test_native_mode_exempts_a_range_spanning_every_pod_range_of_the_group():
    values, problems = c.datapath("cluster01", "net-a", {"routing_mode": "native"}, NET_A_RANGES)
    assert problems == []
    assert values == {"routingMode": "native", "ipv4NativeRoutingCIDR": "10.244.0.0/15",
                      "ipv6NativeRoutingCIDR": "fd00:10:244::/47"}


def test_native_mode_refuses_a_given_range_that_misses_a_peer():
    _values, problems = c.datapath("cluster01", "net-a", {"routing_mode": "native",
                                                          "native_routing_cidrs": ["10.244.0.0/16"]}, NET_A_RANGES)
    assert [(p.code, p.clusters, p.field) for p in problems] == [
        ("CILIUM_NATIVE_ROUTING_CIDR_UNCOVERED", ("cluster01", "cluster02"), "cilium_native_routing_cidrs")]
    assert "10.245.0.0/16" in problems[0].message


def test_native_mode_refuses_a_derived_range_that_would_exempt_the_internet_unless_ip_masq_agent():
    ranges = group_ranges(("cluster01", "10.244.0.0/16"), ("cluster02", "172.16.0.0/16"))
    _values, problems = c.datapath("cluster02", "net-a", {"routing_mode": "native"}, ranges)
    assert [p.code for p in problems] == ["CILIUM_NATIVE_ROUTING_CIDR_TOO_WIDE"]
    assert "0.0.0.0/0" in problems[0].message and "cilium_ip_masq_agent" in problems[0].fix
    values, problems = c.datapath("cluster02", "net-a", {"routing_mode": "native", "ip_masq_agent": "True"}, ranges)
    assert problems == [] and "ipv4NativeRoutingCIDR" not in values
    assert values["bpf"] == {"masquerade": True}
    assert values["ipMasqAgent"] == {"enabled": True, "config": {"nonMasqueradeCIDRs": ["10.244.0.0/16", "172.16.0.0/16"],
                                                                 "masqLinkLocal": False}}


def test_mixed_or_unknown_routing_modes_are_refused_for_the_group():
    problems = c.datapath_problems("net-a", {"cluster01": {"routing_mode": "native"}, "cluster02": {}}, NET_A_RANGES)
    assert [(p.code, p.clusters) for p in problems] == [("CILIUM_ROUTING_MODE_MIXED", ("cluster01", "cluster02"))]
    problems = c.datapath_problems("net-a", {"cluster01": {"routing_mode": "vxlan"}}, NET_A_RANGES)
    assert [(p.code, p.field) for p in problems] == [("CILIUM_ROUTING_MODE_INVALID", "cilium_routing_mode")]


def test_render_exempts_the_group_pod_ranges_not_other_groups():
    settings = dict(SETTINGS, routing_mode="native", ip_masq_agent=True)
    layout = ((1, "net-a", "10.244.0.0/16"), (2, "net-a", "10.245.0.0/16"), (3, "net-b", "10.246.0.0/16"))
    members = [c.member(cluster_from_vars("cluster%02d" % i, {"cluster_id": i, "cluster_network_group": group,
                                                              "cluster_pod_cidrs": [cidr]}),
                        settings, nodes("172.30.%d" % i), None) for i, group, cidr in layout]
    values = c.render(members[0], members, settings, None, None, "1.20.2")["values"]
    assert values["routingMode"] == "native" and values["ipv4NativeRoutingCIDR"] == "10.244.0.0/15"
    assert values["ipMasqAgent"]["config"]["nonMasqueradeCIDRs"] == ["10.244.0.0/16", "10.245.0.0/16"]
    with pytest.raises(c.CiliumError, match="CILIUM_NATIVE_ROUTING_CIDR_UNCOVERED"):
        c.render(members[0], members, dict(settings, native_routing_cidrs=["10.244.0.0/16"]), None, None, "1.20.2")


def entry(name, given=None, running=None, cilium=True, group="net-a"):
    return {"inventory_name": name, "name": name, "group": group, "cilium": cilium, "given": given, "running": running}


def test_cluster_ids_come_from_the_inventory_then_the_cluster_then_the_lowest_free():
    ids, problems = c.allocate_ids([
        entry("a"),                      # new: lowest free
        entry("b", given=1),             # pinned
        entry("c", running=2),           # keeps what it runs with
        entry("k", given=3, cilium=False),  # another technique's ID is taken too
        entry("d"),                      # new
    ], 255)
    assert problems == []
    assert ids == {"a": {"id": 4, "source": "allocated"}, "b": {"id": 1, "source": "inventory"},
                   "c": {"id": 2, "source": "running"}, "d": {"id": 5, "source": "allocated"}}
    assert c.id_report(ids, {"a": "alpha"})[0] == "alpha: cluster ID 4 (allocated: lowest free)"


def test_adding_a_cluster_never_renumbers_another_and_a_rerun_keeps_every_id():
    first = c.allocate_ids([entry("a"), entry("b")], 255)[0]
    assert {n: e["id"] for n, e in first.items()} == {"a": 1, "b": 2}
    # the next run: both run their IDs; a new cluster listed first in the inventory
    again, problems = c.allocate_ids([entry("new"), entry("a", running=1), entry("b", running=2)], 255)
    assert problems == []
    assert {n: (e["id"], e["source"]) for n, e in again.items()} == {
        "new": (3, "allocated"), "a": (1, "running"), "b": (2, "running")}
    rerun = c.allocate_ids([entry("new", running=3), entry("a", running=1), entry("b", running=2)], 255)[0]
    assert {n: e["id"] for n, e in rerun.items()} == {"new": 3, "a": 1, "b": 2}


def test_a_running_id_that_the_inventory_gives_another_cluster_is_refused():
    ids, problems = c.allocate_ids([entry("a", running=2), entry("b", given=2)], 255)
    assert [(p.code, p.clusters, p.field) for p in problems] == [("ID_RUNNING_TAKEN", ("a", "b"), "cluster_id")]
    assert "cluster a runs with cluster ID 2 and sets no cluster_id, but b holds that ID" in problems[0].message
    assert "a" not in ids


def test_no_free_id_left_is_refused():
    ids, problems = c.allocate_ids([entry("a"), entry("b"), entry("c")], 2)
    assert [(p.code, p.clusters) for p in problems] == [("ID_EXHAUSTED", ("c",))]
    assert {n: e["id"] for n, e in ids.items()} == {"a": 1, "b": 2}
