"""Module cluster_objects on a lab cluster: many objects in one call, compared before any write.

A namespace with a ConfigMap, a Service and a Secret is created in one call; the same call again
writes nothing (the objects' resourceVersions stay); a changed manifest is shown by a check run
(a server dry run) without being written, then applied; ``absent`` deletes; ``read`` returns
objects; a Secret's value never appears in the output.
"""

from __future__ import annotations

import json
import pathlib
import re

import pytest
import yaml
from site_helpers import run_playbook  # pylint: disable=import-error

pytestmark = pytest.mark.lab

CLUSTER = "cluster02"
NS = "mci-objects-test"
SECRET_VALUE = "c2VjcmV0LXZhbHVlLXRoYXQtbXVzdC1ub3Qtc2hvdw=="  # base64 of a recognisable string


def manifests(colour):
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": NS,
                                                               "labels": {"colour": colour}},
         "data": {"colour": colour}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": NS},
         "spec": {"type": "NodePort", "selector": {"app": "web"},
                  "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "token", "namespace": NS},
         "data": {"token": SECRET_VALUE}},
    ]


def play(tmp_path, name, present=(), absent=(), read=()):
    path = tmp_path / ("%s.yml" % name)
    path.write_text(yaml.safe_dump([{
        "hosts": CLUSTER, "gather_facts": False,
        "tasks": [
            {"name": "Objects", "register": "result", "multicloud.interconnect.cluster_objects": {
                "cluster": CLUSTER, "kubeconfig": "{{ cluster_kubeconfig }}",
                "present": list(present), "absent": list(absent), "read": list(read)}},
            {"name": "Keep the result", "delegate_to": "localhost", "check_mode": False,
             "ansible.builtin.copy": {"content": "{{ result | to_json }}", "dest": str(path) + ".result.json"}},
        ]}]), encoding="utf-8")
    return path


def run(path, *args):
    """(the module's result, the playbook's output)."""
    out = run_playbook(str(path), *args).output
    return json.loads(pathlib.Path(str(path) + ".result.json").read_text(encoding="utf-8")), out


def versions(lab):
    from kubernetes import client
    api = lab.clusters[CLUSTER].api_client()
    core = client.CoreV1Api(api)
    return {kind: obj.metadata.resource_version for kind, obj in (
        ("configmap", core.read_namespaced_config_map("settings", NS)),
        ("service", core.read_namespaced_service("web", NS)),
        ("secret", core.read_namespaced_secret("token", NS)))}


@pytest.fixture(name="cleanup")
def fixture_cleanup(lab):
    yield
    from kubernetes import client
    from kubernetes.client.rest import ApiException
    try:
        client.CoreV1Api(lab.clusters[CLUSTER].api_client()).delete_namespace(NS)
    except ApiException as err:
        if err.status != 404:
            raise


def test_one_call_keeps_many_objects_writes_nothing_when_equal_and_check_mode_tells_the_truth(lab, tmp_path, cleanup):
    # pylint: disable=unused-argument
    blue = play(tmp_path, "blue", present=manifests("blue"))
    first, out = run(blue)
    assert [r["action"] for r in first["results"]] == ["create"] * 4
    assert SECRET_VALUE not in out and "secret-value" not in out  # the Secret's value is a digest in every output
    assert first["objects"][3]["data"]["token"].startswith("sha256:")
    before = versions(lab)

    again = run(blue)[0]
    assert not again["changed"] and {r["action"] for r in again["results"]} == {"unchanged"}
    assert versions(lab) == before  # not one write: a NodePort's allocated port does not count as a difference

    green = play(tmp_path, "green", present=manifests("green"))
    planned, out = run(green, "--check", "--diff")
    assert [r["action"] for r in planned["results"]] == ["unchanged", "update", "unchanged", "unchanged"]
    assert planned["results"][1]["changes"] == ["data.colour", "metadata.labels.colour"]
    # The diff shows the server's dry run of the update.
    assert re.search(r"^-\s+colour: blue$", out, re.M) and re.search(r"^\+\s+colour: green$", out, re.M), out
    assert versions(lab) == before  # check mode wrote nothing

    applied = run(green)[0]
    assert applied["changed"] and versions(lab)["configmap"] != before["configmap"]
    assert versions(lab)["service"] == before["service"]


def test_absent_deletes_and_read_returns_what_the_cluster_holds(lab, tmp_path, cleanup):  # pylint: disable=unused-argument
    run(play(tmp_path, "setup", present=manifests("blue")))
    gone = {"api_version": "v1", "kind": "ConfigMap", "name": "settings", "namespace": NS}
    result = run(play(tmp_path, "remove", absent=[gone, manifests("blue")[2]], read=[
        {"api_version": "v1", "kind": "Node", "label_selector": "!node-role.kubernetes.io/control-plane"},
        {"api_version": "v1", "kind": "ConfigMap", "namespace": NS, "name": "settings"}]))[0]
    assert [r["action"] for r in result["results"]] == ["delete", "delete"]
    workers = sorted(n["metadata"]["name"] for n in result["read"][0])
    assert workers == ["%s-worker" % CLUSTER, "%s-worker2" % CLUSTER]
    assert result["read"][1] == []  # read after the writes: the deleted ConfigMap is gone
    again = run(play(tmp_path, "remove-again", absent=[gone]))[0]
    assert not again["changed"] and again["results"][0]["action"] == "absent"


def test_an_unknown_kind_names_the_cluster_and_the_kind(lab, tmp_path):  # pylint: disable=unused-argument
    path = play(tmp_path, "unknown", present=[{"apiVersion": "example.invalid/v1", "kind": "Widget",
                                               "metadata": {"name": "w"}}])
    out = run_playbook(str(path), expect=2).output
    assert "cluster %s: the API has no example.invalid/v1 Widget" % CLUSTER in out
