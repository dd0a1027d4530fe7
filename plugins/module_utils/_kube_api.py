# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small client of the Kubernetes REST API for the modules that run once per cluster and stage.

Private to the multicloud.interconnect collection: other collections must not import it,
its interface may change without notice.

Why not the kubernetes library: importing it costs about 0.2 s of CPU (it loads every API model),
a third of a module run, and site.yml runs several such modules on every cluster. The stage
modules need only JSON requests (get, list, server-side apply, delete) and the discovery of a kind's
resource name, which this client does with the standard library.

A kubeconfig is read the way kubectl reads it: a path or a mapping (``K8S_AUTH_KUBECONFIG``, then
``KUBECONFIG`` with several files merged, then ``~/.kube/config``), the context given or current;
server CA from a file or inline data (or ``insecure-skip-tls-verify``), ``tls-server-name``, an HTTP
proxy (``proxy-url``); user credentials from a client certificate, a token (inline or file), basic
auth, or an exec plugin (``client.authentication.k8s.io`` ExecCredential: EKS, GKE, AKS, OIDC
helpers). A user with an ``auth-provider`` (legacy OIDC, GCP and Azure plugins, whose tokens need
refreshing) or a SOCKS proxy goes through the kubernetes library instead, behind the same
``request`` interface (``LibraryTransport``).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import time
import typing as t
import urllib.parse

from ansible_collections.multicloud.interconnect.plugins.module_utils._k8s import (
    ClusterError, _short, api_client, describe_api_exception, env_fallback_value)

try:
    import yaml
except ImportError:  # pragma: no cover - ansible-core requires PyYAML
    yaml = None  # type: ignore[assignment]

USER_AGENT = "multicloud.interconnect"
REQUEST_TIMEOUT = 60
# An answer 429 with Retry-After (the API server's "storage is (re)initializing" right after a CRD is
# established, or priority and fairness shedding load) is asked again, as client-go does: at most this
# many times, waiting what the server asks, up to RETRY_AFTER_MAX seconds each time.
RETRIES_ON_429 = 10
RETRY_AFTER_MAX = 5.0


class ApiError(Exception):
    """The API server answered with an error status; ``message`` is its Status message."""

    def __init__(self, status: int, reason: str, message: str = "") -> None:
        super().__init__("%s %s%s" % (status, reason, ": " + message if message else ""))
        self.status = status
        self.reason = reason
        self.message = message


class Unsupported(Exception):
    """A kubeconfig feature this client leaves to the kubernetes library."""


# ---- kubeconfig ------------------------------------------------------------------------------------

def _read_yaml(path: str) -> t.Dict[str, t.Any]:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def _merged(paths: t.Sequence[str]) -> t.Tuple[t.Dict[str, t.Any], t.Dict[str, str]]:
    """Files of KUBECONFIG merged as kubectl does: the first file that names an entry (or sets the
    current context) wins. Also which file each cluster and user came from: their relative paths
    are relative to it."""
    merged: t.Dict[str, t.Any] = {"clusters": [], "users": [], "contexts": []}
    origin: t.Dict[str, str] = {}
    for path in paths:
        config = _read_yaml(path)
        merged["current-context"] = merged.get("current-context") or config.get("current-context") or ""
        for section in ("clusters", "users", "contexts"):
            known = {entry.get("name") for entry in merged[section]}
            for entry in config.get(section) or []:
                if entry.get("name") not in known:
                    merged[section].append(entry)
                    origin["%s/%s" % (section, entry.get("name"))] = os.path.dirname(os.path.abspath(path))
    return merged, origin


def load_kubeconfig(kubeconfig: t.Any = None) -> t.Tuple[t.Dict[str, t.Any], t.Dict[str, str], str]:
    """(config, origin directories, what it was read from) for a path, a mapping or the defaults."""
    kubeconfig = kubeconfig or env_fallback_value("K8S_AUTH_KUBECONFIG")
    if isinstance(kubeconfig, dict):
        return kubeconfig, {}, "the kubeconfig given as content"
    if kubeconfig:
        paths = [os.path.expanduser(str(kubeconfig))]
    else:
        paths = [p for p in (env_fallback_value("KUBECONFIG") or "").split(os.pathsep) if p] \
            or [os.path.expanduser("~/.kube/config")]
    config, origin = _merged([p for p in paths if os.path.exists(p)] if len(paths) > 1 else paths)
    return config, origin, os.pathsep.join(paths)


def _named(config: t.Mapping[str, t.Any], section: str, name: str, key: str) -> t.Dict[str, t.Any]:
    for entry in config.get(section) or []:
        if entry.get("name") == name:
            return dict(entry.get(key) or {})
    raise KeyError("no %s named %r" % (section[:-1], name))


class Access:
    """Where and as whom to connect: the resolved cluster and user of one kubeconfig context."""

    def __init__(self, config: t.Mapping[str, t.Any], context: t.Optional[str],
                 origin: t.Optional[t.Mapping[str, str]] = None) -> None:
        origin = origin or {}
        name = context or config.get("current-context")
        if not name:
            raise KeyError("no context given and no current-context set")
        ctx = _named(config, "contexts", name, "context")
        self.cluster = _named(config, "clusters", ctx.get("cluster", ""), "cluster")
        self.user = _named(config, "users", ctx["user"], "user") if ctx.get("user") else {}
        self.cluster_dir = origin.get("clusters/%s" % ctx.get("cluster"), os.getcwd())
        self.user_dir = origin.get("users/%s" % ctx.get("user"), os.getcwd())
        self.server = self.cluster.get("server") or ""
        if not self.server:
            raise KeyError("cluster %r of context %r has no server" % (ctx.get("cluster"), name))
        if self.user.get("auth-provider"):
            raise Unsupported("auth-provider")
        proxy = self.cluster.get("proxy-url") or ""
        if proxy and not proxy.startswith(("http://", "https://")):
            raise Unsupported("proxy-url %s" % proxy)

    def _file(self, path: str, base: str) -> str:
        return path if os.path.isabs(path) else os.path.join(base, path)

    def ca(self) -> t.Tuple[t.Optional[str], t.Optional[str]]:
        """(CA file, CA PEM text)."""
        if self.cluster.get("certificate-authority-data"):
            return None, base64.b64decode(self.cluster["certificate-authority-data"]).decode()
        if self.cluster.get("certificate-authority"):
            return self._file(self.cluster["certificate-authority"], self.cluster_dir), None
        return None, None

    def credentials(self) -> t.Dict[str, t.Any]:
        """token, basic, cert_pem, key_pem (PEM text) or cert_file, key_file: what the user holds."""
        user, found = self.user, {}
        if user.get("exec"):
            found.update(run_exec_plugin(user["exec"], self.cluster))
        if user.get("token"):
            found.setdefault("token", user["token"])
        elif user.get("tokenFile"):
            with open(self._file(user["tokenFile"], self.user_dir), encoding="utf-8") as handle:
                found.setdefault("token", handle.read().strip())
        if user.get("username") and user.get("password"):
            found["basic"] = base64.b64encode(("%s:%s" % (user["username"], user["password"])).encode()).decode()
        for kind in ("certificate", "key"):
            key = "cert" if kind == "certificate" else "key"
            if user.get("client-%s-data" % kind):
                found.setdefault(key + "_pem", base64.b64decode(user["client-%s-data" % kind]).decode())
            elif user.get("client-%s" % kind):
                found.setdefault(key + "_file", self._file(user["client-%s" % kind], self.user_dir))
        return found


def run_exec_plugin(spec: t.Mapping[str, t.Any], cluster: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    """The credential an exec plugin prints (an ExecCredential), as kubectl runs it."""
    api_version = spec.get("apiVersion") or "client.authentication.k8s.io/v1beta1"
    info: t.Dict[str, t.Any] = {"apiVersion": api_version, "kind": "ExecCredential", "spec": {"interactive": False}}
    if spec.get("provideClusterInfo"):
        info["spec"]["cluster"] = {"server": cluster.get("server"),
                                   "certificate-authority-data": cluster.get("certificate-authority-data"),
                                   "config": (cluster.get("extensions") or [{}])[0].get("extension")}
    env = dict(os.environ, KUBERNETES_EXEC_INFO=json.dumps(info))
    env.update({item["name"]: item["value"] for item in spec.get("env") or []})
    command = spec.get("command") or ""
    if not shutil.which(command):
        raise ValueError("exec plugin %s not found%s" % (command, "; " + spec["installHint"] if spec.get("installHint") else ""))
    done = subprocess.run([command] + list(spec.get("args") or []), env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=REQUEST_TIMEOUT, check=False)
    if done.returncode != 0:
        raise ValueError("exec plugin %s exited %d: %s" % (command, done.returncode, _short(done.stderr.strip())))
    status = (json.loads(done.stdout) or {}).get("status") or {}
    found = {}
    if status.get("token"):
        found["token"] = status["token"]
    if status.get("clientCertificateData") and status.get("clientKeyData"):
        found.update(cert_pem=status["clientCertificateData"], key_pem=status["clientKeyData"])
    if not found:
        raise ValueError("exec plugin %s returned no token and no client certificate" % command)
    return found


# ---- transport -------------------------------------------------------------------------------------

def _tls_context(access: Access, credentials: t.Mapping[str, t.Any]) -> ssl.SSLContext:
    # As kubectl does: the kubeconfig's CA alone when it names one, else the system's CAs. Loading the
    # system store only when needed also spares every module run the parsing of ~150 certificates.
    if access.cluster.get("insecure-skip-tls-verify"):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        ca_file, ca_pem = access.ca()
        if ca_file or ca_pem:
            context = ssl.create_default_context(cafile=ca_file, cadata=ca_pem)
        else:
            context = ssl.create_default_context()
    if credentials.get("cert_file"):
        context.load_cert_chain(credentials["cert_file"], credentials.get("key_file"))
    elif credentials.get("cert_pem"):
        # ssl loads a client key from files only: a private directory that is gone right after.
        workdir = tempfile.mkdtemp(prefix="mci-tls-")
        try:
            paths = []
            for name in ("cert_pem", "key_pem"):
                path = os.path.join(workdir, name)
                with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
                    handle.write(credentials[name])
                paths.append(path)
            context.load_cert_chain(paths[0], paths[1])
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return context


class _Connection(http.client.HTTPSConnection):
    """HTTPS with the certificate checked against ``tls-server-name`` when the kubeconfig sets one."""

    def __init__(self, *args: t.Any, server_name: t.Optional[str] = None, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.server_name = server_name

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        hostname = self.server_name or getattr(self, "_tunnel_host", None) or self.host
        self.sock = self._context.wrap_socket(self.sock, server_hostname=hostname)


class RestTransport:
    """JSON requests to one API server over one kept-alive connection."""

    def __init__(self, access: Access, timeout: float = REQUEST_TIMEOUT) -> None:
        credentials = access.credentials()
        url = urllib.parse.urlsplit(access.server)
        self.prefix = url.path.rstrip("/")
        self.headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if credentials.get("token"):
            self.headers["Authorization"] = "Bearer %s" % credentials["token"]
        elif credentials.get("basic"):
            self.headers["Authorization"] = "Basic %s" % credentials["basic"]
        host, port = url.hostname or "", url.port
        proxy = urllib.parse.urlsplit(access.cluster.get("proxy-url") or "")
        target = (proxy.hostname, proxy.port) if proxy.hostname else (host, port)
        if url.scheme == "https":
            self.connect = lambda: _Connection(target[0], target[1], timeout=timeout,
                                               context=_tls_context(access, credentials),
                                               server_name=access.cluster.get("tls-server-name"))
        else:
            self.connect = lambda: http.client.HTTPConnection(target[0], target[1], timeout=timeout)
        self.tunnel = (host, port or (443 if url.scheme == "https" else 80)) if proxy.hostname else None
        self.connection: t.Optional[http.client.HTTPConnection] = None

    def _open(self) -> http.client.HTTPConnection:
        if self.connection is None:
            self.connection = self.connect()
            if self.tunnel:
                self.connection.set_tunnel(*self.tunnel)
        return self.connection

    def request(self, method: str, path: str, query: t.Sequence[t.Tuple[str, str]] = (), body: t.Any = None,
                content_type: str = "application/json", raw: bool = False, accept: t.Optional[str] = None) -> t.Any:
        url = self.prefix + path + ("?" + urllib.parse.urlencode(list(query)) if query else "")
        data = json.dumps(body).encode() if body is not None else None
        headers = dict(self.headers, **({"Content-Type": content_type} if data is not None else {}))
        if raw or accept:
            headers["Accept"] = accept or "text/plain, */*"
        for retry in range(RETRIES_ON_429 + 1):
            response, payload = self._exchange(method, url, data, headers)
            wait = _retry_after(response)
            if wait is None or retry == RETRIES_ON_429:
                break
            time.sleep(wait)
        if response.status >= 400:
            message = ""
            try:
                message = json.loads(payload).get("message", "")
            except ValueError:
                message = payload.decode(errors="replace")[:300]
            raise ApiError(response.status, response.reason, message)
        if raw:
            return payload
        return json.loads(payload) if payload else None

    def _exchange(self, method: str, url: str, data: t.Optional[bytes],
                  headers: t.Mapping[str, str]) -> t.Tuple[http.client.HTTPResponse, bytes]:
        for attempt in (1, 2):
            reused = self.connection is not None
            try:
                connection = self._open()
                connection.request(method, url, body=data, headers=dict(headers))
                response = connection.getresponse()
                return response, response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # A kept-alive connection the server closed: once more on a new one.
                self.close()
                if not reused or attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def _retry_after(response: http.client.HTTPResponse) -> t.Optional[float]:
    """Seconds to wait before asking again, or None: only a 429 that says Retry-After is asked again."""
    if response.status != 429:
        return None
    value = response.getheader("Retry-After")
    if value is None:
        return None
    try:
        return min(max(float(value), 0.0), RETRY_AFTER_MAX)
    except ValueError:
        return 1.0


class LibraryTransport:
    """The same requests through the kubernetes library, for kubeconfigs RestTransport leaves to it."""

    def __init__(self, api: t.Any) -> None:
        from kubernetes.dynamic import DynamicClient

        # The dynamic client's request() is the library's interface that stays the same across versions.
        self.dynamic = DynamicClient(api)

    def request(self, method: str, path: str, query: t.Sequence[t.Tuple[str, str]] = (), body: t.Any = None,
                content_type: str = "application/json", raw: bool = False, accept: t.Optional[str] = None) -> t.Any:
        """As RestTransport's, except that ``accept`` is not passed on: a list asked for as metadata comes
        back whole, which holds the metadata too."""
        from kubernetes.dynamic.exceptions import DynamicApiError

        try:
            response = self.dynamic.request(method, path, body=body, query_params=list(query),
                                            content_type=content_type, serialize=False)
        except DynamicApiError as err:
            message = ""
            try:
                message = json.loads(err.body).get("message", "")
            except (TypeError, ValueError):
                pass
            raise ApiError(err.status, err.reason or "", message) from err
        if raw:
            return response.data
        return json.loads(response.data) if response.data else None

    def close(self) -> None:
        pass


def transport(cluster: str, kubeconfig: t.Any = None, context: t.Optional[str] = None,
              library: bool = False, timeout: float = REQUEST_TIMEOUT) -> t.Any:
    """The transport to one cluster: RestTransport, or LibraryTransport for what it leaves to the library
    (or when ``library`` asks for it). ``timeout``: seconds to connect and for each answer."""
    context = context or env_fallback_value("K8S_AUTH_CONTEXT")
    if not library:
        source = "the kubeconfig given as content" if isinstance(kubeconfig, dict) else kubeconfig or "default"
        try:
            config, origin, source = load_kubeconfig(kubeconfig)
            return RestTransport(Access(config, context, origin), timeout)
        except Unsupported:
            pass
        except (OSError, KeyError, TypeError, ValueError, ssl.SSLError, subprocess.SubprocessError) as err:
            raise ClusterError(cluster, "cannot load kubeconfig %s (context %s): %s"
                               % (source, context or "current", _short(err))) from err
    return LibraryTransport(api_client(cluster, kubeconfig, context))


# ---- resources -------------------------------------------------------------------------------------

def namespaced_path(namespace: str, plural: str, name: str = "", group: str = "/api/v1") -> str:
    """The path of a namespaced resource (``plural``) or of one object of it, without discovery:
    for the core and apps kinds whose resource names are fixed."""
    path = "%s/namespaces/%s/%s" % (group, urllib.parse.quote(namespace, safe=""), plural)
    return path + ("/" + urllib.parse.quote(name, safe="") if name else "")


class Api:
    """One cluster: requests by object reference, the resource of each kind found by discovery."""

    def __init__(self, name: str, connection: t.Any) -> None:
        self.name = name
        self.connection = connection
        self.groups: t.Dict[str, t.Dict[str, t.Tuple[str, bool]]] = {}

    def request(self, what: str, method: str, path: str, **kwargs: t.Any) -> t.Any:
        try:
            return self.connection.request(method, path, **kwargs)
        except ApiError:
            raise
        except (OSError, http.client.HTTPException, ssl.SSLError) as err:
            raise ClusterError(self.name, "API server unreachable (%s): %s" % (what, _short(err))) from err

    def _discover(self, api_version: str) -> t.Dict[str, t.Tuple[str, bool]]:
        path = "/api/v1" if api_version == "v1" else "/apis/%s" % api_version
        try:
            found = self.request("discovery", "GET", path) or {}
        except ApiError as err:
            if err.status == 404:
                return {}
            raise ClusterError(self.name, "discovery of %s: %s" % (api_version, describe_api_exception(err)), err.status) from err
        return {r["kind"]: (r["name"], bool(r.get("namespaced"))) for r in found.get("resources") or []
                if "/" not in r["name"]}

    def resource(self, api_version: str, kind: str) -> t.Optional[t.Tuple[str, bool]]:
        """(plural, namespaced) of a kind, or None when the API does not serve it (asked again once: a
        CRD installed earlier in the same run)."""
        if kind not in self.groups.get(api_version, {}):
            self.groups[api_version] = self._discover(api_version)
        return self.groups[api_version].get(kind)

    def get(self, what: str, path: str, query: t.Sequence[t.Tuple[str, str]] = ()) -> t.Any:
        """The object (or list) at ``path``, None when the API answers 404; other answers raise ApiError."""
        try:
            return self.request(what, "GET", path, query=query)
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    def version(self) -> str:
        """The cluster's gitVersion; raises ClusterError naming the cluster when it cannot be read."""
        try:
            return (self.request("version", "GET", "/version") or {}).get("gitVersion") or ""
        except ApiError as err:
            raise ClusterError(self.name, "API server answered %s" % describe_api_exception(err), err.status) from err

    def path(self, api_version: str, kind: str, namespace: t.Optional[str] = None, name: t.Optional[str] = None) -> str:
        found = self.resource(api_version, kind)
        if found is None:
            raise ClusterError(self.name, "the API has no %s %s (is its CRD installed?)" % (api_version, kind))
        plural, namespaced = found
        parts = ["/api/v1" if api_version == "v1" else "/apis/%s" % api_version]
        if namespaced and namespace:
            parts.append("namespaces/%s" % urllib.parse.quote(namespace, safe=""))
        parts.append(plural)
        if name:
            parts.append(urllib.parse.quote(name, safe=""))
        return "/".join(parts)

    def close(self) -> None:
        self.connection.close()


def connect(cluster: str, kubeconfig: t.Any = None, context: t.Optional[str] = None, library: bool = False,
            timeout: float = REQUEST_TIMEOUT) -> Api:
    return Api(cluster, transport(cluster, kubeconfig, context, library, timeout))
