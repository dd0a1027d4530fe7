"""How _kube_api reads a kubeconfig: merged files, relative paths, credentials, exec plugins, what it leaves to the library."""

from __future__ import annotations

import base64
import json
import os
import stat
import sys

import pytest
import yaml

from ansible_collections.multicloud.interconnect.plugins.module_utils import _kube_api
from ansible_collections.multicloud.interconnect.plugins.module_utils._k8s import ClusterError


def b64(text):
    return base64.b64encode(text.encode()).decode()


def config(name="one", cluster=None, user=None, current=True):
    return {"apiVersion": "v1", "kind": "Config", "current-context": name if current else "",
            "clusters": [{"name": name, "cluster": cluster or {"server": "https://10.0.0.1:6443"}}],
            "users": [{"name": name, "user": user or {"token": "t-" + name}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}]}


def write(path, content):
    path.write_text(yaml.safe_dump(content), encoding="utf-8")
    return str(path)


def test_the_context_given_wins_over_the_current_one(tmp_path):
    merged = config("one")
    for section in ("clusters", "users", "contexts"):
        merged[section] += config("two", cluster={"server": "https://10.0.0.2:6443"})[section]
    assert _kube_api.Access(merged, None).server == "https://10.0.0.1:6443"
    assert _kube_api.Access(merged, "two").server == "https://10.0.0.2:6443"
    assert _kube_api.Access(merged, "two").credentials() == {"token": "t-two"}
    with pytest.raises(KeyError, match="no context named 'three'"):
        _kube_api.Access(merged, "three")


def test_kubeconfig_files_merge_as_kubectl_merges_them(tmp_path, monkeypatch):
    first = write(tmp_path / "a", config("one", current=False))
    second = write(tmp_path / "b", dict(config("one", cluster={"server": "https://shadowed:1"}), **{"current-context": "one"}))
    monkeypatch.delenv("K8S_AUTH_KUBECONFIG", raising=False)
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([first, str(tmp_path / "missing"), second]))
    merged, origin, source = _kube_api.load_kubeconfig(None)
    # The first file that names an entry wins; the current context comes from the first file that sets one.
    access = _kube_api.Access(merged, None, origin)
    assert access.server == "https://10.0.0.1:6443"
    assert source.startswith(first)


def test_relative_paths_are_relative_to_the_kubeconfig_file(tmp_path, monkeypatch):
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "token").write_text("from-file\n", encoding="utf-8")
    cluster = {"server": "https://10.0.0.1:6443", "certificate-authority": "certs/ca.pem"}
    user = {"tokenFile": "certs/token", "client-certificate": "certs/c.pem", "client-key": "/abs/k.pem"}
    path = write(tmp_path / "config", config("one", cluster=cluster, user=user))
    monkeypatch.chdir("/")
    merged, origin, source = _kube_api.load_kubeconfig(path)
    assert source == path
    access = _kube_api.Access(merged, None, origin)
    assert access.ca() == (str(tmp_path / "certs" / "ca.pem"), None)
    assert access.credentials() == {"token": "from-file", "cert_file": str(tmp_path / "certs" / "c.pem"),
                                    "key_file": "/abs/k.pem"}


def test_inline_data_and_basic_auth():
    access = _kube_api.Access(config("one", cluster={"server": "https://h:6443", "certificate-authority-data": b64("CA")},
                                     user={"client-certificate-data": b64("CERT"), "client-key-data": b64("KEY"),
                                           "username": "u", "password": "p"}), None)
    assert access.ca() == (None, "CA")
    assert access.credentials() == {"cert_pem": "CERT", "key_pem": "KEY", "basic": b64("u:p")}


def test_auth_providers_and_socks_proxies_go_through_the_library(monkeypatch):
    with pytest.raises(_kube_api.Unsupported):
        _kube_api.Access(config("one", user={"auth-provider": {"name": "oidc", "config": {}}}), None)
    with pytest.raises(_kube_api.Unsupported):
        _kube_api.Access(config("one", cluster={"server": "https://h:6443", "proxy-url": "socks5://p:1080"}), None)
    monkeypatch.setattr(_kube_api, "api_client", lambda cluster, kubeconfig, context: ("client of", cluster, context))
    monkeypatch.setattr(_kube_api, "LibraryTransport", lambda api: ("library", api))
    assert _kube_api.transport("c1", config("one", user={"auth-provider": {"name": "oidc", "config": {}}}), "one") \
        == ("library", ("client of", "c1", "one"))
    assert isinstance(_kube_api.transport("c1", config("one"), None), _kube_api.RestTransport)


def test_an_unreadable_kubeconfig_names_the_cluster_and_the_file(tmp_path):
    with pytest.raises(ClusterError, match=r"cluster c1: cannot load kubeconfig .*missing \(context current\)"):
        _kube_api.transport("c1", str(tmp_path / "missing"))
    with pytest.raises(ClusterError, match="cluster c1: .*no context given and no current-context set"):
        _kube_api.transport("c1", config("one", current=False))


def plugin(tmp_path, body):
    script = tmp_path / "plugin"
    script.write_text("#!%s\nimport json, os, sys\n%s\n" % (sys.executable, body), encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_an_exec_plugin_gets_the_exec_info_and_its_env_and_returns_the_credential(tmp_path):
    command = plugin(tmp_path, "info = json.loads(os.environ['KUBERNETES_EXEC_INFO'])\n"
                               "print(json.dumps({'status': {'token': '%s|%s|%s' % (info['kind'], os.environ['REGION'],"
                               " sys.argv[1])}}))")
    access = _kube_api.Access(config("one", user={"exec": {
        "apiVersion": "client.authentication.k8s.io/v1", "command": command, "args": ["eu-west-1"],
        "env": [{"name": "REGION", "value": "eu"}]}}), None)
    assert access.credentials() == {"token": "ExecCredential|eu|eu-west-1"}


def test_a_failing_or_missing_exec_plugin_is_named(tmp_path):
    failing = plugin(tmp_path, "sys.stderr.write('no session'); sys.exit(3)")
    with pytest.raises(ValueError, match="exec plugin .*plugin exited 3: no session"):
        _kube_api.Access(config("one", user={"exec": {"command": failing}}), None).credentials()
    with pytest.raises(ValueError, match="exec plugin aws-iam-nothing not found; install it"):
        _kube_api.Access(config("one", user={"exec": {"command": "aws-iam-nothing", "installHint": "install it"}}),
                         None).credentials()
    empty = plugin(tmp_path, "print(json.dumps({'status': {}}))")
    with pytest.raises(ValueError, match="returned no token and no client certificate"):
        _kube_api.Access(config("one", user={"exec": {"command": empty}}), None).credentials()


def test_paths_of_core_and_group_kinds():
    api = _kube_api.Api("c1", None)
    api.groups = {"v1": {"Secret": ("secrets", True), "Namespace": ("namespaces", False)},
                  "apps/v1": {"Deployment": ("deployments", True)}}
    assert api.path("v1", "Secret", "ns", "a") == "/api/v1/namespaces/ns/secrets/a"
    assert api.path("v1", "Namespace", "ignored", "ns") == "/api/v1/namespaces/ns"
    assert api.path("apps/v1", "Deployment", "ns") == "/apis/apps/v1/namespaces/ns/deployments"


class Answers:
    """A transport that answers discovery from a list, and records what was asked."""

    def __init__(self, *answers):
        self.answers, self.asked = list(answers), []

    def request(self, method, path, **kwargs):
        self.asked.append(path)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_discovery_asks_again_for_a_kind_it_did_not_know_and_a_missing_group_is_not_served():
    crd_later = Answers({"resources": []},
                        {"resources": [{"name": "gateways", "kind": "Gateway", "namespaced": True},
                                       {"name": "gateways/status", "kind": "Gateway", "namespaced": True}]})
    api = _kube_api.Api("c1", crd_later)
    assert api.resource("networking.istio.io/v1", "Gateway") is None
    assert api.resource("networking.istio.io/v1", "Gateway") == ("gateways", True)
    assert crd_later.asked == ["/apis/networking.istio.io/v1"] * 2
    gone = _kube_api.Api("c1", Answers(_kube_api.ApiError(404, "Not Found")))
    assert gone.resource("kosmos.io/v1alpha1", "Cluster") is None
    refused = _kube_api.Api("c1", Answers(_kube_api.ApiError(403, "Forbidden", "user cannot get path")))
    with pytest.raises(ClusterError, match="discovery of apps/v1: not authorised .*user cannot get path"):
        refused.resource("apps/v1", "Deployment")


def test_the_exec_info_carries_the_cluster_when_asked(tmp_path):
    command = plugin(tmp_path, "info = json.loads(os.environ['KUBERNETES_EXEC_INFO'])\n"
                               "print(json.dumps({'status': {'token': info['spec']['cluster']['server']}}))")
    access = _kube_api.Access(config("one", user={"exec": {"command": command, "provideClusterInfo": True}}), None)
    assert json.loads(json.dumps(access.credentials())) == {"token": "https://10.0.0.1:6443"}


def self_signed_ca_pem():
    import datetime  # pylint: disable=import-outside-toplevel
    from cryptography import x509  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives import hashes, serialization  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives.asymmetric import ec  # pylint: disable=import-outside-toplevel
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "kubernetes")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_a_cluster_ca_in_the_kubeconfig_is_the_only_ca_trusted(tmp_path):
    """As kubectl: a kubeconfig naming its cluster's CA trusts that CA alone, not the system's public CAs;
    one naming none trusts the system's; insecure-skip-tls-verify checks nothing."""
    pem = self_signed_ca_pem()
    given = _kube_api.Access(config(cluster={"server": "https://10.0.0.1:6443", "certificate-authority-data": b64(pem)}), None)
    context = _kube_api._tls_context(given, {})  # pylint: disable=protected-access
    assert context.cert_store_stats()["x509_ca"] == 1
    assert context.verify_mode == _kube_api.ssl.CERT_REQUIRED and context.check_hostname
    (tmp_path / "ca.crt").write_text(pem, encoding="utf-8")
    from_file = _kube_api.Access(config(cluster={"server": "https://10.0.0.1:6443", "certificate-authority": "ca.crt"}),
                                 None, {"clusters/one": str(tmp_path)})
    assert _kube_api._tls_context(from_file, {}).cert_store_stats()["x509_ca"] == 1  # pylint: disable=protected-access
    system = _kube_api.ssl.create_default_context().cert_store_stats()["x509_ca"]
    none_named = _kube_api._tls_context(_kube_api.Access(config(), None), {})  # pylint: disable=protected-access
    assert none_named.cert_store_stats()["x509_ca"] == system
    insecure = _kube_api.Access(config(cluster={"server": "https://10.0.0.1:6443", "insecure-skip-tls-verify": True}), None)
    context = _kube_api._tls_context(insecure, {})  # pylint: disable=protected-access
    assert context.verify_mode == _kube_api.ssl.CERT_NONE and not context.check_hostname


def test_get_is_none_for_a_missing_object_and_version_names_the_cluster():
    class Transport:
        def __init__(self, answers):
            self.answers = answers

        def request(self, method, path, query=(), **kwargs):
            answer = self.answers[path]
            if isinstance(answer, Exception):
                raise answer
            return answer

    api = _kube_api.Api("cluster01", Transport({
        "/api/v1/namespaces/kube-system/configmaps/gone": _kube_api.ApiError(404, "Not Found"),
        "/api/v1/namespaces/kube-system/configmaps/secret": _kube_api.ApiError(403, "Forbidden", "no"),
        "/version": {"gitVersion": "v1.36.3"}}))
    assert api.get("gone", "/api/v1/namespaces/kube-system/configmaps/gone") is None
    with pytest.raises(_kube_api.ApiError):
        api.get("secret", "/api/v1/namespaces/kube-system/configmaps/secret")
    assert api.version() == "v1.36.3"
    refused = _kube_api.Api("cluster02", Transport({"/version": _kube_api.ApiError(401, "Unauthorized")}))
    with pytest.raises(ClusterError, match="cluster cluster02: API server answered not authorised"):
        refused.version()
    unreachable = _kube_api.Api("cluster03", Transport({"/version": ConnectionRefusedError(111, "Connection refused")}))
    with pytest.raises(ClusterError, match=r"cluster cluster03: API server unreachable \(version\)"):
        unreachable.version()


def test_a_429_with_retry_after_is_asked_again_as_client_go_does(monkeypatch):
    """"storage is (re)initializing" right after a CRD is established: the server says when to ask again."""
    class Response:
        def __init__(self, status, headers, body):
            self.status, self.reason, self.headers, self.body = status, {429: "Too Many Requests", 200: "OK"}[status], headers, body

        def read(self):
            return self.body

        def getheader(self, name):
            return self.headers.get(name)

    busy = Response(429, {"Retry-After": "1"}, b'{"message": "storage is (re)initializing"}')
    answers, waits = [], []

    class Connection:
        def request(self, method, url, body=None, headers=None):
            pass

        def getresponse(self):
            return answers.pop(0)

    monkeypatch.setattr(_kube_api.time, "sleep", waits.append)
    transport = _kube_api.RestTransport(_kube_api.Access(config(), None))
    transport.connect = Connection
    answers.extend([busy, busy, Response(200, {}, b'{"items": []}')])
    assert transport.request("GET", "/apis/kosmos.io/v1alpha1/clusternodes") == {"items": []}
    assert waits == [1.0, 1.0]
    # Without Retry-After, or past the retries, the answer is the caller's.
    answers.extend([Response(429, {}, b'{"message": "slow down"}')])
    with pytest.raises(_kube_api.ApiError, match="429 Too Many Requests: slow down"):
        transport.request("GET", "/api/v1/nodes")
    answers.extend([busy] * (_kube_api.RETRIES_ON_429 + 1))
    del waits[:]
    with pytest.raises(_kube_api.ApiError, match="storage is"):
        transport.request("GET", "/api/v1/nodes")
    assert not answers and len(waits) == _kube_api.RETRIES_ON_429
