"""A third group, remove one, update an address, disable: the day-2 flow of DaoCloud's mesh network groups, on the lab.

Starts from net-a + net-b joined (as test_interconnect_join leaves them, or makes it so).
"""

from __future__ import annotations

import os

import pytest
import yaml
from site_helpers import (  # pylint: disable=import-error
    INTERCONNECT_LAB, INTERCONNECT_NET_C, REPO, changed, core, interconnect_playbook, lab_charts)

INVENTORIES = REPO / "tests/integration/inventories"
LAB, NET_C = INTERCONNECT_LAB, INTERCONNECT_NET_C
playbook = interconnect_playbook  # every run of these suites: the interconnect inventories, output asserted
ADDRESS = LAB + (INVENTORIES / "interconnect-address",)
NS = "istio-system"
TWO = {"cluster01": "net-a", "cluster02": "net-a", "cluster03": "net-b", "cluster04": "net-b"}
THREE = dict(TWO, cluster04="net-c")

pytestmark = pytest.mark.lab


def secrets(lab, name):
    items = core(lab, name).list_namespaced_secret(NS, label_selector="istio/multiCluster=true").items
    return {s.metadata.name for s in items}


def networks(lab, name):
    cm = core(lab, name).read_namespaced_config_map("istio", NS)
    return (yaml.safe_load(cm.data["meshNetworks"]) or {}).get("networks") or {}


def assert_interconnect(lab, groups, joined):
    for cluster, group in sorted(groups.items()):
        want = {"istio-remote-secret-" + p for p, pg in groups.items() if pg != group and pg in joined} \
            if group in joined else set()
        assert secrets(lab, cluster) == want, cluster
        assert sorted(networks(lab, cluster)) == (sorted(joined) if group in joined else []), cluster


@pytest.fixture(scope="module", name="flow")
def fixture_flow(lab, tmp_path_factory):
    if lab_charts() is None:
        pytest.fail("the lab exported no Istio charts (make lab-build; or set LAB_ISTIO_CHARTS)")
    os.environ.setdefault("LAB_ISTIO_CHARTS", str(lab_charts()))
    tmp = tmp_path_factory.mktemp("groups")
    playbook("interconnect_remove.yml", "-e", '{"interconnect_remove_groups": ["net-b", "net-c"]}', inventory=NET_C)
    playbook("istio_mesh.yml")
    playbook("interconnect_join.yml", tmp=tmp)
    assert_interconnect(lab, TWO, ["net-a", "net-b"])
    return {"lab": lab, "tmp": tmp}


def test_third_group_after_removing_the_group_it_leaves(flow):
    lab, tmp = flow["lab"], flow["tmp"]
    playbook("interconnect_remove.yml", "-e", '{"interconnect_remove_groups": ["net-b"]}')
    assert_interconnect(lab, TWO, ["net-a"])
    assert not any(s.metadata.name.startswith("istio-reader-service-account-istio-remote")
                   for s in core(lab, "cluster03").list_namespaced_secret(NS).items)  # token revoked
    playbook("istio_mesh.yml", inventory=NET_C)  # cluster04 and its gateway move to net-c
    assert core(lab, "cluster04").read_namespace(NS).metadata.labels["topology.istio.io/network"] == "net-c"
    svc = core(lab, "cluster04").read_namespaced_service("istio-eastwestgateway", NS)
    assert svc.metadata.labels["topology.istio.io/network"] == "net-c"
    out = playbook("interconnect_join.yml", inventory=NET_C, tmp=tmp)
    assert "cluster04" in out
    assert_interconnect(lab, THREE, ["net-a", "net-b", "net-c"])
    again = playbook("interconnect_join.yml", "--check", inventory=NET_C, tmp=tmp)
    assert all(count == 0 for count in changed(again).values()), again[-3000:]


def test_remove_one_of_three(flow):
    lab = flow["lab"]
    playbook("interconnect_remove.yml", "-e", '{"interconnect_remove_groups": ["net-c"]}', inventory=NET_C)
    assert_interconnect(lab, THREE, ["net-a", "net-b"])
    again = playbook("interconnect_remove.yml", "-e", '{"interconnect_remove_groups": ["net-c"]}', inventory=NET_C)
    assert all(count == 0 for count in changed(again).values())


def test_address_update_changes_only_addresses(flow):
    lab = flow["lab"]
    before = {name: secrets(lab, name) for name in THREE}
    inventory = ADDRESS + (INVENTORIES / "interconnect-net-c",)
    out = playbook("gateway_address_update.yml", "-e", '{"interconnect_update_groups": ["net-a"]}',
                   inventory=inventory)
    assert "172.30.1.200" in out
    gateways = networks(lab, "cluster03")["net-a"]["gateways"]
    assert {g["address"] for g in gateways} == {"172.30.1.200", "172.30.2.11", "172.30.2.12"}
    assert {name: secrets(lab, name) for name in THREE} == before
    again = playbook("gateway_address_update.yml", "-e", '{"interconnect_update_groups": ["net-a"]}',
                     "--check", inventory=inventory)
    assert all(count == 0 for count in changed(again).values())


def test_disable_after_every_group_is_removed(flow):
    lab = flow["lab"]
    playbook("interconnect_remove.yml", "-e", '{"interconnect_remove_groups": ["net-a", "net-b"]}', inventory=NET_C)
    assert_interconnect(lab, THREE, [])
    playbook("interconnect_disable.yml", "-e", "interconnect_disable_confirm='disable interconnect'",
             inventory=NET_C)
    from kubernetes import client
    from kubernetes.client.rest import ApiException
    for name in THREE:
        with pytest.raises(ApiException) as err:
            core(lab, name).read_namespaced_service("istio-eastwestgateway", NS)
        assert err.value.status == 404
        with pytest.raises(ApiException) as err:
            client.CustomObjectsApi(lab.clusters[name].api_client()).get_namespaced_custom_object(
                "networking.istio.io", "v1", NS, "gateways", "cross-network-gateway")
        assert err.value.status == 404
