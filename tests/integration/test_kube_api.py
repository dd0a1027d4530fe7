"""_kube_api against a lab API server: what the stage modules send, with each kind of credential.

The same reads and a server dry-run apply through the small client and through the kubernetes
library give the same objects; a ServiceAccount token (inline and from a file) and an exec plugin
authenticate; the server certificate is checked against the CA and ``tls-server-name``.
"""

from __future__ import annotations

import base64
import json
import stat
import sys

import pytest
import yaml

from ansible_collections.multicloud.interconnect.plugins.module_utils import _kube_api, _objects
from ansible_collections.multicloud.interconnect.plugins.module_utils._k8s import ClusterError

pytestmark = pytest.mark.lab

CLUSTER = "cluster04"
ROOT_CA = {"api_version": "v1", "kind": "ConfigMap", "namespace": "kube-system", "name": "kube-root-ca.crt"}


@pytest.fixture(scope="module")
def kubeconfig(lab):
    with open(lab.clusters[CLUSTER].kubeconfig, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def with_user(kubeconfig, user, **cluster):
    changed = json.loads(json.dumps(kubeconfig))
    changed["users"][0]["user"] = user
    changed["clusters"][0]["cluster"].update(cluster)
    return changed


def test_the_small_client_and_the_library_read_and_apply_alike(kubeconfig):
    small, library = (_objects.Objects(CLUSTER, kubeconfig, None, library=flag) for flag in (False, True))
    assert isinstance(small.api.connection, _kube_api.RestTransport)
    assert isinstance(library.api.connection, _kube_api.LibraryTransport)
    assert small.get(ROOT_CA)["data"] == library.get(ROOT_CA)["data"]
    assert "BEGIN CERTIFICATE" in small.get(ROOT_CA)["data"]["ca.crt"]
    nodes = {"api_version": "v1", "kind": "Node"}
    assert sorted(n["metadata"]["name"] for n in small.list(nodes)) == \
        sorted(n["metadata"]["name"] for n in library.list(nodes))
    planned = {"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "mci-kube-api-test", "namespace": "default"}, "data": {"a": "1"}}
    for client in (small, library):
        assert client.apply(planned, dry_run=True)["data"] == {"a": "1"}
        assert client.get(dict(ROOT_CA, namespace="default", name="mci-kube-api-test")) is None  # a dry run only
    assert small.get(dict(ROOT_CA, name="absent")) is None
    assert not small.serves({"api_version": "kosmos.io/v1alpha1", "kind": "Nothing"})


@pytest.fixture(scope="module")
def token(lab):
    """A token of a fresh ServiceAccount (no RBAC: it may ask for nothing)."""
    from kubernetes import client

    core = client.CoreV1Api(lab.clusters[CLUSTER].api_client())
    account = client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="mci-kube-api-test"))
    try:
        core.create_namespaced_service_account("default", account)
    except client.ApiException as err:
        if err.status != 409:
            raise
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600))
    yield core.create_namespaced_service_account_token("mci-kube-api-test", "default", request).status.token
    core.delete_namespaced_service_account("mci-kube-api-test", "default")


def test_a_token_inline_or_from_a_file_is_who_the_server_sees(kubeconfig, token, tmp_path):
    (tmp_path / "token").write_text(token + "\n", encoding="utf-8")
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(with_user(kubeconfig, {"tokenFile": "token"})), encoding="utf-8")
    for config in (with_user(kubeconfig, {"token": token}), str(path)):
        with pytest.raises(ClusterError, match="not authorised .*system:serviceaccount:default:mci-kube-api-test"):
            _objects.Objects(CLUSTER, config).get(ROOT_CA)
    with pytest.raises(ClusterError, match="cluster04: discovery of v1: not authorised"
                                           r" \(401 Unauthorized"):
        _objects.Objects(CLUSTER, with_user(kubeconfig, {"token": "not-a-token"})).get(ROOT_CA)


def test_an_exec_plugin_hands_over_the_client_certificate(kubeconfig, tmp_path):
    user = kubeconfig["users"][0]["user"]
    credential = {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": {
        "clientCertificateData": base64.b64decode(user["client-certificate-data"]).decode(),
        "clientKeyData": base64.b64decode(user["client-key-data"]).decode()}}
    script = tmp_path / "credential-helper"
    script.write_text("#!%s\nprint(%r)\n" % (sys.executable, json.dumps(credential)), encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    config = with_user(kubeconfig, {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(script)}})
    assert "ca.crt" in _objects.Objects(CLUSTER, config).get(ROOT_CA)["data"]


def test_the_server_certificate_is_checked_against_the_ca_and_the_server_name(kubeconfig, lab):
    ip = lab.clusters[CLUSTER].apiserver_ip
    named = with_user(kubeconfig, kubeconfig["users"][0]["user"], server="https://%s:6443" % ip,
                      **{"tls-server-name": "kubernetes.default"})
    assert _objects.Objects(CLUSTER, named).get(ROOT_CA)
    wrong_name = with_user(kubeconfig, kubeconfig["users"][0]["user"], **{"tls-server-name": "api.example.org"})
    with pytest.raises(ClusterError, match="API server unreachable .*certificate verify failed"):
        _objects.Objects(CLUSTER, wrong_name).get(ROOT_CA)
    other_ca = with_user(kubeconfig, kubeconfig["users"][0]["user"], **{
        "certificate-authority-data": base64.b64encode(open(lab.clusters["cluster01"].ca_file, "rb").read()).decode()})
    with pytest.raises(ClusterError, match="API server unreachable .*certificate verify failed"):
        _objects.Objects(CLUSTER, other_ca).get(ROOT_CA)
