"""The status report compares observed state with the inventory; drift must show, and only drift."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from ansible_collections.multicloud.interconnect.plugins.module_utils import _status
from ansible_collections.multicloud.interconnect.plugins.module_utils._status import (
    Observed,
    build_status,
    render_svg,
    render_table,
)
from ansible_collections.multicloud.interconnect.plugins.module_utils._topology import topology_from_inventory

from .test_topology import GROUPS, demo


def converged():
    synced = {"cluster01": "synced", "cluster02": "synced"}
    return {
        "cluster01": Observed(cilium_cluster_name="cluster01", cilium_cluster_id="1", cilium_peers=["cluster02"],
                              cilium_ca_fingerprint="aa", istio_remote_secrets=["cluster03", "cluster04"],
                              gateway_addresses=["nodePort 31443"], kvstoremesh_remotes={"cluster02": True},
                              istiod_remotes={"cluster03": "synced", "cluster04": "synced"}),
        "cluster02": Observed(cilium_cluster_name="cluster02", cilium_cluster_id="2", cilium_peers=["cluster01"],
                              cilium_ca_fingerprint="aa", istio_remote_secrets=["cluster03", "cluster04"],
                              kvstoremesh_remotes={"cluster01": True},
                              istiod_remotes={"cluster03": "synced", "cluster04": "synced"}),
        "cluster03": Observed(kosmos_clusters={"cluster03": "p2p", "cluster04": "p2p"},
                              istio_remote_secrets=["cluster01", "cluster02"], gateway_addresses=["192.0.2.7:15443"],
                              istiod_remotes=dict(synced)),
        "cluster04": Observed(istio_remote_secrets=["cluster01", "cluster02"], istiod_remotes=dict(synced)),
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
    assert status["connected"] is True
    assert status["clusters"]["cluster01"]["connection"]["cilium"]["connected"] == ["cluster02"]
    assert status["clusters"]["cluster03"]["connection"]["istio"]["connected"] == ["cluster01", "cluster02"]


def test_a_peer_kvstoremesh_reports_not_ready_is_not_connected_even_with_every_object_in_place():
    observed = converged()
    observed["cluster02"].kvstoremesh_remotes = {"cluster01": False}
    status = status_of(observed)
    link = next(x for x in status["links"] if x["group"] == "net-a")
    assert (link["status"], link["connection"]) == ("not connected", "not connected")
    assert "kvstoremesh reports cluster01 not ready" in link["reason"]
    assert status["connected"] is False and not status["healthy"]
    assert any("NOT CONNECTED" in line for line in render_table(status))


def test_a_peer_kvstoremesh_does_not_know_is_not_connected():
    observed = converged()
    observed["cluster01"].kvstoremesh_remotes = {}
    status = status_of(observed)
    verdict = status["clusters"]["cluster01"]["connection"]["cilium"]
    assert verdict["state"] == "not connected" and verdict["not_connected"] == ["cluster02"]
    assert "cluster02 not reported" in verdict["reason"]


def test_a_component_that_cannot_be_read_is_unknown_never_ok():
    observed = converged()
    observed["cluster02"].kvstoremesh_remotes = None
    observed["cluster02"].kvstoremesh_reason = "no Running kvstoremesh Pod (k8s-app=clustermesh-apiserver)"
    observed["cluster04"].istiod_remotes = None
    observed["cluster04"].istiod_reason = "istiod metrics not readable: 503"
    status = status_of(observed)
    links = {(x["from"], x["to"]): x for x in status["links"]}
    assert links[("cluster01", "cluster02")]["status"] == "unknown"
    assert "no Running kvstoremesh Pod" in links[("cluster01", "cluster02")]["reason"]
    assert links[("net-a", "net-b")]["status"] == "unknown"
    assert "istiod metrics not readable" in links[("net-a", "net-b")]["reason"]
    assert status["connected"] is None
    assert "kvstoremesh ?" in "\n".join(render_table(status))
    assert 'stroke="#757575"' in render_svg(status)


def test_istiod_that_does_not_sync_a_remote_cluster_disconnects_the_groups():
    observed = converged()
    observed["cluster01"].istiod_remotes = {"cluster03": "synced", "cluster04": "timeout"}
    status = status_of(observed)
    link = next(x for x in status["links"] if x["group"] is None)
    assert link["status"] == "not connected"
    assert "istiod reports cluster04 timeout" in link["reason"]
    # A remote cluster istiod still has while the inventory removed it is named too.
    observed["cluster01"].istiod_remotes = {"cluster03": "synced", "cluster04": "synced", "cluster09": "synced"}
    verdict = status_of(observed)["clusters"]["cluster01"]["connection"]["istio"]
    assert verdict["unexpected"] == ["cluster09"] and verdict["state"] == "connected"


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
    assert table[-1] == "overall: healthy; components report: every link connected"
    svg = render_svg(status, note="simulated Pods")
    root = ET.fromstring(svg)
    text = " ".join(node.text or "" for node in root.iter("{http://www.w3.org/2000/svg}text"))
    for name in ("net-a", "net-b", "cluster01", "cluster04", "istio east-west :15443", "simulated Pods"):
        assert name in text


def test_report_files_are_written_only_when_their_content_differs(tmp_path):
    out = tmp_path / "out"
    files = _status.report_files({"healthy": True}, "<svg/>")
    assert _status.write_files(str(out), files, check_mode=True) == [str(out / "status.json"), str(out / "topology.svg")]
    assert not out.exists()  # check mode writes nothing
    assert _status.write_files(str(out), files, check_mode=False) == [str(out / "status.json"), str(out / "topology.svg")]
    assert json.loads((out / "status.json").read_text(encoding="utf-8")) == {"healthy": True}
    assert oct((out / "topology.svg").stat().st_mode & 0o777) == "0o644"
    assert _status.write_files(str(out), files, check_mode=False) == []
    changed = _status.report_files({"healthy": False}, "<svg/>")
    assert _status.write_files(str(out), changed, check_mode=False) == [str(out / "status.json")]
    assert sorted(p.name for p in out.iterdir()) == ["status.json", "topology.svg"]  # no temporary file left


def test_a_cluster_id_left_to_the_cilium_stage_is_shown_as_running_not_as_drift():
    inventory = demo()
    inventory["cluster01"].pop("cluster_id")
    status = build_status(topology_from_inventory(inventory, GROUPS), converged())
    entry = status["clusters"]["cluster01"]
    assert (entry["cluster_id"], entry["cluster_id_source"], entry["drift"]) == ("1", "allocated", [])
    assert status["clusters"]["cluster02"]["cluster_id_source"] == "inventory"
    table = render_table(status)
    assert any(line.startswith("cluster01") and " 1* " in line for line in table), table
    assert "* cluster ID set by the cilium stage (no cluster_id in the inventory)" in table
