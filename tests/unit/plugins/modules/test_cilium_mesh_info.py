"""main() of cilium_mesh_info against stubbed cluster reads."""

from __future__ import annotations

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


class FakeSecret:
    def __init__(self, data):
        self.data = data


def test_observe_reads_peer_keys_only(monkeypatch):
    class Core:
        def __init__(self, api):
            pass

        def read_namespaced_config_map(self, name, namespace):
            return FakeSecret({"cluster-name": "cluster01", "cluster-id": "1"})

        def read_namespaced_secret(self, name, namespace):
            if name == "cilium-clustermesh":
                return FakeSecret({"cluster02": "x", "cluster02.etcd-client.key": "k"})
            raise cilium_mesh_info.ApiException(status=404)

    from kubernetes import client as k8s_client
    monkeypatch.setattr(k8s_client, "CoreV1Api", Core)
    monkeypatch.setattr(cilium_mesh_info, "api_client", lambda *a: None)
    result = cilium_mesh_info.observe("cluster01", {}, "kube-system")
    assert result == {"config": {"cluster-name": "cluster01", "cluster-id": "1"}, "peers": ["cluster02"],
                      "ca_fingerprint": None}
