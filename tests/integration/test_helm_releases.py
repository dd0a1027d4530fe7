"""Module helm_releases on a lab cluster, with the real helm binary.

A small chart is installed, then the same call again must start no helm process (the release is
read from the Secret Helm wrote); changed values upgrade it and the ConfigMap it renders follows;
check mode runs no helm; state absent uninstalls. helm goes through a wrapper that logs each start.
"""

from __future__ import annotations

import json
import os
import pathlib

import pytest
import yaml
from site_helpers import run_playbook  # pylint: disable=import-error

pytestmark = pytest.mark.lab

CLUSTER = "cluster04"
NS = "mci-helm-test"


@pytest.fixture(name="chart")
def fixture_chart(tmp_path):
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: probe\nversion: 0.1.0\n", encoding="utf-8")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: probe}\ndata: {colour: {{ .Values.colour | quote }}}\n",
        encoding="utf-8")
    return chart


@pytest.fixture(name="helm_log")
def fixture_helm_log(lab, tmp_path):
    """A helm that logs its arguments, then runs the lab's helm."""
    log = tmp_path / "helm.log"
    wrapper = tmp_path / "helm"
    wrapper.write_text('#!/bin/sh\necho "$*" >> %s\nexec %s "$@"\n' % (log, lab.bin_dir / "helm"), encoding="utf-8")
    os.chmod(wrapper, 0o755)
    yield wrapper, log
    from kubernetes import client
    from kubernetes.client.rest import ApiException
    try:
        client.CoreV1Api(lab.clusters[CLUSTER].api_client()).delete_namespace(NS)
    except ApiException as err:
        if err.status != 404:
            raise


def run(tmp_path, name, helm, chart, colour, *args, state="present"):
    """(the module's result, the playbook's output)."""
    play, result = tmp_path / ("%s.yml" % name), tmp_path / ("%s.json" % name)
    play.write_text(yaml.safe_dump([{
        "hosts": CLUSTER, "gather_facts": False,
        "tasks": [
            {"name": "Releases", "register": "result", "multicloud.interconnect.helm_releases": {
                "cluster": CLUSTER, "kubeconfig": "{{ cluster_kubeconfig }}", "binary_path": str(helm),
                "releases": [{"name": "probe", "namespace": NS, "chart_ref": str(chart), "create_namespace": True,
                              "values": {"colour": colour}, "state": state}]}},
            {"name": "Keep the result", "delegate_to": "localhost", "check_mode": False,
             "ansible.builtin.copy": {"content": "{{ result | to_json }}", "dest": str(result)}},
        ]}]), encoding="utf-8")
    out = run_playbook(str(play), *args).output
    return json.loads(result.read_text(encoding="utf-8")), out


def helm_starts(log: pathlib.Path) -> list:
    return log.read_text(encoding="utf-8").splitlines() if log.exists() else []


def colour(lab):
    from kubernetes import client
    return client.CoreV1Api(lab.clusters[CLUSTER].api_client()).read_namespaced_config_map("probe", NS).data["colour"]


def test_helm_runs_only_when_a_release_differs(lab, tmp_path, chart, helm_log):
    helm, log = helm_log
    planned, _out = run(tmp_path, "plan", helm, chart, "blue", "--check", "--diff")
    assert planned["results"][0]["action"] == "install" and planned["changed"]
    assert helm_starts(log) == []  # check mode starts no helm

    installed = run(tmp_path, "install", helm, chart, "blue")[0]
    assert installed["results"][0]["action"] == "install"
    assert len(helm_starts(log)) == 1 and helm_starts(log)[0].startswith("upgrade --install probe")
    assert colour(lab) == "blue"

    again = run(tmp_path, "again", helm, chart, "blue")[0]
    assert not again["changed"] and again["results"][0] == dict(again["results"][0], action="unchanged", revision=1)
    assert len(helm_starts(log)) == 1  # read from Helm's own Secret: no helm process at all

    green, out = run(tmp_path, "green", helm, chart, "green", "--diff")
    assert green["results"][0]["action"] == "upgrade" and green["results"][0]["reasons"] == ["values"]
    assert "colour: green" in out and colour(lab) == "green"
    assert run(tmp_path, "green-again", helm, chart, "green")[0]["results"][0]["revision"] == 2

    removed = run(tmp_path, "remove", helm, chart, "green", state="absent")[0]
    assert removed["results"][0]["action"] == "uninstall" and helm_starts(log)[-1].startswith("uninstall probe")
    assert run(tmp_path, "remove-again", helm, chart, "green", state="absent")[0]["results"][0]["action"] == "absent"
