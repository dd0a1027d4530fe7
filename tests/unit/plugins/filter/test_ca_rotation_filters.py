"""Filters of the CA rotation over hostvars-shaped input: who takes part, what each stage writes, and
what the cilium role keeps while a rotation is under way."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.multicloud.interconnect.plugins.filter import ca_rotation as f
from ansible_collections.multicloud.interconnect.plugins.filter import cilium as cilium_filters
from ansible_collections.multicloud.interconnect.plugins.module_utils import _ca_rotation
from ansible_collections.multicloud.interconnect.plugins.module_utils._pem import pem_fingerprint

from ..module_utils.test_ca_rotation import make_ca, secret


@pytest.fixture(scope="module", name="cas")
def fixture_cas():
    return {"old": make_ca("old"), "new": make_ca("new")}


def hostvars(old, count=2, gathered=True):
    result = {}
    for i in range(1, count + 1):
        name = "cluster%02d" % i
        result[name] = {"cluster_id": i, "cluster_network_group": "net-a", "cluster_cni": "cilium"}
        if gathered:
            result[name].update(__cilium_ca_secret=secret(old), __cilium_release_values={}, __cilium_ca_record={})
    result["cluster09"] = {"cluster_id": 9, "cluster_network_group": "net-b", "cluster_cni": "kosmos"}
    return result


def test_a_run_that_leaves_a_member_out_is_refused_before_any_change(cas):
    hv = hostvars(cas["old"], 3)
    plan = f.cilium_ca_rotation_plan(hv, ["cluster01", "cluster02"], list(hv), "net-a", "r1")
    assert "CILIUM_CA_ROTATION_PARTIAL [group net-a: cluster03] network group net-a: cluster03 is not part of this run" \
        in plan["problems"]
    assert plan["todo"] == [] and plan["summary"] == ""
    unknown = f.cilium_ca_rotation_plan(hv, list(hv), list(hv), "net-b", "r1")
    assert "CILIUM_CA_ROTATION_GROUP" in unknown["problems"] and "set cilium_ca_rotate_group to one of: net-a" \
        in unknown["problems"]


def test_a_given_ca_needs_its_key_and_a_chain_in_order(cas):
    hv = hostvars(cas["old"])
    no_key = f.cilium_ca_rotation_plan(hv, list(hv), list(hv), "net-a", "r1", cas["new"]["cert"], "")
    assert "CILIUM_CA_ROTATION_KEY" in no_key["problems"] and "field: cilium_ca_rotate_key" in no_key["problems"]
    wrong_key = f.cilium_ca_rotation_plan(hv, list(hv), list(hv), "net-a", "r1", cas["new"]["cert"], cas["old"]["key"])
    assert "CILIUM_CA_ROTATION_CERT_INVALID" in wrong_key["problems"]
    assert "the key does not belong to the first certificate of cilium_ca_rotate_cert (new)" in wrong_key["problems"]
    good = f.cilium_ca_rotation_plan(hv, list(hv), list(hv), "net-a", "r1", cas["new"]["cert"], cas["new"]["key"])
    assert good["problems"] == "" and good["source"] == "provided" and good["todo"] == ["trust", "issue", "drop"]
    assert cas["new"]["key"] not in str(good) and cas["old"]["key"] not in str(good)


def test_each_stage_gives_every_member_the_same_values_and_the_record_where_it_changes(cas):
    hv = hostvars(cas["old"])
    plan = f.cilium_ca_rotation_plan(hv, list(hv), list(hv), "net-a", "r1")
    trust = f.cilium_ca_stage(hv, list(hv), plan, "trust", cas["new"])
    assert sorted(trust) == ["cluster01", "cluster02"] and trust["cluster01"] == trust["cluster02"]
    assert trust["cluster01"]["ca"]["cert"] == cas["old"]["cert"] and len(trust["cluster01"]["ca"]["trust"]) == 2
    assert _ca_rotation.read_record(trust["cluster01"]["record"]) == {
        "rotation": "r1", "new": pem_fingerprint(cas["new"]["cert"]), "old": pem_fingerprint(cas["old"]["cert"]),
        "finished": False}
    # after the trust stage, the new CA comes from the record in the clusters, not from the controller
    for name in ("cluster01", "cluster02"):
        hv[name].update(__cilium_ca_record=trust[name]["record"],
                        __cilium_release_values=_ca_rotation.values(trust[name]["ca"]))
    resumed = f.cilium_ca_rotation_plan(hv, list(hv), list(hv), "net-a", "r1")
    assert resumed["source"] == "record" and resumed["todo"] == ["issue", "drop"]
    issue = f.cilium_ca_stage(hv, list(hv), resumed, "issue", None)
    assert issue["cluster01"]["ca"]["cert"] == cas["new"]["cert"] and issue["cluster01"]["record"] is None
    drop = f.cilium_ca_stage(hv, list(hv), resumed, "drop", None)
    assert drop["cluster01"]["ca"]["trust"] == [] and _ca_rotation.read_record(drop["cluster01"]["record"])["finished"]
    with pytest.raises(AnsibleFilterError, match="no new CA"):
        f.cilium_ca_stage(hostvars(cas["old"]), ["cluster01", "cluster02"], plan, "trust", None)


def test_the_cilium_role_keeps_the_stage_and_refuses_a_newcomer_while_a_rotation_is_under_way(cas):
    hv = hostvars(cas["old"], 3)
    plan = f.cilium_ca_rotation_plan(hv, list(hv), list(hv), "net-a", "r1")
    trust = f.cilium_ca_stage(hv, list(hv), plan, "trust", cas["new"])
    for name in ("cluster01", "cluster02", "cluster03"):
        hv[name].update(__cilium_ca_record=trust[name]["record"],
                        __cilium_release_values=_ca_rotation.values(trust[name]["ca"]))
    assert cilium_filters.cilium_ca_plan(hv, list(hv), "net-a") == {"source": "rotation", "rotation": "r1"}
    kept = cilium_filters.cilium_ca_kept(hv["cluster01"]["__cilium_ca_secret"], hv["cluster01"]["__cilium_release_values"],
                                         hv["cluster01"]["__cilium_ca_record"])
    assert _ca_rotation.values(kept) == _ca_rotation.values(trust["cluster01"]["ca"])
    hv["cluster03"].update(__cilium_ca_secret={}, __cilium_ca_record={})
    with pytest.raises(AnsibleFilterError, match=r"CILIUM_CA_ROTATION_UNDER_WAY \[group net-a: cluster03\]"):
        cilium_filters.cilium_ca_plan(hv, list(hv), "net-a")


def test_stages_to_run_filter_defaults_to_the_whole_rotation():
    assert f.cilium_ca_stages_to_run(["issue", "drop"], None) == ["issue", "drop"]
    assert f.cilium_ca_stages_to_run(["trust", "issue", "drop"], "drop", True, "generate") == []
