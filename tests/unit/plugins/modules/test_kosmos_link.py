"""main() of kosmos_link and kosmos_link_info: refusals that must happen before any cluster is touched."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.multicloud.interconnect.plugins.modules import kosmos_link, kosmos_link_info

OPTIONS = {"enable": True, "networkType": "p2p", "ipFamily": "ipv4"}


def run(module, args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            module.main()
    return exit_info.value.code, json.loads(capsys.readouterr().out)


def members(tmp_path, *names):
    return [{"name": n, "kubeconfig": str(tmp_path / ("%s.yaml" % n)), "cluster_link_options": OPTIONS} for n in names]


@pytest.mark.parametrize("module", [kosmos_link, kosmos_link_info])
def test_host_must_be_a_member(module, tmp_path, capsys):
    code, result = run(module, {"group": "net-b", "host": "cluster09", "members": members(tmp_path, "cluster03")},
                       capsys)
    assert code == 1
    assert "host cluster09 is not among the members (cluster03)" in result["msg"]


def test_unreadable_kubeconfig_names_the_cluster(tmp_path, capsys):
    code, result = run(kosmos_link, {"group": "net-b", "host": "cluster03",
                                     "members": members(tmp_path, "cluster03", "cluster04")}, capsys)
    assert code == 1
    assert result["msg"].startswith("cluster cluster03: cannot load kubeconfig")
    assert result["actions"] == []


def test_member_options_are_validated(tmp_path, capsys):
    broken = members(tmp_path, "cluster03")
    del broken[0]["cluster_link_options"]
    code, result = run(kosmos_link, {"group": "net-b", "host": "cluster03", "members": broken}, capsys)
    assert code == 1 and "cluster_link_options" in result["msg"]
