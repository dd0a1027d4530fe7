"""What cluster_objects counts as a difference, and what it lets out of a Secret."""

from __future__ import annotations

import pytest

from ansible_collections.multicloud.interconnect.plugins.module_utils import _kube_api, _objects

SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": "kube-system",
                                                               "labels": {"app": "api"}},
           "spec": {"type": "NodePort", "ports": [{"name": "https", "port": 6443, "targetPort": 6443}]}}


def live_service(**spec_changes):
    live = {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "api", "namespace": "kube-system", "labels": {"app": "api", "extra": "kept"},
                         "resourceVersion": "7", "uid": "u"},
            "spec": {"type": "NodePort", "clusterIP": "10.96.0.9",
                     "ports": [{"name": "https", "port": 6443, "targetPort": 6443, "nodePort": 31000, "protocol": "TCP"}]}}
    live["spec"].update(spec_changes)
    return live


def test_what_the_server_adds_is_no_difference():
    assert not _objects.object_changes(SERVICE, live_service())


def test_a_changed_or_missing_field_is_named_by_its_path():
    moved = live_service(ports=[{"name": "https", "port": 443, "targetPort": 6443, "nodePort": 31000}])
    assert _objects.object_changes(SERVICE, moved) == ["spec.ports[0].port"]
    assert _objects.object_changes(SERVICE, live_service(ports=[])) == ["spec.ports"]
    unlabelled = live_service()
    unlabelled["metadata"]["labels"] = {}
    assert _objects.object_changes(SERVICE, unlabelled) == ["metadata.labels.app"]


def test_lists_of_scalars_must_be_equal():
    desired = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "spec": {"cidrs": ["10.0.0.0/8"]}}
    observed = {"metadata": {"name": "c"}, "spec": {"cidrs": ["10.0.0.0/8", "192.168.0.0/16"]}}
    assert _objects.object_changes(desired, observed) == ["spec.cidrs"]


def test_an_absent_or_terminating_object_is_created():
    assert _objects.object_changes(SERVICE, None) == ["(create)"]
    going = live_service()
    going["metadata"]["deletionTimestamp"] = "2026-12-03T00:00:00Z"
    assert _objects.object_changes(SERVICE, going) == ["(create)"]


def test_a_secret_leaves_the_module_as_digests_without_server_bookkeeping():
    secret = {"apiVersion": "v1", "kind": "Secret",
              "metadata": {"name": "s", "resourceVersion": "1", "managedFields": [{"manager": "x"}]},
              "data": {"token": "dG9rZW4="}, "stringData": {"key": "plain"}}
    shown = _objects.masked(secret)
    assert shown["data"]["token"].startswith("sha256:") and "dG9rZW4=" not in str(shown)
    assert shown["stringData"]["key"].startswith("sha256:") and "plain" not in str(shown)
    assert "resourceVersion" not in shown["metadata"] and "managedFields" not in shown["metadata"]
    assert secret["data"]["token"] == "dG9rZW4="  # the caller's object is left alone
    assert _objects.masked({"kind": "ConfigMap", "data": {"a": "b"}})["data"] == {"a": "b"}


def workload(kind, generation=2, observed=2, **status):
    return {"kind": kind, "metadata": {"generation": generation}, "spec": {"replicas": 2},
            "status": dict(status, observedGeneration=observed)}


def test_what_counts_as_ready_for_each_kind_waited_for():
    available = [{"type": "Available", "status": "True"}]
    assert _objects.not_ready(workload("Deployment", updatedReplicas=2, availableReplicas=2, conditions=available)) is None
    assert _objects.not_ready(workload("Deployment", updatedReplicas=1, availableReplicas=2, conditions=available)) \
        == "2 of 2 replicas updated and available"
    assert "generation" in _objects.not_ready(workload("Deployment", observed=1, updatedReplicas=2, availableReplicas=2,
                                                       conditions=available))
    assert _objects.not_ready(workload("DaemonSet", desiredNumberScheduled=3, updatedNumberScheduled=3,
                                       numberAvailable=2)) == "2 of 3 Pods updated and available"
    assert _objects.not_ready(workload("StatefulSet", updatedReplicas=2, readyReplicas=2)) is None
    # A CRD has no observedGeneration of its own: Established is the whole answer.
    crd = {"kind": "CustomResourceDefinition", "metadata": {"generation": 3}, "status": {"conditions": [
        {"type": "Established", "status": "True"}]}}
    assert _objects.not_ready(crd) is None
    assert _objects.not_ready(dict(crd, status={})) == "not Established"
    assert _objects.not_ready(None) == "not found"
    assert _objects.not_ready({"kind": "ConfigMap", "metadata": {"generation": 5}}) is None


class Rollout:
    """A cluster whose Deployment becomes available at the third read."""

    name = "cluster01"

    def __init__(self, ready_at=3):
        self.reads, self.ready_at = 0, ready_at

    def get(self, ref):
        self.reads += 1
        available = self.reads >= self.ready_at
        return {"kind": ref["kind"], "metadata": {"generation": 1}, "spec": {"replicas": 1},
                "status": {"observedGeneration": 1, "updatedReplicas": 1, "availableReplicas": int(available),
                           "conditions": [{"type": "Available", "status": str(available)}]}}


DEPLOYMENT = {"api_version": "apps/v1", "kind": "Deployment", "namespace": "kube-system", "name": "cilium-operator"}


def test_a_wait_returns_once_ready_and_a_timeout_names_what_is_not_and_why():
    clock = iter(range(0, 1000, 2))
    cluster = Rollout()
    _objects.wait(cluster, [DEPLOYMENT], 60, clock=lambda: next(clock), sleep=lambda _s: None)
    assert cluster.reads == 3
    never = Rollout(ready_at=99)
    clock = iter(range(0, 1000, 2))
    with pytest.raises(_objects.ClusterError) as err:
        _objects.wait(never, [DEPLOYMENT], 10, clock=lambda: next(clock), sleep=lambda _s: None)
    assert str(err.value) == ("cluster cluster01: not ready after 10s: Deployment kube-system/cilium-operator "
                              "(0 of 1 replicas updated and available)")


def test_newest_reads_the_metadata_of_every_revision_and_one_revision_whole():
    """Helm's release Secrets: the list is asked for as metadata, then only the newest revision is read
    (the next newest when it was deleted in between)."""
    def secret(revision, data=True):
        item = {"metadata": {"name": "sh.helm.release.v1.cilium.v%d" % revision, "namespace": "kube-system",
                             "labels": {"owner": "helm", "name": "cilium", "version": str(revision)}}}
        if data:
            item["data"] = {"release": "r%d" % revision}
        return item

    calls, gone = [], set()

    class Transport:
        def request(self, method, path, query=(), accept=None, **kwargs):
            calls.append((path, accept))
            if path == "/api/v1":
                return {"resources": [{"kind": "Secret", "name": "secrets", "namespaced": True}]}
            if path.endswith("/secrets"):
                # As the API answers a metadata list, without data; 9 sorts before 10 only as a number.
                return {"items": [secret(r, data=accept is None) for r in (9, 10, 8)]}
            revision = int(path.rsplit(".v", 1)[1])
            if revision in gone:
                raise _kube_api.ApiError(404, "Not Found")
            return secret(revision)

    cluster = _objects.Objects.__new__(_objects.Objects)
    cluster.name, cluster.api = "cluster01", _kube_api.Api("cluster01", Transport())
    query = {"api_version": "v1", "kind": "Secret", "namespace": "kube-system", "label_selector": "owner=helm,name=cilium"}
    assert cluster.newest(query, "version") == [secret(10)]
    assert [accept for path, accept in calls if path.endswith("/secrets")] == [_objects.METADATA_ONLY]
    assert [path.rsplit("/", 1)[1] for path, _accept in calls if ".v" in path] == ["sh.helm.release.v1.cilium.v10"]
    gone.add(10)
    assert cluster.newest(query, "version") == [secret(9)]
    gone.update({8, 9})
    assert cluster.newest(query, "version") == []


def test_references_take_manifests_as_they_are_and_name_an_incomplete_entry():
    ref = {"api_version": "v1", "kind": "ConfigMap", "name": "probe", "namespace": "default"}
    assert _objects.references("absent", [SERVICE, ref]) == [
        {"api_version": "v1", "kind": "Service", "name": "api", "namespace": "kube-system"}, ref]
    with pytest.raises(ValueError, match=r"^absent\[1\] needs api_version, kind and name \(or a manifest\)$"):
        _objects.references("absent", [ref, {"apiVersion": "v1", "kind": "Service", "metadata": {}}])
