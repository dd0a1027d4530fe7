"""main() of cilium_mesh_info against stubbed cluster reads."""

from __future__ import annotations

import base64
import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.multicloud.interconnect.plugins.modules import cilium_mesh_info

CLUSTERS = {"cluster01": {"name": "cluster01", "id": 1, "group": "net-a", "peers": ["cluster02"]},
            "cluster02": {"name": "cluster02", "id": 2, "group": "net-a", "peers": ["cluster01"]}}


def run(args, capsys, observed, monkeypatch):
    monkeypatch.setattr(cilium_mesh_info, "observe", lambda name, spec, namespace: observed[name])
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            cilium_mesh_info.main()
    return exit_info.value.code, json.loads(capsys.readouterr().out)


def seen(name, cid, peers, ca="AA"):
    return {"config": {"cluster-name": name, "cluster-id": str(cid)}, "peers": peers, "ca_fingerprint": ca}


def test_matching_mesh_is_ok(capsys, monkeypatch):
    observed = {"cluster01": seen("cluster01", 1, ["cluster02"]), "cluster02": seen("cluster02", 2, ["cluster01"])}
    code, result = run({"clusters": CLUSTERS}, capsys, observed, monkeypatch)
    assert code == 0 and result["ok"] is True and result["changed"] is False
    assert result["clusters"]["cluster02"]["configured_peers"] == ["cluster01"]


def test_mismatch_fails_naming_the_cluster_unless_told_not_to(capsys, monkeypatch):
    observed = {"cluster01": seen("cluster01", 1, ["cluster02"]), "cluster02": seen("cluster02", 2, [], ca="BB")}
    code, result = run({"clusters": CLUSTERS}, capsys, observed, monkeypatch)
    assert code == 1 and "differs from the inventory on cluster01, cluster02" in result["msg"]
    code, result = run({"clusters": CLUSTERS, "fail_on_mismatch": False}, capsys, observed, monkeypatch)
    assert code == 0 and result["clusters"]["cluster02"]["missing_peers"] == ["cluster01"]


def test_observe_reads_peer_keys_only(monkeypatch):
    objects = {
        "/api/v1/namespaces/kube-system/configmaps/cilium-config": {"data": {"cluster-name": "cluster01", "cluster-id": "1"}},
        # As the 1.20 chart renders it: a peer config, its TLS material, the agents' host aliases.
        "/api/v1/namespaces/kube-system/secrets/cilium-clustermesh": {"data": {
            "cluster02": base64.b64encode(b"endpoints:\n- https://cluster02.mesh.cilium.io:32002\n").decode(),
            "cluster02.etcd-client.key": "aw==",
            "cilium-host-aliases": base64.b64encode(b'{"cluster02.mesh.cilium.io": []}').decode()}},
    }
    paths = []

    class Api:
        def get(self, what, path):
            paths.append(path)
            return objects.get(path)

    monkeypatch.setattr(cilium_mesh_info, "connect", lambda *a, **kw: Api())
    result = cilium_mesh_info.observe("cluster01", {}, "kube-system")
    assert result == {"config": {"cluster-name": "cluster01", "cluster-id": "1"}, "peers": ["cluster02"],
                      "ca_fingerprint": None, "ca_trust": []}
    assert sorted(paths) == sorted(["/api/v1/namespaces/kube-system/configmaps/cilium-config",
                                    "/api/v1/namespaces/kube-system/secrets/cilium-clustermesh",
                                    "/api/v1/namespaces/kube-system/secrets/cilium-ca",
                                    "/api/v1/namespaces/kube-system/configmaps/cilium-root-ca.crt"])


def test_connection_waits_for_kvstoremesh_and_fails_when_asked(capsys, monkeypatch):
    observed = {"cluster01": seen("cluster01", 1, ["cluster02"]), "cluster02": seen("cluster02", 2, ["cluster01"])}
    reads = {"cluster01": [({"cluster02": False}, None), ({"cluster02": True}, None)],
             "cluster02": [({"cluster01": True}, None)]}
    monkeypatch.setattr(cilium_mesh_info, "connect", lambda name, kubeconfig, context, timeout: name)
    monkeypatch.setattr(cilium_mesh_info, "kvstoremesh_report",
                        lambda api, namespace: reads[api].pop(0) if len(reads[api]) > 1 else reads[api][0])
    monkeypatch.setattr(cilium_mesh_info.time, "sleep", lambda seconds: None)
    code, result = run({"clusters": CLUSTERS, "wait_connected": 30, "fail_on_not_connected": True}, capsys, observed,
                       monkeypatch)
    assert code == 0 and result["connected"] is True
    assert result["clusters"]["cluster01"]["connection"]["connected"] == ["cluster02"]
    # A kvstoremesh that never reports its peer, and one that cannot be read.
    reads.update({"cluster01": [({}, None)], "cluster02": [(None, "no Running kvstoremesh Pod")]})
    code, result = run({"clusters": CLUSTERS, "fail_on_not_connected": True}, capsys, observed, monkeypatch)
    assert code == 1 and result["connected"] is False
    assert "does not report every peer ready on cluster01, cluster02" in result["msg"]
    assert "cluster01: kvstoremesh not connected: cluster02 not reported" in result["report"]
    assert result["clusters"]["cluster02"]["connection"]["state"] == "unknown"
    code, result = run({"clusters": CLUSTERS}, capsys, observed, monkeypatch)
    assert code == 0 and result["connected"] is False  # reported, not fatal, unless asked
