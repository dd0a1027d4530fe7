"""The status report compares observed state with the inventory; drift must show, and only drift."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ansible_collections.multicloud.interconnect.plugins.module_utils._status import (
    Observed,
    build_status,
    render_svg,
    render_table,
)
from ansible_collections.multicloud.interconnect.plugins.module_utils._topology import topology_from_inventory

from .test_topology import GROUPS, demo


def converged():
    return {
        "cluster01": Observed(cilium_cluster_name="cluster01", cilium_cluster_id="1", cilium_peers=["cluster02"],
                              cilium_ca_fingerprint="aa", istio_remote_secrets=["cluster03", "cluster04"],
                              gateway_addresses=["nodePort 31443"]),
        "cluster02": Observed(cilium_cluster_name="cluster02", cilium_cluster_id="2", cilium_peers=["cluster01"],
                              cilium_ca_fingerprint="aa", istio_remote_secrets=["cluster03", "cluster04"]),
        "cluster03": Observed(kosmos_clusters={"cluster03": "p2p", "cluster04": "p2p"},
                              istio_remote_secrets=["cluster01", "cluster02"], gateway_addresses=["192.0.2.7:15443"]),
        "cluster04": Observed(istio_remote_secrets=["cluster01", "cluster02"]),
    }


def status_of(observed):
    return build_status(topology_from_inventory(demo(), GROUPS), observed)


def test_converged_topology_is_healthy():
    status = status_of(converged())
    assert status["healthy"], {n: c["drift"] for n, c in status["clusters"].items()}
    assert status["groups"]["net-a"]["shared_ca"] is True
    assert status["clusters"]["cluster03"]["kosmos"]["network_type"] == "p2p"
    assert {(link["from"], link["to"], link["status"]) for link in status["links"]} == {
        ("cluster01", "cluster02", "ok"), ("cluster03", "cluster04", "ok"), ("net-a", "net-b", "ok")}


def test_missing_and_stale_peers_are_drift():
    observed = converged()
    observed["cluster01"].cilium_peers = ["cluster09"]
    observed["cluster02"].istio_remote_secrets = ["cluster03"]
    status = status_of(observed)
    assert not status["healthy"]
    assert status["clusters"]["cluster01"]["l3"]["missing"] == ["cluster02"]
    assert "stale peer cluster09" in status["clusters"]["cluster01"]["drift"]
    assert "missing remote secret cluster04" in status["clusters"]["cluster02"]["drift"]
    assert {link["status"] for link in status["links"] if link["group"] == "net-a"} == {"drift"}


def test_wrong_cilium_identity_and_ca_are_drift():
    observed = converged()
    observed["cluster02"].cilium_cluster_id = "7"
    observed["cluster02"].cilium_ca_fingerprint = "bb"
    status = status_of(observed)
    assert "cilium-config cluster-id is 7" in status["clusters"]["cluster02"]["drift"]
    assert status["groups"]["net-a"]["shared_ca"] is False
    assert "Cilium CA differs within net-a" in status["clusters"]["cluster01"]["drift"]


def test_unreachable_cluster_is_reported_not_hidden():
    observed = converged()
    observed["cluster04"] = Observed(reachable=False, error="cluster cluster04: API server unreachable")
    status = status_of(observed)
    assert status["clusters"]["cluster04"]["drift"] == ["unreachable: cluster cluster04: API server unreachable"]
    assert not status["groups"]["net-b"]["healthy"]


def test_kosmos_member_not_joined():
    observed = converged()
    observed["cluster03"].kosmos_clusters = {"cluster03": "gateway"}
    status = status_of(observed)
    assert "not joined to ClusterLink" in status["clusters"]["cluster04"]["drift"]


def test_table_and_svg_render_every_cluster_and_group():
    status = status_of(converged())
    table = render_table(status)
    assert table[0].split()[0] == "CLUSTER"
    assert sum(1 for line in table if line.startswith("cluster0")) == 4
    assert table[-1] == "overall: healthy"
    svg = render_svg(status, note="simulated Pods")
    root = ET.fromstring(svg)
    text = " ".join(node.text or "" for node in root.iter("{http://www.w3.org/2000/svg}text"))
    for name in ("net-a", "net-b", "cluster01", "cluster04", "istio east-west :15443", "simulated Pods"):
        assert name in text
