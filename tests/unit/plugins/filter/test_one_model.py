"""Every planner reads who the clusters are from one model of the inventory.

The same inventory goes through validation, the Cilium, Kosmos and Istio planners and the Jinja
filters the roles use; each must name the clusters, their groups and techniques alike. Each
planner built its own picture before, and the copies drifted.
"""

from __future__ import annotations

from ansible_collections.multicloud.interconnect.plugins.filter import cilium, istio, kosmos, topology
from ansible_collections.multicloud.interconnect.plugins.module_utils._topology import topology_from_hostvars, validate

# Host names differ from cluster names; technique left out (Cilium), null (Cilium) and Kosmos.
HOSTVARS = {
    "h1": {"cluster_name": "alpha", "cluster_id": 1, "cluster_network_group": "net-a",
           "cluster_pod_cidrs": ["10.244.0.0/16"], "cluster_service_cidrs": ["10.96.0.0/16"],
           "cluster_eastwest_gateway": {"service_type": "NodePort"}, "ansible_connection": "local"},
    "h2": {"cluster_name": "beta", "cluster_id": 2, "cluster_network_group": "net-a", "cluster_cni": None,
           "cluster_pod_cidrs": ["10.245.0.0/16"], "cluster_service_cidrs": ["10.97.0.0/16"]},
    "h4": {"cluster_name": "delta", "cluster_id": 4, "cluster_network_group": "net-b", "cluster_cni": "kosmos",
           "cluster_pod_cidrs": ["10.247.0.0/16"], "cluster_service_cidrs": ["10.99.0.0/16"]},
    "h3": {"cluster_name": "gamma", "cluster_id": 3, "cluster_network_group": "net-b", "cluster_cni": "kosmos",
           "cluster_pod_cidrs": ["10.246.0.0/16"], "cluster_service_cidrs": ["10.98.0.0/16"],
           "kosmos_network_type": "p2p"},
}
ORDER = ["h1", "h2", "h4", "h3"]  # the inventory's order, not sorted
NAMES = {"h1": "alpha", "h2": "beta", "h3": "gamma", "h4": "delta"}
FILTERS = {}
for plugin in (cilium, istio, kosmos, topology):
    FILTERS.update(plugin.FilterModule().filters())
SETTINGS = {"service_type": "NodePort", "node_port_base": 32000}


def test_the_model_keeps_inventory_order_and_the_contract_defaults():
    model = topology_from_hostvars(HOSTVARS, ORDER)
    assert list(model.clusters) == ORDER
    assert {c.inventory_name: c.name for c in model.clusters.values()} == NAMES
    assert {g: [c.name for c in cs] for g, cs in model.members(cni="cilium").items()} == {"net-a": ["alpha", "beta"]}
    assert {g: [c.name for c in cs] for g, cs in model.members(cni="kosmos").items()} == {"net-b": ["delta", "gamma"]}
    assert model.clusters["h3"].settings == {"kosmos_network_type": "p2p"}
    assert model.by_name("gamma").inventory_name == "h3" and model.by_name("h3") is None


def test_every_planner_names_the_clusters_alike():
    report = validate(topology_from_hostvars(HOSTVARS, ORDER))
    assert report.ok, report.render()
    assert sorted(report.cluster_summary()) == sorted(NAMES.values())
    for host, name in NAMES.items():
        assert FILTERS["cluster_name"](host, HOSTVARS) == name
    assert {h: FILTERS["cluster_cni"](h, HOSTVARS) for h in ORDER} == {
        "h1": "cilium", "h2": "cilium", "h3": "kosmos", "h4": "kosmos"}
    member = FILTERS["cilium_member"]("h2", HOSTVARS, SETTINGS, [], None)
    assert (member["name"], member["inventory_name"], member["id"], member["group"]) == ("beta", "h2", 2, "net-a")
    assert member["node_port"] == 32002
    plan = FILTERS["kosmos_plan"](HOSTVARS, ORDER, {"kosmos_network_type": "gateway"})
    # delta comes first in the inventory: it hosts the group; gamma's p2p disagrees with delta's default.
    assert plan["groups"]["net-b"]["host"] == "delta"
    assert [(p["code"], p["clusters"]) for p in plan["errors"]] == [
        ("KOSMOS_GROUP_SETTING_MISMATCH", ["delta", "gamma"])]
    assert sorted(plan["known_clusters"]) == sorted(NAMES.values())
    assert sorted(FILTERS["istio_interconnect_clusters"](HOSTVARS, ORDER)) == sorted(NAMES.values())


def test_a_cilium_member_left_out_of_the_run_is_named_by_its_host():
    facts = {h: dict(v) for h, v in HOSTVARS.items()}
    facts["h1"]["__cilium_member"] = FILTERS["cilium_member"]("h1", HOSTVARS, SETTINGS, [], None)
    text = "\n".join(FILTERS["cilium_mesh_problems"](facts, ["h1"], ORDER))
    assert "CILIUM_GROUP_MEMBER_LEFT_OUT [group net-a: h2]" in text and text.count("ERROR") == 1, text
    # Kosmos clusters of another group are not Cilium members.
    assert "h3" not in text and "h4" not in text


def test_ca_plan_reads_the_group_from_the_model():
    facts = {h: dict(v) for h, v in HOSTVARS.items()}
    facts["h2"]["__cilium_ca_secret"] = {"ca.crt": "", "ca.key": ""}
    assert FILTERS["cilium_ca_plan"](facts, ORDER, "net-a") == {"source": "files"}
    facts["h1"]["__cilium_ca_plan"] = {"source": "files"}
    assert FILTERS["cilium_ca_file_groups"](facts, ORDER) == ["net-a"]


def test_the_status_report_and_cilium_mesh_info_count_cilium_peers_alike():
    """Both read one cilium-clustermesh Secret and judge its peers against the same expectation.

    They once disagreed: cilium_mesh_info dropped the cluster's own key and expected the rendered
    values' peers, the status report kept the own key and expected the model's peers.
    """
    import base64  # pylint: disable=import-outside-toplevel

    from ansible_collections.multicloud.interconnect.plugins.module_utils import _cilium, _status  # pylint: disable=import-outside-toplevel

    def etcd(peer):
        return base64.b64encode(("endpoints:\n- https://%s.mesh.cilium.io:2379\n" % peer).encode()).decode()

    # alpha's Secret: its own key, a peer of another group (stale), no key for beta (missing).
    secret = {"alpha": etcd("alpha"), "gamma": etcd("gamma"), "gamma.etcd-client.crt": "eA=="}
    hostvars = {h: dict(v, __cilium_member={"id": v["cluster_id"]}) for h, v in HOSTVARS.items()}
    model = topology_from_hostvars(hostvars, ORDER)

    seen = _status.Observed(reachable=True, cilium_peers=_cilium.clustermesh_secret_peers(secret, "alpha"))
    l3 = _status.build_status(model, {"alpha": seen})["clusters"]["alpha"]["l3"]

    spec = FILTERS["cilium_mesh_spec"](hostvars, ORDER)
    observed = {"h1": {"config": {"cluster-name": "alpha", "cluster-id": "1"}, "ca_fingerprint": "AA",
                       "peers": _cilium.clustermesh_secret_peers(secret, spec["h1"]["name"])}}
    info = _cilium.mesh_report({"h1": spec["h1"]}, observed)["clusters"]["h1"]

    assert (l3["configured"], l3["missing"], l3["stale"]) == (["gamma"], ["beta"], ["gamma"])
    assert (info["configured_peers"], info["missing_peers"], info["unexpected_peers"]) == \
        (l3["configured"], l3["missing"], l3["stale"])
