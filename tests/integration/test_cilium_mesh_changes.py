"""Changes to the Cilium mesh on the lab: a third cluster joins then leaves; bad input is refused
before any Helm call (duplicate ID, overlapping Pod CIDR, a node with an old kernel); native routing
with ip-masq-agent read back from what cilium-agent would read, then back to tunnel mode."""

from __future__ import annotations

import json

import pytest
from site_helpers import recap  # pylint: disable=import-error
from test_mesh_control_planes import kvstoremesh, wait_for, when  # pylint: disable=import-error

from test_cilium_mesh import (  # pylint: disable=import-error
    INVENTORIES,
    LAB,
    core,
    helm_uninstall,
    mesh_state,
    playbook,
    release_revisions,
)

NET_A = ("cluster01", "cluster02")
PROBE_NODE = "cilium-probe-old-kernel"


@pytest.fixture(scope="module")
def three_then_two(lab):
    try:
        joined = playbook("cilium_mesh.yml", LAB + [INVENTORIES / "cilium3"])
        state3 = {c: mesh_state(lab, c) for c in NET_A + ("cluster03",)} if joined.returncode == 0 else {}
        # What each real kvstoremesh reports once the role's run (it waits for them) is over.
        remotes3 = {c: kvstoremesh(lab, c) for c in NET_A + ("cluster03",)} if joined.returncode == 0 else {}
        left = playbook("cilium_mesh.yml", LAB)
        state2 = {c: mesh_state(lab, c) for c in NET_A} if left.returncode == 0 else {}
        remotes2 = {c: wait_for(lambda c=c: when(kvstoremesh(lab, c), lambda r: "cluster03" not in r),
                                60, "%s's kvstoremesh drops cluster03" % c) for c in NET_A} if left.returncode == 0 else {}
    finally:
        uninstalled = helm_uninstall(lab, "cluster03")
    return {"joined": joined, "state3": state3, "left": left, "state2": state2, "uninstalled": uninstalled,
            "remotes3": remotes3, "remotes2": remotes2}


@pytest.mark.lab
def test_third_cluster_joins_every_peer_with_the_same_ca(three_then_two):
    run = three_then_two["joined"]
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    state = three_then_two["state3"]
    assert state["cluster01"]["peers"] == ["cluster02", "cluster03"]
    assert state["cluster02"]["peers"] == ["cluster01", "cluster03"]
    assert state["cluster03"]["peers"] == ["cluster01", "cluster02"]
    assert (state["cluster03"]["name"], state["cluster03"]["id"]) == ("cluster03", "3")
    assert len({s["ca"] for s in state.values()}) == 1
    remotes = three_then_two["remotes3"]
    for here in NET_A + ("cluster03",):
        peers = sorted(set(NET_A + ("cluster03",)) - {here})
        assert sorted(remotes[here]) == peers, remotes[here]
        assert all(remotes[here][p]["ready"] for p in peers), remotes[here]
    assert remotes["cluster01"]["cluster03"]["config"]["cluster-id"] == 3


@pytest.mark.lab
def test_removing_the_third_cluster_drops_it_on_every_peer(three_then_two):
    run = three_then_two["left"]
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert three_then_two["state2"]["cluster01"]["peers"] == ["cluster02"]
    assert three_then_two["state2"]["cluster02"]["peers"] == ["cluster01"]
    # Out of the group, cluster03 is no remote cluster at all for the real kvstoremesh.
    assert set(three_then_two["remotes2"]["cluster01"]) == {"cluster02"}
    assert set(three_then_two["remotes2"]["cluster02"]) == {"cluster01"}
    assert three_then_two["remotes2"]["cluster01"]["cluster02"]["ready"]
    assert three_then_two["uninstalled"].returncode == 0, three_then_two["uninstalled"].stderr


@pytest.mark.lab
@pytest.mark.parametrize("overlay, code", [("cilium-bad-id", "ID_DUPLICATE"), ("cilium-bad-cidr", "CIDR_OVERLAP_IN_GROUP")])
def test_bad_topology_is_refused_before_any_helm_call(lab, overlay, code):
    before = {c: release_revisions(lab, c) for c in NET_A}
    run = playbook("cilium_mesh.yml", LAB + [INVENTORIES / overlay])
    assert run.returncode != 0
    assert code in run.output
    assert "Install or upgrade Cilium" not in run.stdout
    assert {c: release_revisions(lab, c) for c in NET_A} == before


@pytest.fixture
def old_kernel_node(lab):
    """A Node of our own in cluster02 reporting an old kernel; tainted and unschedulable so nothing lands on it."""
    from kubernetes.client.rest import ApiException
    api = core(lab, "cluster02")
    body = {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": PROBE_NODE, "labels": {"app.kubernetes.io/created-by": "test-cilium-mesh"}},
        "spec": {"unschedulable": True,
                 "taints": [{"key": "multicloud.interconnect/test", "value": "old-kernel", "effect": "NoExecute"}]},
        "status": {"nodeInfo": {"kernelVersion": "4.9.17-1.el7.x86_64", "kubeletVersion": "v1.36.3",
                                "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64",
                                "containerRuntimeVersion": "", "osImage": "", "machineID": "", "systemUUID": "",
                                "bootID": ""},
                   "addresses": [{"type": "InternalIP", "address": "172.30.2.99"}]},
    }
    api.create_node(body)
    try:
        yield PROBE_NODE
    finally:
        try:
            api.delete_node(PROBE_NODE)
        except ApiException as err:
            if err.status != 404:
                raise


@pytest.mark.lab
def test_old_kernel_is_refused_by_node_name(lab, old_kernel_node):
    before = {c: release_revisions(lab, c) for c in NET_A}
    run = playbook("cilium_mesh.yml", LAB)
    output = run.output
    assert run.returncode != 0
    assert "CILIUM_KERNEL_TOO_OLD [cluster02] cluster cluster02: kernel older than 5.10 on %s (4.9.17-1.el7.x86_64)" \
        % old_kernel_node in output
    assert recap(run.stdout)["cluster01"]["failed"] + recap(run.stdout)["cluster02"]["failed"] >= 1
    assert "Install or upgrade Cilium" not in run.stdout
    assert {c: release_revisions(lab, c) for c in NET_A} == before


def agent_datapath(lab, cluster):
    """What cilium-agent would read about routing and masquerading: cilium-config and ip-masq-agent."""
    from kubernetes.client.rest import ApiException
    api = core(lab, cluster)
    config = api.read_namespaced_config_map("cilium-config", "kube-system").data
    try:
        agent = api.read_namespaced_config_map("ip-masq-agent", "kube-system").data["config"]
    except ApiException as err:
        if err.status != 404:
            raise
        agent = None
    keys = ("routing-mode", "ipv4-native-routing-cidr", "enable-ip-masq-agent", "enable-bpf-masquerade")
    return {key: config.get(key) for key in keys}, agent


@pytest.fixture(scope="module")
def native_then_tunnel(lab):
    native = playbook("cilium_mesh.yml", LAB, "-e", "cilium_routing_mode=native", "-e", "cilium_ip_masq_agent=true")
    read_native = {c: agent_datapath(lab, c) for c in NET_A}
    back = playbook("cilium_mesh.yml", LAB)
    return {"native": native, "read_native": read_native, "back": back,
            "read_back": {c: agent_datapath(lab, c) for c in NET_A}}


def datapath_after(native_then_tunnel, stage):
    """{cluster: (cilium-config keys, ip-masq-agent config)} after the run of ``stage``, which must have passed."""
    run = native_then_tunnel[stage]
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    return native_then_tunnel["read_" + stage]


@pytest.mark.lab
def test_native_routing_exempts_exactly_the_group_pod_ranges_on_the_lab(native_then_tunnel):
    for cluster, (config, agent) in datapath_after(native_then_tunnel, "native").items():
        assert config == {"routing-mode": "native", "ipv4-native-routing-cidr": "10.244.0.0/15",
                          "enable-ip-masq-agent": "true", "enable-bpf-masquerade": "true"}, cluster
        assert agent is not None and json.loads(agent)["nonMasqueradeCIDRs"] == ["10.244.0.0/16", "10.245.0.0/16"]


@pytest.mark.lab
def test_back_to_tunnel_mode_drops_the_exemptions(native_then_tunnel):
    for cluster, (config, agent) in datapath_after(native_then_tunnel, "back").items():
        assert (config["routing-mode"], config["enable-ip-masq-agent"], config["ipv4-native-routing-cidr"], agent) == \
            ("tunnel", None, None, None), cluster
