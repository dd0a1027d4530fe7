"""Filters of the cilium role over hostvars-shaped input."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.multicloud.interconnect.plugins.filter import cilium as f

from ..module_utils.test_cilium import SETTINGS, member, nodes


def hostvars(count=2):
    result = {}
    for i in range(1, count + 1):
        name = "cluster%02d" % i
        result[name] = {"cluster_id": i, "cluster_network_group": "net-a", "cluster_cni": "cilium",
                        "cluster_kubeconfig": "/k/%s.yaml" % name, "__cilium_member": member(name, i)}
    result["cluster09"] = {"cluster_id": 9, "cluster_network_group": "net-b", "cluster_cni": "kosmos"}
    return result


def test_values_filter_warns_on_conflicts(monkeypatch):
    warnings = []
    monkeypatch.setattr(f._display, "warning", warnings.append)
    hv = hostvars()
    result = f.cilium_values(hv["cluster01"]["__cilium_member"], hv, list(hv), SETTINGS, {}, {"cluster": {"name": "x"}},
                             "1.18.7")
    assert result["peers"] == ["cluster02"]
    assert warnings == ["cluster cluster01: cilium_extra_values sets cluster.name, which the cilium role owns; "
                        "the role's value is used"]


def test_values_filter_turns_bad_versions_into_filter_errors():
    hv = hostvars()
    with pytest.raises(AnsibleFilterError, match="cilium_chart_version"):
        f.cilium_values(hv["cluster01"]["__cilium_member"], hv, list(hv), SETTINGS, {}, {}, "main")


def test_mesh_problems_use_inventory_members_of_cilium_groups_only():
    hv = hostvars(3)
    assert f.cilium_mesh_problems(hv, list(hv), list(hv)) == []
    problems = f.cilium_mesh_problems(hv, ["cluster01", "cluster02"], list(hv))
    assert problems and "cluster03 is in the inventory but not in this run" in problems[0]


def test_kernel_problems_collect_from_every_host():
    hv = {"cluster01": {"__cilium_kernel": f.cilium_kernel_findings(nodes("10.0.1", 1, kernel="4.9.17"), "5.10")},
          "cluster02": {}}
    lines = f.cilium_kernel_problems(hv, list(hv), "5.10")
    # Rendered like every refusal of the collection: code, clusters, message; then field and fix.
    assert lines[0].startswith("ERROR   CILIUM_KERNEL_TOO_OLD [cluster01] cluster cluster01: kernel older than 5.10")
    assert lines[1].startswith("        field: cilium_kernel_min_version; fix: upgrade these nodes")


def test_mesh_spec_carries_expected_peers_and_access():
    hv = hostvars()
    hv["cluster01"]["__cilium_rendered"] = {"peers": ["cluster02"]}
    spec = f.cilium_mesh_spec(hv, list(hv))
    assert sorted(spec) == ["cluster01", "cluster02"]
    assert spec["cluster01"] == {"name": "cluster01", "id": 1, "group": "net-a", "peers": ["cluster02"],
                                 "kubeconfig": "/k/cluster01.yaml", "context": None}


def test_ca_plan_and_file_groups():
    hv = hostvars()
    hv["cluster01"]["__cilium_ca_secret"] = {}
    assert f.cilium_ca_plan(hv, list(hv), "net-a") == {"source": "files"}
    hv["cluster01"]["__cilium_ca_plan"] = {"source": "files"}
    hv["cluster02"]["__cilium_ca_plan"] = {"source": "cluster"}
    assert f.cilium_ca_file_groups(hv, list(hv)) == ["net-a"]


@pytest.mark.parametrize("ref, local", [("/opt/charts/cilium", True), ("./charts/cilium", True), ("~/c", True),
                                        ("cilium", False), ("cilium/cilium", False),
                                        ("oci://quay.io/cilium/charts/cilium", False)])
def test_chart_is_local(ref, local):
    assert f.cilium_chart_is_local(ref) is local


def test_mask_filter_shape():
    out = f.cilium_mask({"tls": {"ca": {"key": "k"}}}, {"tls": {"ca": {"key": "k"}}})
    assert out == {"before": {"tls": {"ca": {"key": "<hidden>"}}}, "after": {"tls": {"ca": {"key": "<hidden>"}}}}


def test_a_chart_directory_of_another_version_is_refused_with_field_and_fix():
    assert f.cilium_chart_refusal("/charts/cilium", "1.20.2", "1.20.2") == ""
    text = f.cilium_chart_refusal("/charts/cilium", "1.19.4", "1.20.2")
    assert text.splitlines()[0] == "Cilium chart refused (1 problem); nothing was changed."
    assert "CILIUM_CHART_VERSION_MISMATCH [-] the chart in /charts/cilium is version 1.19.4, but cilium_chart_version " \
           "is 1.20.2" in text
    assert 'field: cilium_chart_version; fix: set cilium_chart_version: "1.19.4"' in text


def test_running_id_from_the_cilium_config_read():
    assert f.cilium_running_id([{"data": {"cluster-id": "7", "cluster-name": "x"}}]) == 7
    assert f.cilium_running_id([{"data": {"cluster-id": "0"}}]) is None  # 0: outside any mesh
    assert f.cilium_running_id([]) is None and f.cilium_running_id(None) is None


def test_cluster_ids_of_the_play_keep_running_ids_and_take_every_inventory_id():
    hv = hostvars(3)
    hv["cluster01"].pop("cluster_id")
    hv["cluster01"]["__cilium_running_id"] = 2      # runs with 2 already
    hv["cluster02"].pop("cluster_id")               # new: lowest free, 1 being free
    result = f.cilium_cluster_ids(hv, ["cluster01", "cluster02", "cluster03"], sorted(hv), 255)
    assert result["problems"] == ""
    assert result["ids"] == {"cluster01": {"id": 2, "source": "running"}, "cluster02": {"id": 1, "source": "allocated"},
                             "cluster03": {"id": 3, "source": "inventory"}}
    assert result["report"] == ["cluster01: cluster ID 2 (kept: the ID it runs with)",
                                "cluster02: cluster ID 1 (allocated: lowest free)", "cluster03: cluster ID 3 (cluster_id)"]
    # cluster09 (Kosmos, ID 9) is not planned but its ID is taken
    hv["cluster03"].pop("cluster_id")
    hv["cluster09"]["cluster_id"] = 3
    assert f.cilium_cluster_ids(hv, ["cluster01", "cluster02", "cluster03"], sorted(hv), 255)["ids"]["cluster03"] == \
        {"id": 4, "source": "allocated"}
    member = f.cilium_member("cluster02", hv, SETTINGS, nodes("172.30.2"), None, 1)
    assert (member["id"], member["node_port"]) == (1, 32001)
