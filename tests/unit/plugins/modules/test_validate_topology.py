"""main() of validate_topology, driven through AnsibleModule with patched arguments."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.multicloud.interconnect.plugins.modules import validate_topology

from ..module_utils.test_topology import GROUPS, demo


def run(args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            validate_topology.main()
    return exit_info.value.code, json.loads(capsys.readouterr().out)


def test_valid_topology_exits_ok_and_unchanged(capsys):
    code, result = run({"clusters": demo(), "interconnect_groups": GROUPS}, capsys)
    assert code == 0
    assert result["ok"] is True and result["changed"] is False
    assert sorted(result["clusters"]) == ["cluster01", "cluster02", "cluster03", "cluster04"]
    assert result["groups"]["net-a"]["cni"] == "cilium"
    assert result["message"].startswith("Topology is valid")


def test_errors_fail_with_every_code_in_the_message(capsys):
    clusters = demo()
    clusters["cluster02"]["cluster_id"] = 1
    clusters["cluster02"]["cluster_pod_cidrs"] = ["10.244.0.0/16"]
    code, result = run({"clusters": clusters, "interconnect_groups": GROUPS}, capsys)
    assert code == 1
    assert result["failed"] is True
    assert "ID_DUPLICATE" in result["msg"] and "CIDR_OVERLAP_IN_GROUP" in result["msg"]
    assert "nothing was changed" in result["msg"]
    assert {e["code"] for e in result["errors"]} == {"ID_DUPLICATE", "CIDR_OVERLAP_IN_GROUP"}


def test_fail_on_error_false_returns_the_errors(capsys):
    clusters = demo()
    clusters["cluster02"]["cluster_id"] = 1
    code, result = run({"clusters": clusters, "interconnect_groups": GROUPS, "fail_on_error": False}, capsys)
    assert code == 0
    assert result["ok"] is False
    assert [e["code"] for e in result["errors"]] == ["ID_DUPLICATE"]


def test_eni_warning_does_not_fail_and_is_reported(capsys):
    clusters = demo()
    clusters["cluster01"]["cluster_id"] = 130
    clusters["cluster01"]["cluster_ipam_mode"] = "eni"
    code, result = run({"clusters": clusters, "interconnect_groups": GROUPS, "_ansible_check_mode": True}, capsys)
    assert code == 0
    assert result["ok"] is True
    assert result["findings"]["warnings"][0]["clusters"] == ["cluster01"]
