"""The interconnect plan and rules, driven through an in-memory stand-in for each cluster's API."""

from __future__ import annotations

import base64
import copy

import pytest
import yaml

from ansible_collections.multicloud.interconnect.plugins.module_utils import _istio as istio
from ansible_collections.multicloud.interconnect.plugins.module_utils import _istio_access, _istio_plan, _istio_report, _istio_rules, _istio_run
from ansible_collections.multicloud.interconnect.plugins.module_utils._istio import (
    ClusterSpec,
    InterconnectError,
    Observed,
)

OPTIONS = {"namespace": "istio-system", "mesh_config_map": "istio", "gateway_service": "istio-eastwestgateway",
           "state": "present", "addresses_only": False, "restart_control_plane": False, "wait_timeout": 1}
NODEPORT = {"replicas": 1, "service_type": "NodePort"}


def params(groups=None, gateways=None):
    groups = groups or {"cluster01": "net-a", "cluster02": "net-a", "cluster03": "net-b", "cluster04": "net-b"}
    gateways = gateways if gateways is not None else {name: dict(NODEPORT) for name in groups}
    result = {}
    for index, (name, group) in enumerate(sorted(groups.items()), start=1):
        entry = {"network_group": group, "api_url": "https://172.30.%d.10:30443" % index,
                 "tls_server_name": "kubernetes", "ca_data": base64.b64encode(b"CA %s" % name.encode()).decode(),
                 "kubeconfig": "/tmp/%s.yaml" % name}
        if gateways.get(name):
            entry["eastwest_gateway"] = gateways[name]
        result[name] = entry
    return result


class FakeCluster:
    """A cluster's istio-system as the module sees it: secrets, ConfigMaps, a gateway Service, nodes."""

    def __init__(self, name, index):
        self.name = name
        self.index = index
        self.secrets = {}
        self.configmaps = {"istio": {"meshNetworks": "networks: {}\n"}}
        self.reader = True
        self.namespace = True
        self.node_port = 31000 + index
        self.writes = []
        self.restarts = []

    def node_addresses(self):
        return ["172.30.%d.11" % self.index, "172.30.%d.12" % self.index]

    def observe(self, spec):
        obs = Observed(namespace_exists=self.namespace, reader_account_exists=self.reader,
                       mesh_configmap_exists="istio" in self.configmaps, control_planes=["istiod"])
        if not self.namespace:
            obs.reader_account_exists = obs.mesh_configmap_exists = False
            if spec.gateway:
                obs.node_addresses = self.node_addresses()
            return obs
        state = self.configmaps.get(istio.STATE_CONFIGMAP)
        obs.state_configmap_exists = state is not None
        obs.state = copy.deepcopy(state) if state is not None else None
        for name, secret in self.secrets.items():
            if name.startswith(istio.REMOTE_SECRET_PREFIX):
                source = secret["metadata"]["annotations"][istio.CLUSTER_ANNOTATION]
                obs.remote_secrets[name] = {
                    "source": source,
                    "managed": secret["metadata"]["labels"].get(istio.MANAGED_BY_LABEL) == istio.MANAGED_BY,
                    "labels": secret["metadata"]["labels"], "annotations": secret["metadata"]["annotations"],
                    "kubeconfig": _istio_access._decode_kubeconfig(secret["data"], source)}
        token = self.secrets.get(istio.TOKEN_SECRET)
        if token:
            obs.token_secret_exists = True
            obs.token_secret_managed = True
            obs.token = token.get("token")
        obs.mesh_networks = istio.parse_mesh_networks(self.configmaps.get("istio", {}).get("meshNetworks"))
        if spec.gateway:
            obs.gateway_service = {"name": "istio-eastwestgateway", "type": "NodePort", "node_port": self.node_port,
                                   "ingress": []}
            obs.node_addresses = self.node_addresses()
        return obs


class FakeAccess:
    def __init__(self, cluster, spec):
        self.cluster, self.spec = cluster, spec

    def observe(self):
        return self.cluster.observe(self.spec)

    def create_token_secret(self, body):
        self.cluster.writes.append(("create", istio.TOKEN_SECRET))
        self.cluster.secrets[istio.TOKEN_SECRET] = dict(copy.deepcopy(body), token="token-of-%s" % self.cluster.name)

    def wait_token(self, timeout):
        return self.cluster.secrets[istio.TOKEN_SECRET]["token"]

    def wait_gateway(self, timeout):
        return None

    def apply(self, action):
        self.cluster.writes.append((action.action, action.name))
        if action.kind == "Secret":
            if action.action == "delete":
                del self.cluster.secrets[action.name]
            else:
                self.cluster.secrets[action.name] = copy.deepcopy(action.body)
        else:
            assert action.name == istio.STATE_CONFIGMAP, "the module writes no other ConfigMap (Helm owns istio)"
            if action.action == "delete":
                del self.cluster.configmaps[action.name]
            else:
                self.cluster.configmaps[action.name] = copy.deepcopy(action.body)

    def restart(self, deployment):
        self.cluster.restarts.append(deployment)


@pytest.fixture
def lab():
    return {name: FakeCluster(name, i) for i, name in enumerate(["cluster01", "cluster02", "cluster03", "cluster04"], 1)}


def chart_mesh_networks(networks):
    """The meshNetworks key as the istiod chart renders it from global.meshNetworks."""
    return yaml.safe_dump({"networks": networks})


def run(lab, clusters, groups, check_mode=False, **options):
    """One join/remove as the playbooks make it: the module, then the istio role upgrading istiod with
    the meshNetworks the module planned, on the clusters it names."""
    specs = istio.clusters_from_params(clusters)
    merged = dict(OPTIONS, **options)
    result = _istio_run.run(specs, groups, merged, check_mode, lambda spec: FakeAccess(lab[spec.name], spec))
    if not check_mode:
        carry_mesh_networks(lab, result.as_dict())
    return result


def carry_mesh_networks(lab, result):
    """What playbooks/istio_mesh_networks.yml does with the module's result: istiod's release renders them."""
    for name in result["mesh_networks_changed"]:
        lab[name].configmaps["istio"]["meshNetworks"] = chart_mesh_networks(result["mesh_networks"][name])


def remote_secret_names(cluster):
    return sorted(n for n in cluster.secrets if n.startswith(istio.REMOTE_SECRET_PREFIX))


def test_join_two_groups_creates_every_cross_group_secret_and_mesh_networks(lab):
    result = run(lab, params(), ["net-a", "net-b"])
    assert result.joined_after == ["net-a", "net-b"]
    assert remote_secret_names(lab["cluster01"]) == ["istio-remote-secret-cluster03", "istio-remote-secret-cluster04"]
    assert remote_secret_names(lab["cluster04"]) == ["istio-remote-secret-cluster01", "istio-remote-secret-cluster02"]
    secret = lab["cluster01"].secrets["istio-remote-secret-cluster03"]
    assert secret["metadata"]["labels"][istio.MULTICLUSTER_LABEL] == "true"
    assert secret["metadata"]["annotations"][istio.CLUSTER_ANNOTATION] == "cluster03"
    kubeconfig = yaml.safe_load(base64.b64decode(secret["data"]["cluster03"]))
    assert kubeconfig["clusters"][0]["cluster"] == {
        "server": "https://172.30.3.10:30443", "tls-server-name": "kubernetes",
        "certificate-authority-data": base64.b64encode(b"CA cluster03").decode()}
    assert kubeconfig["users"][0]["user"]["token"] == "token-of-cluster03"
    assert kubeconfig["current-context"] == "cluster03"
    networks = istio.parse_mesh_networks(lab["cluster02"].configmaps["istio"]["meshNetworks"])
    assert networks["net-b"] == {
        "endpoints": [{"fromRegistry": "cluster03"}, {"fromRegistry": "cluster04"}],
        "gateways": [{"address": "172.30.3.11", "port": 31003}, {"address": "172.30.3.12", "port": 31003},
                     {"address": "172.30.4.11", "port": 31004}, {"address": "172.30.4.12", "port": 31004}]}
    assert [cp["cluster"] for cp in result.control_planes] == ["cluster01", "cluster02", "cluster03", "cluster04"]
    assert not any(cp["restarted"] for cp in result.control_planes)


def test_second_join_changes_nothing(lab):
    run(lab, params(), ["net-a", "net-b"])
    again = run(lab, params(), ["net-a", "net-b"])
    assert again.actions == [] and again.control_planes == []


def test_check_mode_plans_without_writing_and_masks_tokens(lab):
    result = run(lab, params(), ["net-a", "net-b"], check_mode=True)
    assert all(not c.writes for c in lab.values())
    created = {(a.cluster, a.name) for a in result.actions if a.action == "create"}
    assert ("cluster01", "istio-remote-secret-cluster03") in created
    assert ("cluster03", istio.TOKEN_SECRET) in created
    rendered = repr(result.as_dict())
    assert "token-of" not in rendered
    assert istio.MASK in rendered


def test_diff_never_shows_a_token(lab):
    run(lab, params(), ["net-a", "net-b"])
    lab["cluster03"].secrets[istio.TOKEN_SECRET]["token"] = "rotated-token"
    result = run(lab, params(), ["net-a", "net-b"], check_mode=True)
    updated = [a for a in result.actions if a.action == "update"]
    assert {a.name for a in updated} == {"istio-remote-secret-cluster03"}
    assert "rotated-token" not in repr(result.as_dict()) and "token-of" not in repr(result.as_dict())


def test_remove_deletes_exactly_the_group_objects_on_every_side(lab):
    run(lab, params(), ["net-a", "net-b"])
    lab["cluster01"].secrets["istio-remote-secret-foreign"] = {
        "metadata": {"labels": {istio.MULTICLUSTER_LABEL: "true"}, "annotations": {istio.CLUSTER_ANNOTATION: "x"}},
        "data": {}}
    result = run(lab, params(), ["net-b"], state="absent")
    assert result.joined_after == ["net-a"]
    assert remote_secret_names(lab["cluster01"]) == ["istio-remote-secret-foreign"]
    assert remote_secret_names(lab["cluster03"]) == []
    assert istio.STATE_CONFIGMAP not in lab["cluster03"].configmaps
    assert istio.TOKEN_SECRET not in lab["cluster03"].secrets
    assert istio.parse_mesh_networks(lab["cluster03"].configmaps["istio"]["meshNetworks"]) == {}
    assert sorted(istio.parse_mesh_networks(lab["cluster01"].configmaps["istio"]["meshNetworks"])) == ["net-a"]
    assert run(lab, params(), ["net-b"], state="absent").actions == []


def test_third_group_joins_with_secrets_for_both_others(lab):
    moved = {"cluster01": "net-a", "cluster02": "net-a", "cluster03": "net-b", "cluster04": "net-c"}
    run(lab, params(moved), ["net-a", "net-b", "net-c"])
    assert remote_secret_names(lab["cluster04"]) == [
        "istio-remote-secret-cluster01", "istio-remote-secret-cluster02", "istio-remote-secret-cluster03"]
    assert remote_secret_names(lab["cluster03"]) == [
        "istio-remote-secret-cluster01", "istio-remote-secret-cluster02", "istio-remote-secret-cluster04"]


@pytest.mark.parametrize("change, code", [
    ({"cluster04": "net-c"}, "JOINED_GROUP_CHANGED"),
    ({"cluster03": "net-z", "cluster04": "net-z"}, "GROUP_RENAMED"),
    ({"cluster03": "net-a", "cluster04": "net-a"}, "GROUP_EMPTY"),
])
def test_joined_group_membership_changes_are_refused_before_any_write(lab, change, code):
    run(lab, params(), ["net-a", "net-b"])
    for cluster in lab.values():
        cluster.writes.clear()
    groups = {"cluster01": "net-a", "cluster02": "net-a", "cluster03": "net-b", "cluster04": "net-b"}
    groups.update(change)
    with pytest.raises(InterconnectError) as err:
        run(lab, params(groups), ["net-a"])
    assert code in {p.code for p in err.value.problems}
    assert "nothing was changed" in str(err.value)
    assert all(not c.writes for c in lab.values())


def test_joined_group_gateways_cannot_change_but_addresses_can(lab):
    run(lab, params(), ["net-a", "net-b"])
    without = params(gateways={"cluster01": NODEPORT, "cluster02": NODEPORT, "cluster03": NODEPORT})
    with pytest.raises(InterconnectError) as err:
        run(lab, without, ["net-a", "net-b"])
    assert [p.code for p in err.value.problems] == ["JOINED_GATEWAYS_CHANGED"]
    assert "cluster04" in err.value.problems[0].clusters
    fixed = params(gateways={"cluster01": dict(NODEPORT, address="203.0.113.7"), "cluster02": NODEPORT,
                             "cluster03": NODEPORT, "cluster04": NODEPORT})
    result = run(lab, fixed, ["net-a", "net-b"], addresses_only=True)
    kinds = {(a.kind, a.name) for a in result.actions}
    assert kinds == {("ConfigMap", istio.STATE_CONFIGMAP)}
    assert result.as_dict()["mesh_networks_changed"] == ["cluster01", "cluster02", "cluster03", "cluster04"]
    networks = istio.parse_mesh_networks(lab["cluster03"].configmaps["istio"]["meshNetworks"])
    assert {"address": "203.0.113.7", "port": 31001} in networks["net-a"]["gateways"]
    assert {"address": "172.30.1.11", "port": 31001} not in networks["net-a"]["gateways"]


def test_address_update_refuses_groups_not_joined(lab):
    with pytest.raises(InterconnectError) as err:
        run(lab, params(), ["net-a"], addresses_only=True)
    assert [p.code for p in err.value.problems] == ["INTERCONNECT_NOT_JOINED"]


def test_group_without_gateway_cannot_join(lab):
    clusters = params(gateways={"cluster01": NODEPORT, "cluster02": NODEPORT})
    with pytest.raises(InterconnectError) as err:
        run(lab, clusters, ["net-a", "net-b"])
    assert [p.code for p in err.value.problems] == ["INTERCONNECT_NO_GATEWAY"]
    assert err.value.problems[0].group == "net-b"


def test_missing_istio_and_unexposed_api_are_reported_together(lab):
    lab["cluster02"].namespace = False
    clusters = params()
    del clusters["cluster03"]["api_url"]
    with pytest.raises(InterconnectError) as err:
        run(lab, clusters, ["net-a", "net-b"])
    assert sorted(p.code for p in err.value.problems) == ["API_NOT_EXPOSED", "ISTIO_MISSING"]


def test_restart_only_when_asked_and_only_affected_clusters(lab):
    run(lab, params(), ["net-a", "net-b"])
    fixed = params(gateways={"cluster01": dict(NODEPORT, address="203.0.113.7"), "cluster02": NODEPORT,
                             "cluster03": NODEPORT, "cluster04": NODEPORT})
    result = run(lab, fixed, ["net-a", "net-b"], restart_control_plane=True)
    assert all(cp["restarted"] for cp in result.control_planes)
    assert [c.restarts for c in lab.values()] == [["istiod"]] * 4


def test_foreign_mesh_networks_entries_are_kept(lab):
    lab["cluster01"].configmaps["istio"]["meshNetworks"] = chart_mesh_networks(
        {"vm-net": {"endpoints": [{"fromCidr": "192.0.2.0/24"}], "gateways": []}})
    run(lab, params(), ["net-a", "net-b"])
    assert sorted(istio.parse_mesh_networks(lab["cluster01"].configmaps["istio"]["meshNetworks"])) == [
        "net-a", "net-b", "vm-net"]


def test_info_reports_missing_and_unexpected_secrets(lab):
    run(lab, params(), ["net-a", "net-b"])
    del lab["cluster01"].secrets["istio-remote-secret-cluster04"]
    specs = istio.clusters_from_params(params())
    observed = {n: lab[n].observe(s) for n, s in specs.items()}
    report = _istio_report.info(specs, observed, OPTIONS)
    assert report["clusters"]["cluster01"]["missing"] == ["istio-remote-secret-cluster04"]
    assert report["in_sync"] is False
    assert report["joined_groups"] == ["net-a", "net-b"]
    assert report["groups"]["net-b"]["joined"] is True
    run(lab, params(), ["net-a", "net-b"])
    observed = {n: lab[n].observe(s) for n, s in specs.items()}
    assert _istio_report.info(specs, observed, OPTIONS)["in_sync"] is True


@pytest.mark.parametrize("joined, confirmation, count", [
    ([], "disable interconnect", 0),
    (["net-a"], "disable interconnect", 1),
    ([], "yes", 1),
    (["net-a"], None, 2),
])
def test_disable_needs_every_group_removed_and_the_phrase(joined, confirmation, count):
    problems = _istio_rules.disable_problems(joined, confirmation, "disable interconnect")
    assert len(problems) == count
    assert all(p.code and p.field and p.fix for p in problems)


@pytest.mark.parametrize("entry, fragment", [
    ({"network_group": "Net_A"}, "network_group"),
    ({"network_group": "net-a", "bogus": 1}, "unknown keys bogus"),
    ({"network_group": "net-a", "eastwest_gateway": "yes"}, "eastwest_gateway"),
])
def test_bad_cluster_entries_name_the_field(entry, fragment):
    with pytest.raises(InterconnectError, match=fragment):
        istio.clusters_from_params({"c1": entry})


@pytest.mark.parametrize("gateway, service, nodes, expected", [
    ({"service_type": "LoadBalancer"}, {"ingress": ["198.51.100.4"]}, [], [{"address": "198.51.100.4", "port": 15443}]),
    ({"service_type": "LoadBalancer", "address": "gw.example.com"}, {"ingress": []}, [],
     [{"address": "gw.example.com", "port": 15443}]),
    ({"service_type": "NodePort"}, {"node_port": 31443}, ["10.0.0.2", "10.0.0.1"],
     [{"address": "10.0.0.1", "port": 31443}, {"address": "10.0.0.2", "port": 31443}]),
    ({"service_type": "NodePort", "node_port": 32443, "address": "203.0.113.9"}, {"node_port": 32443}, [],
     [{"address": "203.0.113.9", "port": 32443}]),
])
def test_gateway_addresses(gateway, service, nodes, expected):
    spec = ClusterSpec(name="c1", group="g", gateway=gateway)
    found, reason = _istio_plan.gateway_addresses(spec, Observed(gateway_service=service, node_addresses=nodes))
    assert reason is None and found == expected


def test_pending_load_balancer_is_named():
    spec = ClusterSpec(name="c1", group="g", gateway={"service_type": "LoadBalancer"})
    found, reason = _istio_plan.gateway_addresses(spec, Observed(gateway_service={"name": "gw", "ingress": []}))
    assert found == [] and "load balancer" in reason


def params_without_api_facts():
    """The module's input before the apiserver_nodeport role ran: no API URL, CA or server name."""
    bare = params()
    for entry in bare.values():
        for key in ("api_url", "ca_data", "tls_server_name"):
            del entry[key]
    return bare


def test_info_without_api_facts_judges_only_presence_and_token(lab):
    run(lab, params(), ["net-a", "net-b"])
    bare = params_without_api_facts()
    specs = istio.clusters_from_params(bare)
    observed = {n: lab[n].observe(s) for n, s in specs.items()}
    assert _istio_report.info(specs, observed, OPTIONS)["in_sync"] is True
    lab["cluster03"].secrets[istio.TOKEN_SECRET]["token"] = "rotated"
    observed = {n: lab[n].observe(s) for n, s in specs.items()}
    report = _istio_report.info(specs, observed, OPTIONS)
    assert report["clusters"]["cluster01"]["stale"] == ["istio-remote-secret-cluster03"]


def test_remove_and_address_update_need_no_exposed_api(lab):
    run(lab, params(), ["net-a", "net-b"])
    bare = params_without_api_facts()
    result = run(lab, bare, ["net-b"], state="absent")
    assert result.joined_after == ["net-a"]
    assert remote_secret_names(lab["cluster01"]) == []
    run(lab, params(), ["net-b"])
    assert run(lab, bare, ["net-a", "net-b"], addresses_only=True).actions == []


def test_check_mode_from_nothing_plans_the_join_on_top_of_the_planned_istio_stage(lab):
    for cluster in lab.values():
        cluster.namespace = False
    result = run(lab, params(), ["net-a", "net-b"], check_mode=True, planned_prerequisites=True).as_dict()
    assert all(not c.writes for c in lab.values())
    assert [a["cluster"] for a in result["assumed"]] == ["cluster01", "cluster02", "cluster03", "cluster04"]
    assert "east-west gateway Service istio-eastwestgateway" in result["assumed"][0]["planned"]
    planned = {(a["cluster"], a["name"]) for a in result["plan"]}
    assert ("cluster01", "istio-remote-secret-cluster03") in planned and ("cluster04", "istio-remote-secret-cluster02") in planned
    assert ("cluster01", "istio-remote-secret-cluster02") not in planned
    assert {("cluster%02d" % i, istio.TOKEN_SECRET) for i in range(1, 5)} <= planned
    gateways = result["mesh_networks"]["cluster01"]["net-b"]["gateways"]
    # The gateway's node port exists only once istio_mesh.yml has created the Service; the plan says so.
    assert gateways[0]["address"] == "172.30.3.11" and gateways[0]["port"] == "<node port of 15443, once applied>"
    token = result["diff"]["after"]["cluster01/Secret/istio-remote-secret-cluster03"]["users"][0]["user"]["token"]
    assert token == istio.MASK


def test_planned_prerequisites_change_nothing_outside_check_mode_or_without_the_flag(lab):
    lab["cluster02"].namespace = False
    for check_mode, flag in ((False, True), (True, False)):
        with pytest.raises(InterconnectError) as err:
            run(lab, params(), ["net-a", "net-b"], check_mode=check_mode, planned_prerequisites=flag)
        assert "ISTIO_MISSING" in {p.code for p in err.value.problems}
    assert all(not c.writes for c in lab.values())
