"""The lab's kubelet stand-in (tools/lab/podrunner.py): how a Pod spec becomes a process. No lab needed."""

from __future__ import annotations

import base64
import os
import sys
import urllib.error
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "lab"))
import podrunner as pr  # noqa: E402  pylint: disable=import-error,wrong-import-position

POD = {"metadata": {"namespace": "kube-system", "name": "clustermesh-apiserver-1", "uid": "u-1",
                    "labels": {"app": "x"}},
       "spec": {"serviceAccountName": "clustermesh-apiserver", "nodeName": "n1"},
       "status": {"podIP": "10.244.1.7", "hostIP": "172.30.1.11"}}


class FakeApi:
    """Objects by path; a POST of a TokenRequest answers a token naming its audience."""

    def __init__(self, objects):
        self.objects = objects
        self.posts = []

    def call(self, method, path, body=None):
        if method == "POST":
            self.posts.append((path, body))
            return {"status": {"token": "token-for-%s" % ",".join(body["spec"].get("audiences", ["api"]))}}
        if path in self.objects:
            return self.objects[path]
        raise urllib.error.HTTPError(path, 404, "not found", {}, None)


def test_image_names_and_tags():
    assert pr.image_name("quay.io/cilium/clustermesh-apiserver:v1.20.2@sha256:abc") == "clustermesh-apiserver"
    assert pr.image_tag("quay.io/cilium/clustermesh-apiserver:v1.20.2@sha256:abc") == "v1.20.2"
    assert pr.image_name("docker.io/istio/pilot") == "pilot" and pr.image_tag("docker.io/istio/pilot") == ""


def test_variable_expansion_as_kubernetes_does():
    env = {"CLUSTER_NAME": "cluster01"}
    assert pr.expand("--cluster-name=$(CLUSTER_NAME)", env) == "--cluster-name=cluster01"
    assert pr.expand("$(UNKNOWN) and $$(CLUSTER_NAME)", env) == "$(UNKNOWN) and $(CLUSTER_NAME)"


def test_field_and_resource_references():
    assert pr.field_value(POD, "metadata.uid") == "u-1"
    assert pr.field_value(POD, "status.podIP") == "10.244.1.7"
    assert pr.field_value(POD, "metadata.labels['app']") == "x"
    with pytest.raises(LookupError):
        pr.field_value(POD, "spec.containers")
    container = {"resources": {"limits": {"cpu": "500m"}, "requests": {"memory": "64Mi"}}}
    assert pr.resource_value(container, {"cpu": "32"}, {"resource": "limits.cpu"}) == "1"
    assert pr.resource_value({}, {"cpu": "32"}, {"resource": "limits.cpu"}) == "32"  # no limit: the node's
    assert pr.resource_value(container, {}, {"resource": "requests.memory", "divisor": "1Mi"}) == "64"


def test_environment_from_the_spec_and_the_kubernetes_service():
    api = FakeApi({"/api/v1/namespaces/kube-system/configmaps/cilium-config": {"data": {"cluster-name": "cluster01"}},
                   "/api/v1/namespaces/kube-system/secrets/s": {"data": {"k": base64.b64encode(b"v").decode()}}})
    container = {"env": [
        {"name": "CLUSTER_NAME", "valueFrom": {"configMapKeyRef": {"name": "cilium-config", "key": "cluster-name"}}},
        {"name": "CLUSTER_ID", "valueFrom": {"configMapKeyRef": {"name": "cilium-config", "key": "cluster-id",
                                                                 "optional": True}}},
        {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        {"name": "TOKEN", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
        {"name": "ARG", "value": "$(CLUSTER_NAME)-$(TOKEN)"}]}
    env = pr.container_env(api, POD, container, {}, ("172.30.1.10", 6443))
    assert (env["CLUSTER_NAME"], env["SECRET"], env["ARG"]) == ("cluster01", "v", "cluster01-u-1")
    assert "CLUSTER_ID" not in env
    assert (env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"]) == ("172.30.1.10", "6443")
    container["env"].append({"name": "X", "valueFrom": {"configMapKeyRef": {"name": "missing", "key": "k"}}})
    with pytest.raises(pr.NotReady):
        pr.container_env(api, POD, container, {}, ("172.30.1.10", 6443))


def test_volumes_secret_configmap_projected_and_missing():
    api = FakeApi({"/api/v1/namespaces/kube-system/secrets/cert": {"data": {
        "tls.crt": base64.b64encode(b"CRT").decode(), "tls.key": base64.b64encode(b"KEY").decode()}},
        "/api/v1/namespaces/kube-system/configmaps/users": {"data": {"users.yaml": "users: []\n"}}})
    vols = pr.Volumes(api, POD, {})
    assert vols.files({"secret": {"secretName": "cert", "items": [{"key": "tls.key", "path": "k"}],
                                  "defaultMode": 0o400}}) == {"k": (b"KEY", 0o400)}
    assert vols.files({"configMap": {"name": "users"}}) == {"users.yaml": (b"users: []\n", 0o644)}
    projected = vols.files({"projected": {"defaultMode": 0o400, "sources": [
        {"secret": {"name": "absent", "optional": True}},
        {"secret": {"name": "cert", "items": [{"key": "tls.crt", "path": "common-etcd-client.crt"}]}},
        {"serviceAccountToken": {"path": "istio-token", "audience": "istio-ca", "expirationSeconds": 43200}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}})
    assert projected == {"common-etcd-client.crt": (b"CRT", 0o400), "istio-token": (b"token-for-istio-ca", 0o400),
                         "namespace": (b"kube-system", 0o400)}
    path, body = api.posts[0]
    assert path.endswith("/serviceaccounts/clustermesh-apiserver/token")
    assert body["spec"]["boundObjectRef"] == {"apiVersion": "v1", "kind": "Pod", "name": POD["metadata"]["name"],
                                              "uid": "u-1"}
    with pytest.raises(pr.NotReady, match="has no key ca.crt"):
        vols.files({"secret": {"secretName": "cert", "items": [{"key": "ca.crt", "path": "ca.crt"}]}})
    assert vols.files({"secret": {"secretName": "cert", "optional": True,
                                  "items": [{"key": "ca.crt", "path": "ca.crt"}]}}) == {}
    with pytest.raises(pr.NotReady, match="secret kube-system/absent not found"):
        vols.files({"secret": {"secretName": "absent"}})
    assert vols.files({"emptyDir": {}}) is None and vols.files({"hostPath": {"path": "/etc"}}) is None


def test_atomic_volume_swaps_data_and_drops_removed_keys(tmp_path):
    vol = tmp_path / "v"
    assert pr.write_atomic_volume(vol, {"a": (b"1", 0o400), "b": (b"2", 0o400)})
    assert not pr.write_atomic_volume(vol, {"a": (b"1", 0o400), "b": (b"2", 0o400)})  # unchanged: nothing written
    first = os.readlink(vol / "..data")
    assert pr.write_atomic_volume(vol, {"a": (b"3", 0o400)})
    assert os.readlink(vol / "..data") != first and not (vol / first).exists()
    assert (vol / "a").read_bytes() == b"3" and not (vol / "b").exists()
    assert oct((vol / "..data" / "a").stat().st_mode & 0o777) == oct(0o400)


def test_volumes_are_reread_at_every_loop_until_the_containers_run_then_every_few_seconds(monkeypatch, tmp_path):
    class Runner:
        images = {"clustermesh-apiserver": {}}
        node_ips = {"n1": "172.30.1.11"}
        cluster = {"name": "cluster01"}
        root = tmp_path
    pod = dict(POD, spec=dict(POD["spec"], containers=[{"name": "etcd", "image": "quay.io/cilium/clustermesh-apiserver:v1"}]))
    box = pr.Sandbox(Runner(), pod)
    syncs, clock = [], [1000.0]
    monkeypatch.setattr(box, "sync_volumes", lambda: syncs.append(clock[0]))
    monkeypatch.setattr(box, "_step_containers", lambda: None)
    monkeypatch.setattr(pr.time, "monotonic", lambda: clock[0])
    box.sync()
    box.sync()
    assert len(syncs) == 2  # nothing runs yet: every loop

    class Running:
        @staticmethod
        def poll():
            return None
    box.containers[0].proc = Running()
    clock[0] += 1
    box.sync()
    assert len(syncs) == 2  # running, synced a second ago
    clock[0] += pr.VOLUME_SYNC_SECONDS
    box.sync()
    assert len(syncs) == 3
