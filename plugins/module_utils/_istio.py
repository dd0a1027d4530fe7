# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Istio network groups joined through east-west gateways: the model every step shares.

Private to the multicloud.interconnect collection: other collections must not import it,
its interface may change without notice.

The interconnect is split by concern, each step reading as observe -> desired -> diff -> apply:

* ``_istio`` (this file): names and constants, the clusters as the inventory gives them
  (``ClusterSpec``), what a cluster shows (``Observed``) and the joined groups it records;
* ``_istio_rules``: what the mesh network groups' rules refuse, before anything is written;
* ``_istio_plan``: pure; the objects every cluster must have or lose, and the meshNetworks
  the istiod releases must carry;
* ``_istio_access``: one cluster's API, read once into ``Observed``, and the writes of a plan;
* ``_istio_run``: a join, remove or address update from observe to apply;
* ``_istio_report``: the read-only report (present, missing, stale, drift).

What a join writes, in the mesh namespace of the clusters involved:

* ``istio-remote-secret-<source>`` in every cluster of every joined group, for every cluster of
  the other joined groups, shaped as ``istioctl create-remote-secret`` makes it (label
  ``istio/multiCluster=true``, annotation ``networking.istio.io/cluster``, one data key named
  after the source cluster holding a kubeconfig with the reader service account's token);
* the reader token Secret in each source cluster (a service-account-token Secret that the
  token controller fills, as istioctl does);
* the ConfigMap ``istio-interconnect`` recording the joined groups, so the rules are
  enforced on the next run from the clusters themselves.

The joined networks with their gateway addresses (``meshNetworks``) are planned, not written:
the mesh ConfigMap belongs to the istiod Helm release, which the istio role upgrades with them.
"""

from __future__ import annotations

import dataclasses
import re
import typing as t

from ansible_collections.multicloud.interconnect.plugins.module_utils._problems import Problem, refusal

try:
    import yaml

    HAS_YAML = True
except ImportError:  # pragma: no cover - the modules report it through missing_required_lib
    HAS_YAML = False

NAMESPACE = "istio-system"
REMOTE_SECRET_PREFIX = "istio-remote-secret-"
MULTICLUSTER_LABEL = "istio/multiCluster"
CLUSTER_ANNOTATION = "networking.istio.io/cluster"
READER_SERVICE_ACCOUNT = "istio-reader-service-account"
TOKEN_SECRET = READER_SERVICE_ACCOUNT + "-istio-remote-secret-token"
SERVICE_ACCOUNT_ANNOTATION = "kubernetes.io/service-account.name"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "multicloud.interconnect"
STATE_CONFIGMAP = "istio-interconnect"
STATE_KEY = "state.json"
NETWORK_LABEL = "topology.istio.io/network"
GATEWAY_SERVICE = "istio-eastwestgateway"
MESH_CONFIGMAP = "istio"
GATEWAY_PORT = 15443
RESTART_ANNOTATION = "kubectl.kubernetes.io/restartedAt"
MASK = "********"
# What a check-mode plan shows for a value that exists only once an earlier stage of the run has applied.
PLANNED = "<%s, once applied>"
CLUSTER_KEYS = ("network_group", "eastwest_gateway", "api_url", "tls_server_name", "ca_data", "kubeconfig", "context")
# Options of interconnect and interconnect_info: the clusters and where Istio keeps its objects.
MESH_SPEC: t.Dict[str, t.Dict[str, t.Any]] = {
    "clusters": {"type": "dict", "required": True},
    "namespace": {"type": "str", "default": NAMESPACE},
    "mesh_config_map": {"type": "str", "default": MESH_CONFIGMAP},
    "gateway_service": {"type": "str", "default": GATEWAY_SERVICE},
}
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class InterconnectError(Exception):
    """The request breaks a rule; nothing was changed. ``problems`` lists every reason."""

    def __init__(self, problems: t.Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(refusal("Interconnect", self.problems))


@dataclasses.dataclass(frozen=True)
class ClusterSpec:
    """One cluster as the inventory and the API server exposure describe it."""

    name: str
    group: str
    gateway: t.Optional[t.Mapping[str, t.Any]] = None
    api_url: t.Optional[str] = None
    tls_server_name: t.Optional[str] = None
    ca_data: t.Optional[str] = None
    kubeconfig: t.Any = None
    context: t.Optional[str] = None


def clusters_from_params(clusters: t.Mapping[str, t.Mapping[str, t.Any]]) -> t.Dict[str, ClusterSpec]:
    """Parse the module's ``clusters`` option; every bad field is reported at once."""
    problems = []
    result = {}
    for name in sorted(clusters or {}):
        entry = clusters[name] or {}
        if not isinstance(entry, dict):
            problems.append(Problem("CLUSTER_INVALID", "clusters entry %s must be a mapping." % name,
                                    "give network_group, eastwest_gateway, api_url, ca_data, kubeconfig ...", (name,),
                                    field="clusters"))
            continue
        unknown = sorted(set(entry) - set(CLUSTER_KEYS))
        if unknown:
            problems.append(Problem("CLUSTER_INVALID", "clusters entry %s has unknown keys %s." % (name, ", ".join(unknown)),
                                    "use only %s" % ", ".join(CLUSTER_KEYS), (name,), field="clusters"))
            continue
        group = entry.get("network_group")
        if not isinstance(group, str) or not _DNS1123_LABEL.match(group):
            problems.append(Problem("CLUSTER_INVALID", "cluster %s has network_group %r." % (name, group),
                                    "set cluster_network_group to a DNS-1123 label", (name,),
                                    field="cluster_network_group"))
            continue
        gateway = entry.get("eastwest_gateway") or None
        if gateway is not None and not isinstance(gateway, dict):
            problems.append(Problem("CLUSTER_INVALID", "cluster %s has eastwest_gateway %r." % (name, gateway),
                                    "write cluster_eastwest_gateway as a mapping", (name,), group,
                                    field="cluster_eastwest_gateway"))
            continue
        result[name] = ClusterSpec(
            name=name, group=group, gateway=gateway, api_url=entry.get("api_url") or None,
            tls_server_name=entry.get("tls_server_name") or None, ca_data=entry.get("ca_data") or None,
            kubeconfig=entry.get("kubeconfig") or None, context=entry.get("context") or None)
    if problems:
        raise InterconnectError(problems)
    return result


def groups_of(specs: t.Mapping[str, ClusterSpec]) -> t.Dict[str, t.List[str]]:
    groups: t.Dict[str, t.List[str]] = {}
    for spec in specs.values():
        groups.setdefault(spec.group, []).append(spec.name)
    return {name: sorted(members) for name, members in sorted(groups.items())}


def gateway_clusters(specs: t.Mapping[str, ClusterSpec], group: str) -> t.List[str]:
    return sorted(s.name for s in specs.values() if s.group == group and s.gateway)


def gateway_clusters_in(specs: t.Mapping[str, ClusterSpec], groups: t.Iterable[str]) -> t.List[str]:
    return [name for group in groups for name in gateway_clusters(specs, group)]


@dataclasses.dataclass
class Observed:
    """One cluster as read from its API server; filled by ``observe`` or by tests."""

    namespace_exists: bool = True
    state: t.Optional[t.Dict[str, t.Any]] = None
    state_configmap_exists: bool = False
    # name -> {"source", "managed", "kubeconfig" (parsed or None), "labels", "annotations"}
    remote_secrets: t.Dict[str, t.Dict[str, t.Any]] = dataclasses.field(default_factory=dict)
    token_secret_exists: bool = False
    token_secret_managed: bool = False
    token: t.Optional[str] = None
    reader_account_exists: bool = True
    mesh_configmap_exists: bool = True
    mesh_networks: t.Dict[str, t.Any] = dataclasses.field(default_factory=dict)
    gateway_service: t.Optional[t.Dict[str, t.Any]] = None
    node_addresses: t.List[str] = dataclasses.field(default_factory=list)
    control_planes: t.List[str] = dataclasses.field(default_factory=list)


def recorded_groups(observed: t.Mapping[str, Observed]) -> t.Dict[str, t.Dict[str, t.Any]]:
    """The joined groups as the clusters recorded them: ``{group: {clusters, gateway_clusters}}``.

    Every joined cluster holds the whole picture; the union is taken so a cluster that missed
    an update (or was reset by hand) cannot hide a joined group.
    """
    joined: t.Dict[str, t.Dict[str, t.Set[str]]] = {}
    for obs in observed.values():
        for group, info in ((obs.state or {}).get("joined") or {}).items():
            entry = joined.setdefault(group, {"clusters": set(), "gateway_clusters": set()})
            entry["clusters"].update(info.get("clusters") or [])
            entry["gateway_clusters"].update(info.get("gateway_clusters") or [])
    return {g: {"clusters": sorted(v["clusters"]), "gateway_clusters": sorted(v["gateway_clusters"])}
            for g, v in sorted(joined.items())}


def parse_mesh_networks(text: t.Optional[str]) -> t.Dict[str, t.Any]:
    if not text:
        return {}
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError:
        return {}
    if not isinstance(loaded, dict):
        return {}
    return dict(loaded.get("networks") or {})
