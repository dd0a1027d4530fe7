"""Reading what kvstoremesh and istiod report: metrics text to per-remote-cluster states."""

from __future__ import annotations

from ansible_collections.multicloud.interconnect.plugins.module_utils import _runtime as r

# Shapes as the components print them (label order and extra labels vary between releases).
KVSTOREMESH = """# HELP cilium_kvstoremesh_remote_cluster_readiness_status The readiness status of the remote cluster
# TYPE cilium_kvstoremesh_remote_cluster_readiness_status gauge
cilium_kvstoremesh_remote_cluster_readiness_status{source_cluster="cluster01",target_cluster="cluster02"} 1
cilium_kvstoremesh_remote_cluster_readiness_status{source_cluster="cluster01",target_cluster="cluster05"} 0
cilium_kvstoremesh_remote_clusters{source_cluster="cluster01"} 2
cilium_kvstoremesh_remote_cluster_failures{target_cluster="cluster05"} 3
"""
ISTIOD = """# TYPE istiod_remote_cluster_sync_status gauge
istiod_remote_cluster_sync_status{cluster="cluster03",cluster_type="remote",status="synced"} 1
istiod_remote_cluster_sync_status{cluster="cluster03",cluster_type="remote",status="closed"} 0
istiod_remote_cluster_sync_status{cluster="cluster04",cluster_type="remote",status="timeout"} 1
istiod_remote_cluster_sync_status{cluster="cluster04",cluster_type="remote",status="synced"} 0
istiod_managed_clusters{cluster_type="remote"} 2
"""


def test_parse_metrics_reads_labels_values_and_skips_comments():
    samples = r.parse_metrics('a_total{x="1",y="q\\"uote"} 2.5\n# c\nb 3\nbad line\n')
    assert samples == [("a_total", {"x": "1", "y": 'q"uote'}, 2.5), ("b", {}, 3.0)]


def test_kvstoremesh_readiness_per_target_cluster():
    assert r.kvstoremesh_remotes(KVSTOREMESH) == {"cluster02": True, "cluster05": False}


def test_istiod_state_is_the_status_whose_value_is_one():
    assert r.istiod_remotes(ISTIOD) == {"cluster03": "synced", "cluster04": "timeout"}


def test_verdict_connected_not_connected_unknown():
    ok = r.verdict("kvstoremesh", ["cluster02"], {"cluster02": True})
    assert ok["state"] == r.CONNECTED and ok["connected"] == ["cluster02"] and ok["reason"] is None
    down = r.verdict("kvstoremesh", ["cluster02", "cluster05"], r.kvstoremesh_remotes(KVSTOREMESH))
    assert down["state"] == r.NOT_CONNECTED and down["not_connected"] == ["cluster05"]
    assert down["reason"] == "cluster05 not ready"
    unknown = r.verdict("istiod", ["cluster03"], None, "no Running istiod Pod")
    assert unknown["state"] == r.UNKNOWN and unknown["reason"] == "no Running istiod Pod" and not unknown["connected"]


def test_link_state_needs_both_sides():
    a = r.verdict("kvstoremesh", ["b"], {"b": True})
    b = r.verdict("kvstoremesh", ["a"], {"a": False})
    assert r.link_state((a, "b"), (b, "a"))[0] == r.NOT_CONNECTED
    assert r.link_state((a, "b"), (r.verdict("kvstoremesh", ["a"], {"a": True}), "a")) == (r.CONNECTED, None)
    state, reason = r.link_state((a, "b"), (r.verdict("kvstoremesh", ["a"], None, "503"), "a"))
    assert state == r.UNKNOWN and "503" in reason
    # One side down wins over the other side unknown.
    assert r.link_state((r.verdict("kvstoremesh", ["a"], None, "x"), "a"), (b, "a"))[0] == r.NOT_CONNECTED


def test_metrics_port_follows_the_chart():
    pod = {"spec": {"containers": [{"name": "kvstoremesh", "ports": [{"name": "kvmesh-metrics", "containerPort": 9999}]}]}}
    assert r.pod_metrics_port(pod, "kvstoremesh", "kvmesh-metrics", 9964) == 9999
    assert r.pod_metrics_port({"spec": {}}, "kvstoremesh", "kvmesh-metrics", 9964) == 9964
