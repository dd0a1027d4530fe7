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
import urllib.parse

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
from ansible_collections.multicloud.interconnect.plugins.module_utils._k8s import ClusterError, describe_api_exception
from ansible_collections.multicloud.interconnect.plugins.module_utils._kube_api import ApiError, connect, namespaced_path

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
        self.timeout = options.get("request_timeout", 20)
        self.api = connect(spec.name, spec.kubeconfig, spec.context, timeout=self.timeout)

    def _path(self, plural: str, name: str = "", group: str = "/api/v1") -> str:
        return namespaced_path(self.options["namespace"], plural, name, group)

    def _call(self, what: str, path: str, query: t.Sequence[t.Tuple[str, str]] = ()) -> t.Any:
        """The object or list at ``path``, None when it does not exist."""
        try:
            return self.api.get(what, path, query=query)
        except ApiError as err:
            raise ClusterError(self.spec.name, "%s: %s" % (what, _describe(err))) from err

    def observe(self) -> Observed:
        ns = self.options["namespace"]
        obs = Observed()
        obs.namespace_exists = self._call("read namespace " + ns, "/api/v1/namespaces/" + urllib.parse.quote(ns, safe="")) is not None
        if not obs.namespace_exists:
            obs.reader_account_exists = obs.mesh_configmap_exists = False
            self._observe_gateway(obs)  # the node addresses a planned NodePort gateway will use
            return obs
        state_cm = self._call("read ConfigMap " + STATE_CONFIGMAP, self._path("configmaps", STATE_CONFIGMAP))
        if state_cm is not None:
            obs.state_configmap_exists = True
            try:
                obs.state = json.loads((state_cm.get("data") or {}).get(STATE_KEY) or "null")
            except ValueError:
                obs.state = None
        secrets = self._call("list remote secrets", self._path("secrets"), [("labelSelector", MULTICLUSTER_LABEL + "=true")])
        for item in (secrets or {}).get("items") or []:
            meta = item["metadata"]
            name = meta["name"]
            if not name.startswith(REMOTE_SECRET_PREFIX):
                continue
            source = (meta.get("annotations") or {}).get(CLUSTER_ANNOTATION) or name[len(REMOTE_SECRET_PREFIX):]
            obs.remote_secrets[name] = {
                "source": source,
                "managed": (meta.get("labels") or {}).get(MANAGED_BY_LABEL) == MANAGED_BY,
                "labels": dict(meta.get("labels") or {}),
                "annotations": dict(meta.get("annotations") or {}),
                "kubeconfig": _decode_kubeconfig(item.get("data") or {}, source),
            }
        token = self._call("read Secret " + TOKEN_SECRET, self._path("secrets", TOKEN_SECRET))
        if token is not None:
            obs.token_secret_exists = True
            obs.token_secret_managed = (token["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL) == MANAGED_BY
            raw = (token.get("data") or {}).get("token")
            obs.token = base64.b64decode(raw).decode() if raw else None
        obs.reader_account_exists = self._call("read ServiceAccount",
                                               self._path("serviceaccounts", READER_SERVICE_ACCOUNT)) is not None
        mesh_name = self.options["mesh_config_map"]
        mesh = self._call("read ConfigMap " + mesh_name, self._path("configmaps", mesh_name))
        obs.mesh_configmap_exists = mesh is not None
        if mesh is not None:
            obs.mesh_networks = parse_mesh_networks((mesh.get("data") or {}).get("meshNetworks"))
        self._observe_gateway(obs)
        deployments = self._call("list istiod Deployments", self._path("deployments", group="/apis/apps/v1"),
                                 [("labelSelector", "app=istiod")])
        obs.control_planes = sorted(d["metadata"]["name"] for d in (deployments or {}).get("items") or [])
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
        svc = self._call("read Service " + name, self._path("services", name))
        if svc is None:
            return None
        spec = svc.get("spec") or {}
        node_port = None
        for port in spec.get("ports") or []:
            if port.get("port") == GATEWAY_PORT:
                node_port = port.get("nodePort")
        ingress = [entry.get("ip") or entry.get("hostname")
                   for entry in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
                   if entry.get("ip") or entry.get("hostname")]
        return {"name": name, "type": spec.get("type"), "node_port": node_port, "ingress": ingress}

    def node_addresses(self) -> t.List[str]:
        """InternalIPs of the worker nodes (all nodes when every node is a control-plane node)."""
        nodes = self._call("list nodes", "/api/v1/nodes")
        workers, everyone = [], []
        for node in (nodes or {}).get("items") or []:
            ips = [a["address"] for a in ((node.get("status") or {}).get("addresses") or []) if a.get("type") == "InternalIP"]
            everyone.extend(ips[:1])
            if "node-role.kubernetes.io/control-plane" not in (node["metadata"].get("labels") or {}):
                workers.extend(ips[:1])
        return sorted(workers or everyone)

    # -- writes --
    def create_token_secret(self, body: t.Mapping[str, t.Any]) -> None:
        self._write("create Secret " + TOKEN_SECRET, "POST", self._path("secrets"), body)

    def wait_token(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            secret = self._call("read Secret " + TOKEN_SECRET, self._path("secrets", TOKEN_SECRET))
            raw = (secret.get("data") or {}).get("token") if secret is not None else None
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

    def _write(self, what: str, method: str, path: str, body: t.Any = None,
               content_type: str = "application/json") -> None:
        try:
            self.api.request(what, method, path, body=body, content_type=content_type)
        except ApiError as err:
            if err.status == 404 and method == "DELETE":
                return
            raise ClusterError(self.spec.name, "%s: %s" % (what, _describe(err))) from err

    def apply(self, action: Action) -> None:
        ns = self.options["namespace"]
        what = "%s %s %s" % (action.action, action.kind, action.name)
        if action.kind == "Secret":
            plural, body = "secrets", action.body
        elif action.name == STATE_CONFIGMAP:
            plural = "configmaps"
            body = {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": STATE_CONFIGMAP, "namespace": ns, "labels": {MANAGED_BY_LABEL: MANAGED_BY}},
                    "data": {STATE_KEY: json.dumps(action.body, sort_keys=True, indent=1)}}
        else:  # pragma: no cover - plan() makes no other action
            raise ValueError("no writer for %s" % what)
        if action.action == "delete":
            self._write(what, "DELETE", self._path(plural, action.name))
        elif action.action == "create":
            self._write(what, "POST", self._path(plural), body)
        else:
            self._write(what, "PUT", self._path(plural, action.name), body)

    def restart(self, deployment: str) -> None:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        patch = {"spec": {"template": {"metadata": {"annotations": {RESTART_ANNOTATION: stamp}}}}}
        self._write("restart Deployment " + deployment, "PATCH", self._path("deployments", deployment, "/apis/apps/v1"),
                    patch, "application/strategic-merge-patch+json")


def observe_all(accesses: t.Mapping[str, ClusterAccess]) -> t.Dict[str, Observed]:
    return {name: access.observe() for name, access in sorted(accesses.items())}
