"""URLs on NodePorts, and the merge of kubeconfig entries: what is written, kept, removed and shown."""

from __future__ import annotations

import base64
import copy

import pytest

from ansible_collections.multicloud.interconnect.plugins.filter.apiserver import FilterModule as ApiserverFilters
from ansible_collections.multicloud.interconnect.plugins.module_utils import _kubeconfig as kc


def node(name, addresses, ready=True, control_plane=False):
    labels = {"node-role.kubernetes.io/control-plane": ""} if control_plane else {}
    return {"metadata": {"name": name, "labels": labels},
            "status": {"addresses": [{"type": t, "address": a} for t, a in addresses],
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


NODES = [
    node("c1-control-plane", [("InternalIP", "172.30.1.10"), ("Hostname", "c1-control-plane")], control_plane=True),
    node("c1-worker2", [("InternalIP", "172.30.1.12"), ("ExternalIP", "203.0.113.12")]),
    node("c1-worker", [("InternalIP", "172.30.1.11"), ("ExternalIP", "203.0.113.11")]),
    node("c1-worker3", [("InternalIP", "172.30.1.13")], ready=False),
]


# --------------------------------------------------------------------------- URLs

@pytest.mark.parametrize("address,port,url", [
    ("172.30.1.11", 31643, "https://172.30.1.11:31643"),
    ("fd00::11", 30000, "https://[fd00::11]:30000"),
    ("node-a.example.com", "32000", "https://node-a.example.com:32000"),
])
def test_format_url(address, port, url):
    assert kc.format_url(address, port) == url


def test_node_urls_ready_workers_first_then_control_plane_then_not_ready():
    assert kc.node_urls(NODES, 31643) == [
        "https://172.30.1.11:31643", "https://172.30.1.12:31643",
        "https://172.30.1.10:31643", "https://172.30.1.13:31643"]


def test_node_urls_order_does_not_depend_on_the_api_order():
    assert kc.node_urls(list(reversed(NODES)), 31643) == kc.node_urls(NODES, 31643)


def test_node_urls_external_ip_skips_nodes_without_one():
    assert kc.node_urls(NODES, 30001, "ExternalIP") == ["https://203.0.113.11:30001", "https://203.0.113.12:30001"]


def test_node_urls_no_address_of_the_type_names_cluster_and_types_seen():
    with pytest.raises(kc.KubeconfigError) as err:
        kc.node_urls(NODES[:1], 30001, "ExternalIP", "cluster01")
    assert "cluster cluster01" in str(err.value)
    assert "Hostname, InternalIP" in str(err.value)
    assert "apiserver_nodeport_address_type" in str(err.value)


@pytest.mark.parametrize("address_type,node_port,text", [
    ("PublicIP", 30001, "is not one of"),
    ("InternalIP", None, "has no nodePort"),
])
def test_node_urls_bad_input(address_type, node_port, text):
    with pytest.raises(kc.KubeconfigError, match=text):
        kc.node_urls(NODES, node_port, address_type, "cluster02")


def test_node_urls_same_address_once():
    twin = node("c1-twin", [("InternalIP", "172.30.1.11")])
    assert kc.node_urls([NODES[2], twin], 31000) == ["https://172.30.1.11:31000"]


@pytest.mark.parametrize("ports,expected", [
    ([{"port": 6443, "nodePort": 31643}], 31643),
    ([{"port": 8443, "nodePort": 30100}, {"port": 6443, "nodePort": 30200}], 30200),
    ([{"port": 443, "nodePort": 30300}], 30300),  # the only port
    ([{"port": 6443}], None),
    ([], None),
])
def test_service_node_port(ports, expected):
    assert kc.service_node_port({"spec": {"ports": ports}}, 6443) == expected


def test_ca_data_from_configmap_is_base64_of_the_pem():
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    data = kc.ca_data_from_configmap([{"data": {"ca.crt": pem}}])
    assert base64.b64decode(data).decode() == pem


def test_ca_data_missing_says_how_to_fix():
    with pytest.raises(kc.KubeconfigError, match="apiserver_nodeport_ca_data"):
        kc.ca_data_from_configmap([], "cluster03")


def test_reader_reference():
    assert kc.reader_reference(False, "kube-system", "r", "r-token", "r") is None
    assert kc.reader_reference(True, "kube-system", "r", "r-token", "r") == {
        "namespace": "kube-system", "name": "r", "token_secret": "r-token", "cluster_role": "r"}


# --------------------------------------------------------------------------- module input from the role

READER = kc.reader_reference(True, "kube-system", "reader", "reader-token", "reader")


def test_cluster_entry_admin_and_reader_contexts():
    spec = kc.cluster_entry_spec("cluster01", "https://172.30.1.11:31643", "kubernetes", "Q0E=", "admin",
                                 "/k/c1.yaml", "ctx1", READER)
    assert spec["tls_server_name"] == "kubernetes"
    assert [(c["name"], c["credentials"]) for c in spec["contexts"]] == [
        ("cluster01", "kubeconfig"), ("cluster01-reader", "service_account_token")]
    assert spec["contexts"][1]["secret_name"] == "reader-token"
    assert all(c["kubeconfig"] == "/k/c1.yaml" and c["context"] == "ctx1" for c in spec["contexts"])


def test_cluster_entry_reader_user_and_no_reader():
    spec = kc.cluster_entry_spec("c2", "https://h:1", "", "Q0E=", "reader", None, None, READER, "-ro")
    assert [(c["name"], c["credentials"]) for c in spec["contexts"]] == [
        ("c2", "service_account_token"), ("c2-ro", "service_account_token")]
    assert spec["tls_server_name"] is None
    spec = kc.cluster_entry_spec("c2", "https://h:1", "kubernetes", "Q0E=", "admin")
    assert [c["name"] for c in spec["contexts"]] == ["c2"]


@pytest.mark.parametrize("user,reader,text", [("root", READER, "admin or reader"), ("reader", None, "reader_enabled")])
def test_cluster_entry_refuses(user, reader, text):
    with pytest.raises(kc.KubeconfigError, match=text):
        kc.cluster_entry_spec("c3", "https://h:1", "kubernetes", "Q0E=", user, reader=reader)


def test_collect_entries_and_keep_names():
    hostvars = {
        "cluster01": {"entry": {"name": "cluster01"}},
        "cluster02": {"entry": {"name": "cluster02"}},
        "cluster03": {"cluster_name": "east"},  # failed or outside --limit: no entry
        "cluster04": {},
    }
    assert [e["name"] for e in kc.collect_entries(hostvars, ["cluster01", "cluster02", "cluster03"], "entry")] == [
        "cluster01", "cluster02"]
    assert kc.keep_names(["cluster01", "east", "cluster04", "east"], ["cluster01", "cluster02"]) == ["east", "cluster04"]
    keep = ApiserverFilters().filters()["apiserver_kubeconfig_keep"]
    assert keep(hostvars, list(hostvars), ["cluster01", "cluster02"], "entry") == ["east", "cluster04"]


# --------------------------------------------------------------------------- merge

CA = base64.b64encode(b"CA").decode()


def cluster(name, server="https://172.30.1.11:31643", contexts=None):
    return {"name": name, "server": server, "tls_server_name": "kubernetes", "certificate_authority_data": CA,
            "contexts": contexts or [{"name": name}]}


def users_for(*clusters, token="t0"):
    return {c["name"]: {"token": token} for cl in clusters for c in cl["contexts"]}


UNRELATED = {
    "apiVersion": "v1", "kind": "Config", "current-context": "mine",
    "clusters": [{"name": "mine", "cluster": {"server": "https://10.0.0.1:6443"}}],
    "contexts": [{"name": "mine", "context": {"cluster": "mine", "user": "me"}}],
    "users": [{"name": "me", "user": {"token": "my-own-token"}}],
}


def test_merge_adds_marked_entries_and_keeps_unrelated_ones():
    c1 = cluster("cluster01")
    config, summary = kc.merge(copy.deepcopy(UNRELATED), [c1], users_for(c1))
    assert [e["name"] for e in config["clusters"]] == ["mine", "cluster01"]
    assert config["clusters"][0] == UNRELATED["clusters"][0]
    assert config["users"][0] == UNRELATED["users"][0]
    body = config["clusters"][1]["cluster"]
    assert body["server"] == "https://172.30.1.11:31643"
    assert body["tls-server-name"] == "kubernetes"
    assert body["certificate-authority-data"] == CA
    assert kc.managed_cluster(body) == "cluster01"
    assert config["contexts"][1]["context"]["cluster"] == "cluster01"
    assert config["contexts"][1]["context"]["user"] == "cluster01"
    assert config["current-context"] == "mine"
    assert summary["added"] == ["clusters/cluster01", "contexts/cluster01", "users/cluster01"]


def test_merge_twice_changes_nothing():
    clusters = [cluster("cluster01"), cluster("cluster02", "https://172.30.2.11:30000")]
    first, _summary = kc.merge(kc.empty_config(), clusters, users_for(*clusters))
    second, summary = kc.merge(copy.deepcopy(first), clusters, users_for(*clusters))
    assert second == first
    assert summary["added"] == summary["updated"] == summary["removed"] == []
    assert len(summary["unchanged"]) == 6


def test_merge_updates_in_place():
    c1 = cluster("cluster01")
    first, _summary = kc.merge(copy.deepcopy(UNRELATED), [c1], users_for(c1))
    moved = cluster("cluster01", "https://172.30.1.12:31643")
    second, summary = kc.merge(first, [moved], users_for(moved, token="t1"))
    assert [e["name"] for e in second["clusters"]] == ["mine", "cluster01"]
    assert second["clusters"][1]["cluster"]["server"] == "https://172.30.1.12:31643"
    assert summary["updated"] == ["clusters/cluster01", "users/cluster01"]


def test_merge_prunes_only_marked_entries_of_clusters_that_left():
    clusters = [cluster("cluster01"), cluster("cluster02", contexts=[{"name": "cluster02"}, {"name": "cluster02-reader"}])]
    first, _summary = kc.merge(copy.deepcopy(UNRELATED), clusters, users_for(*clusters))
    second, summary = kc.merge(first, clusters[:1], users_for(clusters[0]))
    assert sorted(summary["removed"]) == ["clusters/cluster02", "contexts/cluster02", "contexts/cluster02-reader",
                                          "users/cluster02", "users/cluster02-reader"]
    assert [e["name"] for e in second["contexts"]] == ["mine", "cluster01"]
    assert second["users"][0] == UNRELATED["users"][0]


@pytest.mark.parametrize("keep,prune", [(["cluster02"], True), ([], False)])
def test_merge_keep_or_no_prune_leaves_entries(keep, prune):
    clusters = [cluster("cluster01"), cluster("cluster02")]
    first, _summary = kc.merge(kc.empty_config(), clusters, users_for(*clusters))
    second, summary = kc.merge(first, clusters[:1], users_for(clusters[0]), keep=keep, prune=prune)
    assert summary["removed"] == []
    assert [e["name"] for e in second["clusters"]] == ["cluster01", "cluster02"]


def test_merge_takes_over_an_unmarked_entry_of_the_same_name():
    existing = copy.deepcopy(UNRELATED)
    existing["clusters"].append({"name": "cluster01", "cluster": {"server": "https://old:6443"}})
    c1 = cluster("cluster01")
    config, summary = kc.merge(existing, [c1], users_for(c1))
    assert [e["name"] for e in config["clusters"]] == ["mine", "cluster01"]
    assert "clusters/cluster01" in summary["updated"]


def test_merge_current_context():
    c1 = cluster("cluster01")
    config, _summary = kc.merge(copy.deepcopy(UNRELATED), [c1], users_for(c1), current_context="cluster01")
    assert config["current-context"] == "cluster01"
    config, _summary = kc.merge(config, [], {})
    assert config["current-context"] == ""  # it named a removed context
    with pytest.raises(kc.KubeconfigError, match="not one of the contexts"):
        kc.merge(kc.empty_config(), [c1], users_for(c1), current_context="nope")


@pytest.mark.parametrize("clusters,text", [
    ([cluster("a"), cluster("a")], "listed 2 times"),
    ([cluster("a"), cluster("b", contexts=[{"name": "a"}])], "context a is asked for by clusters a and b"),
    ([cluster("a", server="http://h:1")], "not an https:// URL"),
])
def test_merge_refuses_ambiguous_input(clusters, text):
    with pytest.raises(kc.KubeconfigError, match=text):
        kc.merge(kc.empty_config(), clusters, users_for(*clusters))


@pytest.mark.parametrize("config,text", [
    ([1, 2], "not a mapping"),
    ({"kind": "Pod"}, "kind 'Pod'"),
    ({"clusters": {"a": 1}}, "list of named entries"),
    ({"users": [{"user": {}}]}, "list of named entries"),
])
def test_check_config_refuses_what_it_would_destroy(config, text):
    with pytest.raises(kc.KubeconfigError, match=text):
        kc.check_config(config, "/tmp/x")


def test_check_config_none_is_empty():
    assert kc.check_config(None) == kc.empty_config()


# --------------------------------------------------------------------------- credentials

SOURCE = {
    "current-context": "admin@c1",
    "contexts": [{"name": "admin@c1", "context": {"cluster": "c1", "user": "admin"}},
                 {"name": "other", "context": {"cluster": "c1", "user": "files"}}],
    "users": [{"name": "admin", "user": {"client-certificate-data": "Q0VSVA==", "client-key-data": "S0VZ"}},
              {"name": "files", "user": {"client-certificate": "pki/admin.crt", "client-key": "/abs/admin.key",
                                         "extensions": [{"name": "x", "extension": {}}]}}],
}


def test_user_from_config_current_context():
    expected = {"client-certificate-data": "Q0VSVA==", "client-key-data": "S0VZ"}
    assert kc.user_from_config(SOURCE, None, "/k", "/k/c1.yaml") == expected


def test_user_from_config_resolves_relative_paths_and_drops_extensions():
    expected = {"client-certificate": "/k/pki/admin.crt", "client-key": "/abs/admin.key"}
    assert kc.user_from_config(SOURCE, "other", "/k", "/k/c1.yaml") == expected


@pytest.mark.parametrize("context,text", [("missing", "has no context 'missing'"), (None, "no current-context")])
def test_user_from_config_errors(context, text):
    source = dict(SOURCE)
    if context is None:
        source.pop("current-context")
    with pytest.raises(kc.KubeconfigError, match=text):
        kc.user_from_config(source, context, "/k", "/k/c1.yaml")


def test_token_from_secret():
    assert kc.token_from_secret({"data": {"token": base64.b64encode(b"abc.def").decode()}}, "ns", "s") == "abc.def"
    assert kc.token_from_secret({"data": {}}, "ns", "s") is None
    assert kc.token_from_secret(None, "ns", "s") is None
    with pytest.raises(kc.KubeconfigError, match="not base64"):
        kc.token_from_secret({"data": {"token": "***"}}, "ns", "s")


# --------------------------------------------------------------------------- masking

def test_masked_hides_every_credential_and_keeps_the_rest():
    config = copy.deepcopy(UNRELATED)
    config["users"].append({"name": "exec", "user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                                                              "command": "aws", "args": ["--token", "s3cr3t"],
                                                              "env": [{"name": "K", "value": "v"}]}}})
    config["users"].append({"name": "cert", "user": {"client-certificate": "/p/c.crt", "client-key-data": "S0VZ",
                                                     "password": "pw"}})
    shown = kc.masked(config)
    text = repr(shown)
    for secret in ("my-own-token", "s3cr3t", "S0VZ", "pw'"):
        assert secret not in text
    assert shown["users"][1]["user"]["exec"]["command"] == "aws"
    assert shown["users"][2]["user"]["client-certificate"] == "/p/c.crt"
    assert shown["clusters"] == config["clusters"]
    assert config["users"][0]["user"]["token"] == "my-own-token"  # the input is not modified


def test_diff_marks_changed_credentials_without_showing_them():
    before = copy.deepcopy(UNRELATED)
    after = copy.deepcopy(UNRELATED)
    after["users"][0]["user"]["token"] = "new-token"
    shown_before, shown_after = kc.diff(before, after)
    assert shown_before["users"][0]["user"]["token"] == kc.MASK
    assert shown_after["users"][0]["user"]["token"] == kc.MASK_CHANGED
    assert "new-token" not in repr(shown_after) and "my-own-token" not in repr(shown_before)
    same_before, same_after = kc.diff(before, before)
    assert same_before == same_after
