# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Istio interconnect: one cluster's API, read once and written by a plan.

Private to the multicloud.interconnect collection: other collections must not import it,
its interface may change without notice.

``ClusterAccess.observe`` reads everything a plan compares against into ``Observed``;
``apply`` writes one planned action. Errors name the cluster and what was being done.
"""

from __future__ import annotations

import base64
import datetime
import json
import time
import typing as t

from ansible_collections.multicloud.interconnect.plugins.module_utils._istio import (
    CLUSTER_ANNOTATION,
    GATEWAY_PORT,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    MULTICLUSTER_LABEL,
    READER_SERVICE_ACCOUNT,
    REMOTE_SECRET_PREFIX,
    RESTART_ANNOTATION,
    STATE_CONFIGMAP,
    STATE_KEY,
    TOKEN_SECRET,
    ClusterSpec,
    Observed,
    parse_mesh_networks,
)
from ansible_collections.multicloud.interconnect.plugins.module_utils._istio_plan import Action
from ansible_collections.multicloud.interconnect.plugins.module_utils._k8s import (
    ApiException,
    ClusterError,
    api_client,
    describe_api_exception,
)

try:
    from kubernetes import client as k8s_client
except ImportError:  # pragma: no cover - _k8s reports the missing library
    k8s_client = None

try:
    import yaml
except ImportError:  # pragma: no cover - the modules report it through missing_required_lib
    yaml = None


def _decode_kubeconfig(data: t.Mapping[str, str], source: str) -> t.Optional[t.Dict[str, t.Any]]:
    raw = (data or {}).get(source)
    if not raw:
        return None
    try:
        loaded = yaml.safe_load(base64.b64decode(raw).decode())
    except (ValueError, yaml.YAMLError):
        return None
    return loaded if isinstance(loaded, dict) else None


def _describe(err: BaseException) -> str:
    if getattr(err, "status", None):
        return describe_api_exception(err)
    return str(err)[:300]


class ClusterAccess:
    """The Kubernetes calls of one cluster; every failure becomes a ClusterError naming it."""

    def __init__(self, spec: ClusterSpec, options: t.Mapping[str, t.Any]) -> None:
        self.spec = spec
        self.options = options
        self.api = api_client(spec.name, spec.kubeconfig, spec.context)
        self.core = k8s_client.CoreV1Api(self.api)
        self.apps = k8s_client.AppsV1Api(self.api)
        self.timeout = options.get("request_timeout", 20)

    def _call(self, what: str, function: t.Callable[..., t.Any], *args: t.Any, **kwargs: t.Any) -> t.Any:
        kwargs.setdefault("_request_timeout", self.timeout)
        try:
            return function(*args, **kwargs)
        except Exception as err:  # ApiException, or a connection error that names the endpoint
            if isinstance(err, ApiException) and getattr(err, "status", None) == 404:
                return None
            raise ClusterError(self.spec.name, "%s: %s" % (what, _describe(err))) from err

    def observe(self) -> Observed:
        ns = self.options["namespace"]
        obs = Observed()
        obs.namespace_exists = self._call("read namespace " + ns, self.core.read_namespace, ns) is not None
        if not obs.namespace_exists:
            obs.reader_account_exists = obs.mesh_configmap_exists = False
            self._observe_gateway(obs)  # the node addresses a planned NodePort gateway will use
            return obs
        state_cm = self._call("read ConfigMap " + STATE_CONFIGMAP, self.core.read_namespaced_config_map,
                              STATE_CONFIGMAP, ns)
        if state_cm is not None:
            obs.state_configmap_exists = True
            try:
                obs.state = json.loads((state_cm.data or {}).get(STATE_KEY) or "null")
            except ValueError:
                obs.state = None
        secrets = self._call("list remote secrets", self.core.list_namespaced_secret, ns,
                             label_selector=MULTICLUSTER_LABEL + "=true")
        for item in (secrets.items if secrets else []):
            name = item.metadata.name
            if not name.startswith(REMOTE_SECRET_PREFIX):
                continue
            source = (item.metadata.annotations or {}).get(CLUSTER_ANNOTATION) or name[len(REMOTE_SECRET_PREFIX):]
            obs.remote_secrets[name] = {
                "source": source,
                "managed": (item.metadata.labels or {}).get(MANAGED_BY_LABEL) == MANAGED_BY,
                "labels": dict(item.metadata.labels or {}),
                "annotations": dict(item.metadata.annotations or {}),
                "kubeconfig": _decode_kubeconfig(item.data or {}, source),
            }
        token = self._call("read Secret " + TOKEN_SECRET, self.core.read_namespaced_secret, TOKEN_SECRET, ns)
        if token is not None:
            obs.token_secret_exists = True
            obs.token_secret_managed = (token.metadata.labels or {}).get(MANAGED_BY_LABEL) == MANAGED_BY
            raw = (token.data or {}).get("token")
            obs.token = base64.b64decode(raw).decode() if raw else None
        obs.reader_account_exists = self._call("read ServiceAccount", self.core.read_namespaced_service_account,
                                               READER_SERVICE_ACCOUNT, ns) is not None
        mesh = self._call("read ConfigMap " + self.options["mesh_config_map"], self.core.read_namespaced_config_map,
                          self.options["mesh_config_map"], ns)
        obs.mesh_configmap_exists = mesh is not None
        if mesh is not None:
            obs.mesh_networks = parse_mesh_networks((mesh.data or {}).get("meshNetworks"))
        self._observe_gateway(obs)
        deployments = self._call("list istiod Deployments", self.apps.list_namespaced_deployment, ns,
                                 label_selector="app=istiod")
        obs.control_planes = sorted(d.metadata.name for d in (deployments.items if deployments else []))
        return obs

    def _observe_gateway(self, obs: Observed) -> None:
        if self.spec.gateway:
            if obs.namespace_exists:
                obs.gateway_service = self.read_gateway_service()
            if (self.spec.gateway.get("service_type") or "LoadBalancer") == "NodePort" and \
                    not self.spec.gateway.get("address"):
                obs.node_addresses = self.node_addresses()

    def read_gateway_service(self) -> t.Optional[t.Dict[str, t.Any]]:
        name = self.options["gateway_service"]
        svc = self._call("read Service " + name, self.core.read_namespaced_service, name, self.options["namespace"])
        if svc is None:
            return None
        node_port = None
        for port in svc.spec.ports or []:
            if port.port == GATEWAY_PORT:
                node_port = port.node_port
        ingress = []
        if svc.status and svc.status.load_balancer and svc.status.load_balancer.ingress:
            for entry in svc.status.load_balancer.ingress:
                if entry.ip or entry.hostname:
                    ingress.append(entry.ip or entry.hostname)
        return {"name": name, "type": svc.spec.type, "node_port": node_port, "ingress": ingress}

    def node_addresses(self) -> t.List[str]:
        """InternalIPs of the worker nodes (all nodes when every node is a control-plane node)."""
        nodes = self._call("list nodes", self.core.list_node)
        workers, everyone = [], []
        for node in (nodes.items if nodes else []):
            ips = [a.address for a in (node.status.addresses or []) if a.type == "InternalIP"] if node.status else []
            everyone.extend(ips[:1])
            if "node-role.kubernetes.io/control-plane" not in (node.metadata.labels or {}):
                workers.extend(ips[:1])
        return sorted(workers or everyone)

    # -- writes --
    def create_token_secret(self, body: t.Mapping[str, t.Any]) -> None:
        self._write("create Secret " + TOKEN_SECRET, self.core.create_namespaced_secret,
                    self.options["namespace"], body)

    def wait_token(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            secret = self._call("read Secret " + TOKEN_SECRET, self.core.read_namespaced_secret, TOKEN_SECRET,
                                self.options["namespace"])
            raw = (secret.data or {}).get("token") if secret is not None else None
            if raw:
                return base64.b64decode(raw).decode()
            if time.monotonic() > deadline:
                raise ClusterError(self.spec.name, "Secret %s/%s got no token within %ss; is the token controller of "
                                   "kube-controller-manager running?" % (self.options["namespace"], TOKEN_SECRET,
                                                                         timeout))
            time.sleep(1)

    def wait_gateway(self, timeout: float) -> t.Optional[t.Dict[str, t.Any]]:
        deadline = time.monotonic() + timeout
        while True:
            service = self.read_gateway_service()
            if service is None or service.get("ingress") or time.monotonic() > deadline:
                return service
            time.sleep(2)

    def _write(self, what: str, function: t.Callable[..., t.Any], *args: t.Any) -> None:
        try:
            function(*args, _request_timeout=self.timeout)
        except Exception as err:  # ApiException, or a connection error that names the endpoint
            if isinstance(err, ApiException) and getattr(err, "status", None) == 404 and what.startswith("delete"):
                return
            raise ClusterError(self.spec.name, "%s: %s" % (what, _describe(err))) from err

    def apply(self, action: Action) -> None:
        ns = self.options["namespace"]
        what = "%s %s %s" % (action.action, action.kind, action.name)
        if action.kind == "Secret":
            if action.action == "delete":
                self._write(what, self.core.delete_namespaced_secret, action.name, ns)
            elif action.action == "create":
                self._write(what, self.core.create_namespaced_secret, ns, action.body)
            else:
                self._write(what, self.core.replace_namespaced_secret, action.name, ns, action.body)
        elif action.name == STATE_CONFIGMAP:
            body = {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": STATE_CONFIGMAP, "namespace": ns, "labels": {MANAGED_BY_LABEL: MANAGED_BY}},
                    "data": {STATE_KEY: json.dumps(action.body, sort_keys=True, indent=1)}}
            if action.action == "delete":
                self._write(what, self.core.delete_namespaced_config_map, action.name, ns)
            elif action.action == "create":
                self._write(what, self.core.create_namespaced_config_map, ns, body)
            else:
                self._write(what, self.core.replace_namespaced_config_map, action.name, ns, body)
        else:  # pragma: no cover - plan() makes no other action
            raise ValueError("no writer for %s" % what)

    def restart(self, deployment: str) -> None:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        patch = {"spec": {"template": {"metadata": {"annotations": {RESTART_ANNOTATION: stamp}}}}}
        self._write("restart Deployment " + deployment, self.apps.patch_namespaced_deployment, deployment,
                    self.options["namespace"], patch)


def observe_all(accesses: t.Mapping[str, ClusterAccess]) -> t.Dict[str, Observed]:
    return {name: access.observe() for name, access in sorted(accesses.items())}
