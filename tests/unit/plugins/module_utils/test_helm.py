"""Helm releases read from their Secrets, and when helm must run."""

from __future__ import annotations

import base64
import gzip
import json
import os

import pytest

from ansible_collections.multicloud.interconnect.plugins.module_utils import _helm


def release_secret(revision, status="deployed", chart="istiod", version="1.30.3", values=None, compress=True):
    """A Secret as the API returns it for ``sh.helm.release.v1.<name>.v<revision>``."""
    release = {"name": "istiod", "namespace": "istio-system", "version": revision, "info": {"status": status},
               "chart": {"metadata": {"name": chart, "version": version}}, "config": values or {}}
    raw = json.dumps(release).encode()
    helm_encoded = base64.b64encode(gzip.compress(raw) if compress else raw)
    return {"metadata": {"name": "sh.helm.release.v1.istiod.v%d" % revision,
                         "labels": {"owner": "helm", "name": "istiod", "version": str(revision), "status": status}},
            "data": {"release": base64.b64encode(helm_encoded).decode()}}


SPEC = {"name": "istiod", "namespace": "istio-system", "chart_ref": "istiod",
        "chart_repo_url": "https://istio-release.storage.googleapis.com/charts", "chart_version": "1.30.3",
        "values": {"global": {"meshID": "mesh1", "network": "net-a"}}}


def test_the_latest_revision_is_read_whatever_the_order():
    secrets = [release_secret(2, "superseded", values={"old": 1}), release_secret(10, values={"new": 1}),
               release_secret(9, "superseded")]
    observed = _helm.observed_release(secrets)
    assert (observed["revision"], observed["status"], observed["values"]) == (10, "deployed", {"new": 1})
    assert _helm.observed_release(secrets[:1] + [release_secret(3, compress=False)])["revision"] == 3
    assert _helm.observed_release([]) is None


def test_helm_runs_only_for_what_differs():
    same = _helm.observed_release([release_secret(4, values={"global": {"network": "net-a", "meshID": "mesh1"}})])
    assert _helm.plan(SPEC, same, "c1") == ("unchanged", [])
    moved = _helm.observed_release([release_secret(4, values={"global": {"meshID": "mesh1", "network": "net-b"}})])
    assert _helm.plan(SPEC, moved, "c1") == ("upgrade", ["values"])
    older = _helm.observed_release([release_secret(4, version="1.29.0", values=SPEC["values"])])
    assert _helm.plan(SPEC, older, "c1") == ("upgrade", ["chart version 1.29.0 -> 1.30.3"])
    failed = _helm.observed_release([release_secret(4, "failed", values=SPEC["values"])])
    assert _helm.plan(SPEC, failed, "c1") == ("upgrade", ["status failed"])
    assert _helm.plan(SPEC, None, "c1") == ("install", ["(install)"])
    assert _helm.plan(dict(SPEC, state="absent"), same, "c1")[0] == "uninstall"
    assert _helm.plan(dict(SPEC, state="absent"), None, "c1") == ("absent", [])


def test_a_release_in_the_middle_of_another_operation_is_refused_with_the_way_out():
    pending = _helm.observed_release([release_secret(5, "pending-upgrade", values=SPEC["values"])])
    with pytest.raises(_helm.HelmError) as err:
        _helm.plan(SPEC, pending, "cluster01")
    assert "cluster cluster01: release istio-system/istiod is pending-upgrade (revision 5)" in str(err.value)
    assert "helm rollback istiod -n istio-system" in str(err.value)


def test_a_chart_directory_is_compared_by_the_version_in_its_chart_yaml(tmp_path):
    (tmp_path / "Chart.yaml").write_text("apiVersion: v2\nname: istiod\nversion: '1.31.0'\nappVersion: 1.31.0\n")
    local = dict(SPEC, chart_ref=str(tmp_path), chart_repo_url="", chart_version="")
    running = _helm.observed_release([release_secret(4, values=SPEC["values"])])
    assert _helm.plan(local, running, "c1") == ("upgrade", ["chart version 1.30.3 -> 1.31.0"])
    command = _helm.upgrade_command("helm", local, "/tmp/v.json", ["--kubeconfig", "k"])
    assert "--version" not in command and command[:5] == ["helm", "upgrade", "--install", "istiod", str(tmp_path)]
    assert {"--reset-values", "--values", "/tmp/v.json", "--kubeconfig"} <= set(command)


def test_a_repository_chart_is_upgraded_to_the_pinned_version():
    command = _helm.upgrade_command("helm", dict(SPEC, wait=True, timeout="5m0s"), "/tmp/v.json", [])
    assert command[command.index("--version") + 1] == "1.30.3"
    assert command[command.index("--repo") + 1] == SPEC["chart_repo_url"]
    assert "--wait" in command and command[command.index("--timeout") + 1] == "5m0s"


def test_a_kubeconfig_given_as_content_reaches_helm_as_a_file_only_its_owner_reads(tmp_path):
    args = _helm.access_arguments({"apiVersion": "v1", "kind": "Config"}, "ctx", str(tmp_path))
    path = args[args.index("--kubeconfig") + 1]
    assert oct(os.stat(path).st_mode & 0o777) == "0o600" and json.loads(open(path, encoding="utf-8").read())["kind"] == "Config"
    assert args[-2:] == ["--kube-context", "ctx"]
    assert _helm.access_arguments(None, None, str(tmp_path)) == []


def test_a_repository_chart_named_like_a_local_directory_is_still_pinned(tmp_path, monkeypatch):
    (tmp_path / "istiod").mkdir()
    (tmp_path / "istiod" / "Chart.yaml").write_text("name: istiod\nversion: 0.0.1\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    command = _helm.upgrade_command("helm", SPEC, "/tmp/v.json", [])
    assert command[command.index("--version") + 1] == "1.30.3"
    assert _helm.chart_identity(SPEC) == ("istiod", "1.30.3")


def test_kept_values_come_from_the_running_release_when_it_has_them():
    running = {"values": {"global": {"meshNetworks": {"net-b": {"endpoints": [{"fromRegistry": "cluster03"}]}},
                                     "network": "old"}}}
    asked = {"global": {"meshNetworks": {}, "network": "net-a"}, "pilot": {"env": {"A": "1"}}}
    kept = _helm.with_kept_values(asked, running, ["global.meshNetworks", "pilot.absent"])
    assert kept == {"global": {"meshNetworks": {"net-b": {"endpoints": [{"fromRegistry": "cluster03"}]}},
                               "network": "net-a"}, "pilot": {"env": {"A": "1"}}}
    assert asked["global"]["meshNetworks"] == {}  # the values given are not changed in place
    # A first install has nothing to keep; a path through a value that is not a mapping is created.
    assert _helm.with_kept_values(asked, None, ["global.meshNetworks"]) == asked
    assert _helm.with_kept_values({"global": "x"}, running, ["global.network"]) == {"global": {"network": "old"}}
