"""Istio on the lab (real charts), then net-a and net-b joined, as a user runs the playbooks.

Every object is read back from the API servers and compared with the expected set exactly.
"""

from __future__ import annotations

import base64
import json
import os
import re

import pytest
import yaml
from site_helpers import (  # pylint: disable=import-error
    INTERCONNECT_LAB, INTERCONNECT_NET_C, REPO, changed, core, interconnect_playbook, lab_charts, run_ansible)

INVENTORIES = REPO / "tests/integration/inventories"
LAB, NET_C = INTERCONNECT_LAB, INTERCONNECT_NET_C
playbook = interconnect_playbook  # every run of these suites: the interconnect inventories, output asserted
NS = "istio-system"
ALL_GROUPS = '{"interconnect_remove_groups": ["net-a", "net-b", "net-c"]}'

pytestmark = pytest.mark.lab


def unchanged(output):
    changes = changed(output)
    assert {"cluster01", "cluster02", "cluster03", "cluster04"} <= set(changes), output[-4000:]
    assert all(count == 0 for count in changes.values()), (changes, output[-6000:])


def remote_secrets(lab, name):
    items = core(lab, name).list_namespaced_secret(NS, label_selector="istio/multiCluster=true").items
    return {s.metadata.name: s for s in items}


def mesh_networks(lab, name):
    cm = core(lab, name).read_namespaced_config_map("istio", NS)
    return (yaml.safe_load(cm.data["meshNetworks"]) or {}).get("networks") or {}


def expected_secrets(groups, joined):
    """{cluster: {secret names}} for the joined groups of ``groups`` ({cluster: group})."""
    return {c: {"istio-remote-secret-" + p for p, pg in groups.items() if pg != g and pg in joined}
            if g in joined else set() for c, g in groups.items()}


def assert_interconnect(lab, groups, joined):
    want = expected_secrets(groups, joined)
    for cluster in sorted(groups):
        assert set(remote_secrets(lab, cluster)) == want[cluster], cluster
        networks = mesh_networks(lab, cluster)
        assert sorted(networks) == (sorted(joined) if groups[cluster] in joined else []), cluster
        for group in networks:
            members = sorted(c for c, g in groups.items() if g == group)
            assert networks[group]["endpoints"] == [{"fromRegistry": c} for c in members]
            assert networks[group]["gateways"], (cluster, group)


GROUPS = {"cluster01": "net-a", "cluster02": "net-a", "cluster03": "net-b", "cluster04": "net-b"}


@pytest.fixture(scope="module", name="joined")
def fixture_joined(lab, tmp_path_factory):
    if lab_charts() is None:
        pytest.fail("the lab exported no Istio charts (make lab-build; or set LAB_ISTIO_CHARTS to a directory "
                    "with istio-base, istiod and istio-gateway)")
    os.environ.setdefault("LAB_ISTIO_CHARTS", str(lab_charts()))
    tmp = tmp_path_factory.mktemp("interconnect")
    # A previous test run may have left groups joined: start from none.
    playbook("interconnect_remove.yml", "-e", ALL_GROUPS, inventory=NET_C)
    runs = {"mesh": [playbook("istio_mesh.yml", "--check"), playbook("istio_mesh.yml"),
                     playbook("istio_mesh.yml", "--check")]}
    runs["join"] = [playbook("interconnect_join.yml", "--check", "--diff", tmp=tmp),
                    playbook("interconnect_join.yml", tmp=tmp),
                    playbook("interconnect_join.yml", "--check", "--diff", "-vvv", tmp=tmp),
                    playbook("interconnect_join.yml", tmp=tmp)]
    return {"lab": lab, "runs": runs, "tmp": tmp}


def test_mesh_and_join_are_idempotent(joined):
    unchanged(joined["runs"]["mesh"][2])
    unchanged(joined["runs"]["join"][2])
    unchanged(joined["runs"]["join"][3])
    assert "istio-remote-secret-cluster03" in joined["runs"]["join"][0]  # the check run showed the plan


def test_tokens_never_reach_the_output(joined):
    lab = joined["lab"]
    secret = remote_secrets(lab, "cluster01")["istio-remote-secret-cluster03"]
    token = yaml.safe_load(base64.b64decode(secret.data["cluster03"]))["users"][0]["user"]["token"]
    assert token and len(token) > 20
    for output in joined["runs"]["join"]:
        assert token not in output


def test_mesh_prerequisites(joined):
    lab = joined["lab"]
    for name, group in GROUPS.items():
        api = core(lab, name)
        assert api.read_namespace(NS).metadata.labels["topology.istio.io/network"] == group
        cacerts = api.read_namespaced_secret("cacerts", NS).data
        assert sorted(cacerts) == ["ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"]
        roots = {core(lab, other).read_namespaced_secret("cacerts", NS).data["root-cert.pem"] for other in GROUPS}
        assert len(roots) == 1  # one root for the whole mesh
        svc = api.read_namespaced_service("istio-eastwestgateway", NS)
        assert svc.spec.type == "NodePort"
        assert svc.metadata.labels["topology.istio.io/network"] == group
        assert 15443 in [p.port for p in svc.spec.ports]
        from kubernetes import client
        custom = client.CustomObjectsApi(lab.clusters[name].api_client())
        rule = custom.get_namespaced_custom_object("networking.istio.io", "v1", NS, "gateways", "cross-network-gateway")
        assert rule["spec"]["servers"][0]["port"]["number"] == 15443
        assert rule["spec"]["servers"][0]["tls"]["mode"] == "AUTO_PASSTHROUGH"
        assert rule["spec"]["servers"][0]["hosts"] == ["*.local"]
        deploy = client.AppsV1Api(lab.clusters[name].api_client()).read_namespaced_deployment("istiod", NS)
        env = {e.name: e.value for e in deploy.spec.template.spec.containers[0].env or []}
        assert env.get("CLUSTER_ID") == name


def test_every_cluster_has_exactly_the_expected_secrets_and_networks(joined):
    assert_interconnect(joined["lab"], GROUPS, ["net-a", "net-b"])


def test_remote_secret_matches_istioctl_and_its_token_reads_the_peer(joined):
    from kubernetes import client, config

    lab = joined["lab"]
    secret = remote_secrets(lab, "cluster02")["istio-remote-secret-cluster04"]
    assert secret.metadata.annotations["networking.istio.io/cluster"] == "cluster04"
    assert list(secret.data) == ["cluster04"]
    kubeconfig = yaml.safe_load(base64.b64decode(secret.data["cluster04"]))
    node_port = core(lab, "cluster04").read_namespaced_service("kube-apiserver-nodeport", "kube-system") \
        .spec.ports[0].node_port
    server = kubeconfig["clusters"][0]["cluster"]["server"]
    assert re.match(r"^https://172\.30\.4\.\d+:%d$" % node_port, server), server
    assert kubeconfig["clusters"][0]["cluster"]["tls-server-name"]
    # What a peer's istiod does with it: watch the cluster's Services through the exposed API.
    api = config.new_client_from_config_dict(kubeconfig)
    services = client.CoreV1Api(api).list_namespaced_service(NS)
    assert "istio-eastwestgateway" in [s.metadata.name for s in services.items]


def test_the_real_reader_sees_what_the_join_wrote(joined):
    """_istio_access.ClusterAccess.observe on the lab: every field the unit tests' in-memory clusters stand in for."""
    from ansible_collections.multicloud.interconnect.plugins.module_utils._istio import clusters_from_params
    from ansible_collections.multicloud.interconnect.plugins.module_utils._istio_access import ClusterAccess

    lab = joined["lab"]
    specs = clusters_from_params({name: {"network_group": group, "eastwest_gateway": {"service_type": "NodePort"},
                                         "kubeconfig": lab.clusters[name].kubeconfig} for name, group in GROUPS.items()})
    options = {"namespace": NS, "mesh_config_map": "istio", "gateway_service": "istio-eastwestgateway"}
    seen = {name: ClusterAccess(spec, options).observe() for name, spec in specs.items()}
    for name, obs in seen.items():
        peers = sorted(c for c, g in GROUPS.items() if g != GROUPS[name])
        assert sorted(obs.remote_secrets) == ["istio-remote-secret-" + p for p in peers], name
        for peer in peers:
            entry = obs.remote_secrets["istio-remote-secret-" + peer]
            assert entry["source"] == peer and entry["managed"] is True
            assert entry["kubeconfig"]["users"][0]["user"]["token"] == seen[peer].token
        assert obs.namespace_exists and obs.mesh_configmap_exists and obs.reader_account_exists
        assert obs.token_secret_exists and obs.token_secret_managed and len(obs.token) > 20
        assert sorted(obs.state["joined"]) == ["net-a", "net-b"] and obs.state_configmap_exists
        assert sorted(obs.mesh_networks) == ["net-a", "net-b"]
        service = core(lab, name).read_namespaced_service("istio-eastwestgateway", NS)
        assert obs.gateway_service == {"name": "istio-eastwestgateway", "type": "NodePort", "ingress": [],
                                       "node_port": [p.node_port for p in service.spec.ports if p.port == 15443][0]}
        assert obs.node_addresses and all(a.startswith("172.30.%d." % int(name[-2:])) for a in obs.node_addresses)
        assert obs.control_planes == ["istiod"]


def test_the_mesh_configmap_has_one_writer_the_istiod_release(joined):
    """meshNetworks reach the ConfigMap only through Helm: no other field manager has touched it."""
    for name in GROUPS:
        cm = core(joined["lab"], name).read_namespaced_config_map("istio", NS)
        managers = {entry.manager for entry in cm.metadata.managed_fields or []}
        assert managers == {"helm"}, (name, managers)
        assert cm.metadata.labels.get("app.kubernetes.io/managed-by") == "Helm"


def test_joined_state_is_recorded_in_every_cluster(joined):
    lab = joined["lab"]
    for name in GROUPS:
        state = json.loads(core(lab, name).read_namespaced_config_map("istio-interconnect", NS).data["state.json"])
        assert sorted(state["joined"]) == ["net-a", "net-b"]
        assert state["joined"]["net-b"]["clusters"] == ["cluster03", "cluster04"]


def snapshot(lab):
    return {name: ({n: s.data for n, s in remote_secrets(lab, name).items()}, mesh_networks(lab, name))
            for name in GROUPS}


def test_rules_refuse_with_their_message_and_change_nothing(joined):
    lab, tmp = joined["lab"], joined["tmp"]
    before = snapshot(lab)
    # Moving cluster04 out of the joined net-b into net-c.
    out = playbook("interconnect_join.yml", inventory=NET_C, expect=2, tmp=tmp)
    assert "JOINED_GROUP_CHANGED" in out and "net-b" in out and "interconnect_remove.yml" in out
    # An address update of a group that never joined.
    out = playbook("gateway_address_update.yml", "-e", '{"interconnect_update_groups": ["net-c"]}', inventory=NET_C,
                   expect=2)
    # Both reasons at once: net-c never joined, and joined net-b lost cluster04.
    assert "INTERCONNECT_NOT_JOINED [group net-c: -]" in out and "JOINED_GROUP_CHANGED [group net-b: cluster04]" in out
    # Disabling while groups are joined, even with the confirmation.
    out = playbook("interconnect_disable.yml", "-e", "interconnect_disable_confirm='disable interconnect'", expect=2)
    assert "INTERCONNECT_STILL_JOINED [-] groups still on the interconnect list: net-a, net-b" in out
    out = playbook("interconnect_disable.yml", expect=2)
    assert "interconnect_disable_confirm" in out
    assert snapshot(lab) == before
    assert core(lab, "cluster01").read_namespaced_service("istio-eastwestgateway", NS)


def test_info_reports_drift_after_a_secret_is_deleted_by_hand_and_join_repairs_it(joined):
    lab, tmp = joined["lab"], joined["tmp"]
    core(lab, "cluster03").delete_namespaced_secret("istio-remote-secret-cluster01", NS)
    args = json.dumps({"clusters": "{{ hostvars | multicloud.interconnect.istio_interconnect_clusters("
                                   "groups['clusters']) }}"})
    run = run_ansible("ansible", "cluster01", "--check", "-m", "multicloud.interconnect.interconnect_info", "-a", args,
                      inventories=LAB, timeout=300)
    report = yaml.safe_load(run.stdout.split("=>", 1)[1])  # the project's ansible.cfg prints results as YAML
    assert report["in_sync"] is False
    assert report["clusters"]["cluster03"]["missing"] == ["istio-remote-secret-cluster01"]
    assert report["joined_groups"] == ["net-a", "net-b"]
    assert [d["name"] for d in report["drift"]] == ["istio-remote-secret-cluster01"]
    out = playbook("interconnect_join.yml", tmp=tmp)
    assert changed(out)["cluster01"] == 1  # the module ran once, for every cluster
    assert_interconnect(lab, GROUPS, ["net-a", "net-b"])
