# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Istio network groups joined through east-west gateways: rules, plan and apply.

Private to the multicloud.interconnect collection: other collections must not import it,
its interface may change without notice.

The plan is pure: ``observe`` reads each cluster once into ``Observed``, ``check_rules`` refuses
a change the interconnect rules forbid (before anything is written), ``plan`` computes the
objects every cluster must have or lose, and ``apply`` writes only those. So check mode shows the
real plan and a second run changes nothing.

What a join writes, in the mesh namespace of the clusters involved:

* ``istio-remote-secret-<source>`` in every cluster of every joined group, for every cluster of
  the other joined groups, shaped as ``istioctl create-remote-secret`` makes it (label
  ``istio/multiCluster=true``, annotation ``networking.istio.io/cluster``, one data key named
  after the source cluster holding a kubeconfig with the reader service account's token);
* the reader token Secret in each source cluster (a service-account-token Secret that the
  token controller fills, as istioctl does);
* the joined networks with their gateway addresses in the ``meshNetworks`` key of the mesh
  ConfigMap (only the entries of network groups; other entries are kept);
* the ConfigMap ``istio-interconnect`` recording the joined groups, so the rules can be
  enforced on the next run from the clusters themselves.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import datetime
import json
import re
import time
import typing as t

from ansible_collections.multicloud.interconnect.plugins.module_utils._k8s import (
    ApiException,
    ClusterError,
    api_client,
    describe_api_exception,
)
from ansible_collections.multicloud.interconnect.plugins.module_utils._problems import Problem, refusal

try:
    from kubernetes import client as k8s_client
except ImportError:  # pragma: no cover - _k8s reports the missing library
    k8s_client = None

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
CLUSTER_KEYS = ("network_group", "eastwest_gateway", "api_url", "tls_server_name", "ca_data", "kubeconfig", "context")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class InterconnectError(Exception):
    """The request breaks a rule; nothing was changed. ``problems`` lists every reason."""

    def __init__(self, problems: t.Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(refusal("Interconnect", self.problems))


# ---- inputs ------------------------------------------------------------------------------------

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
                                    "give network_group, eastwest_gateway, api_url, ca_data, kubeconfig ...", (name,)))
            continue
        unknown = sorted(set(entry) - set(CLUSTER_KEYS))
        if unknown:
            problems.append(Problem("CLUSTER_INVALID", "clusters entry %s has unknown keys %s." % (name, ", ".join(unknown)),
                                    "use only %s" % ", ".join(CLUSTER_KEYS), (name,)))
            continue
        group = entry.get("network_group")
        if not isinstance(group, str) or not _DNS1123_LABEL.match(group):
            problems.append(Problem("CLUSTER_INVALID", "cluster %s has network_group %r." % (name, group),
                                    "set cluster_network_group to a DNS-1123 label", (name,)))
            continue
        gateway = entry.get("eastwest_gateway") or None
        if gateway is not None and not isinstance(gateway, dict):
            problems.append(Problem("CLUSTER_INVALID", "cluster %s has eastwest_gateway %r." % (name, gateway),
                                    "write cluster_eastwest_gateway as a mapping", (name,), group))
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


# ---- what a cluster holds ----------------------------------------------------------------------

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


# ---- the rules ---------------------------------------------------------------------------------

def desired_joined(recorded: t.Iterable[str], requested: t.Iterable[str], state: str) -> t.List[str]:
    recorded_set, requested_set = set(recorded), set(requested)
    if state == "absent":
        return sorted(recorded_set - requested_set)
    return sorted(recorded_set | requested_set)


def check_rules(specs: t.Mapping[str, ClusterSpec], recorded: t.Mapping[str, t.Mapping[str, t.Any]],
                requested: t.Sequence[str], state: str, addresses_only: bool = False) -> t.List[Problem]:
    """Every reason the seed's rules refuse this request; empty when it may proceed."""
    problems: t.List[Problem] = []
    groups = groups_of(specs)
    remove_flow = ("interconnect_remove.yml (state=absent) for %s, change the inventory, then "
                   "interconnect_join.yml again")
    for group in requested:
        if group not in groups and group not in recorded:
            problems.append(Problem(
                "INTERCONNECT_UNKNOWN_GROUP",
                "group %s is requested, but no cluster is in it and no cluster records it as joined (groups: %s)."
                % (group, ", ".join(groups) or "none"),
                "fix the name in interconnect_groups", (), group))
            continue
        if state == "present" and group in groups and not gateway_clusters(specs, group):
            problems.append(Problem(
                "INTERCONNECT_NO_GATEWAY",
                "network group %s has no east-west gateway (clusters: %s), so it cannot join the interconnect."
                % (group, ", ".join(groups[group])),
                "set cluster_eastwest_gateway on at least one cluster of %s and run playbooks/istio_mesh.yml" % group,
                tuple(groups[group]), group))
        if addresses_only and group not in recorded:
            problems.append(Problem(
                "INTERCONNECT_NOT_JOINED",
                "group %s is not joined; a gateway address update applies to joined groups only." % group,
                "join it with playbooks/interconnect_join.yml, or leave it out of the update", (), group))
    staying = desired_joined(recorded, requested, state)
    for group in staying:
        if group not in recorded:
            continue
        before = recorded[group]
        now = groups.get(group, [])
        if not now:
            moved = sorted({specs[c].group for c in before["clusters"] if c in specs})
            if len(moved) == 1 and moved[0] not in recorded and \
                    sorted(groups.get(moved[0], [])) == sorted(c for c in before["clusters"] if c in specs):
                problems.append(Problem(
                    "GROUP_RENAMED",
                    "joined group %s now appears as %s (same clusters: %s); a network group's name cannot change."
                    % (group, moved[0], ", ".join(before["clusters"])),
                    "set cluster_network_group back to %s, or run %s" % (group, remove_flow % group),
                    tuple(before["clusters"]), group))
            else:
                problems.append(Problem(
                    "GROUP_EMPTY",
                    "joined group %s would keep no cluster (it had %s); a group keeps at least one cluster."
                    % (group, ", ".join(before["clusters"])),
                    "keep at least one cluster in %s, or run %s" % (group, remove_flow % group),
                    tuple(before["clusters"]), group))
            continue
        added = sorted(set(now) - set(before["clusters"]))
        dropped = sorted(set(before["clusters"]) - set(now))
        if added or dropped:
            detail = "; ".join(part for part in (
                "added %s" % ", ".join(added) if added else "",
                "removed or moved %s" % ", ".join(dropped) if dropped else "") if part)
            problems.append(Problem(
                "JOINED_GROUP_CHANGED",
                "group %s is joined, so its clusters cannot change (%s); only gateway addresses may change."
                % (group, detail), "run " + remove_flow % group, tuple(sorted(set(added) | set(dropped))), group))
            continue
        gw_now = gateway_clusters(specs, group)
        if gw_now != list(before["gateway_clusters"]):
            gw_added = sorted(set(gw_now) - set(before["gateway_clusters"]))
            gw_dropped = sorted(set(before["gateway_clusters"]) - set(gw_now))
            detail = "; ".join(part for part in (
                "added on %s" % ", ".join(gw_added) if gw_added else "",
                "removed from %s" % ", ".join(gw_dropped) if gw_dropped else "") if part)
            problems.append(Problem(
                "JOINED_GATEWAYS_CHANGED",
                "group %s is joined, so its east-west gateways cannot be added or removed (%s); only their "
                "addresses may change." % (group, detail), "run " + remove_flow % group,
                tuple(sorted(set(gw_added) | set(gw_dropped))), group))
    return problems


def check_cluster_readiness(specs: t.Mapping[str, ClusterSpec], observed: t.Mapping[str, Observed],
                            joined: t.Sequence[str], options: t.Mapping[str, t.Any],
                            need_api: bool = True) -> t.List[Problem]:
    """What a joined cluster must already have: Istio, the reader account, an exposed API, a gateway.

    A remove or an address update writes no remote secret, so it needs no exposed API (``need_api``).
    """
    problems = []
    peers_exist = len(joined) > 1
    for spec in specs.values():
        if spec.group not in joined:
            continue
        obs = observed[spec.name]
        if not obs.namespace_exists or not obs.mesh_configmap_exists:
            problems.append(Problem(
                "ISTIO_MISSING",
                "cluster %s has no Istio control plane (namespace %s, ConfigMap %s)."
                % (spec.name, options["namespace"], options["mesh_config_map"]),
                "run playbooks/istio_mesh.yml first", (spec.name,), spec.group))
            continue
        if peers_exist and not obs.reader_account_exists:
            problems.append(Problem(
                "READER_ACCOUNT_MISSING",
                "cluster %s has no ServiceAccount %s/%s (the istiod chart creates it)."
                % (spec.name, options["namespace"], READER_SERVICE_ACCOUNT),
                "run playbooks/istio_mesh.yml first", (spec.name,), spec.group))
        if peers_exist and need_api:
            missing = [f for f, v in (("api_url", spec.api_url), ("ca_data", spec.ca_data)) if not v]
            if missing:
                problems.append(Problem(
                    "API_NOT_EXPOSED",
                    "cluster %s has no %s: peers of other groups cannot reach its API server."
                    % (spec.name, " or ".join(missing)),
                    "run playbooks/apiserver_expose.yml (facts apiserver_nodeport_url, apiserver_ca_data) "
                    "or give api_url and ca_data", (spec.name,), spec.group))
        if spec.gateway and obs.gateway_service is None:
            problems.append(Problem(
                "GATEWAY_MISSING",
                "cluster %s declares an east-west gateway but has no Service %s/%s."
                % (spec.name, options["namespace"], options["gateway_service"]),
                "run playbooks/istio_mesh.yml first", (spec.name,), spec.group))
    return problems


def disable_problems(joined: t.Iterable[str], confirmation: t.Any, expected: str) -> t.List[str]:
    """Why the interconnect feature cannot be disabled yet; empty when it can."""
    problems = []
    joined = sorted(joined)
    if joined:
        problems.append("groups still on the interconnect list: %s. Run playbooks/interconnect_remove.yml with "
                        "interconnect_groups=%s first." % (", ".join(joined), json.dumps(joined)))
    if confirmation != expected:
        problems.append("disabling removes the gateway rule and every east-west gateway; confirm with "
                        "-e interconnect_disable_confirm='%s'." % expected)
    return problems


# ---- gateway addresses -------------------------------------------------------------------------

def gateway_addresses(spec: ClusterSpec, obs: Observed) -> t.Tuple[t.List[t.Dict[str, t.Any]], t.Optional[str]]:
    """The ``{address, port}`` entries peers use to reach ``spec``'s gateway, or a reason it has none yet.

    A fixed ``address`` wins; LoadBalancer uses the Service's ingress; NodePort uses the nodes'
    InternalIPs with the node port of 15443.
    """
    gateway = spec.gateway or {}
    service = obs.gateway_service or {}
    service_type = gateway.get("service_type") or "LoadBalancer"
    port = GATEWAY_PORT
    if service_type == "NodePort":
        port = gateway.get("node_port") or service.get("node_port")
        if not port:
            return [], "Service %s has no node port for %d yet" % (service.get("name", GATEWAY_SERVICE), GATEWAY_PORT)
    if gateway.get("address"):
        addresses = [str(gateway["address"])]
    elif service_type == "NodePort":
        addresses = list(obs.node_addresses)
        if not addresses:
            return [], "no node InternalIP found"
    else:
        addresses = list(service.get("ingress") or [])
        if not addresses:
            return [], "the load balancer has not assigned an address to Service %s yet" % service.get(
                "name", GATEWAY_SERVICE)
    return [{"address": a, "port": int(port)} for a in sorted(set(addresses))], None


def group_gateways(specs: t.Mapping[str, ClusterSpec], observed: t.Mapping[str, Observed],
                   groups: t.Iterable[str]) -> t.Tuple[t.Dict[str, t.List[t.Dict[str, t.Any]]], t.List[Problem]]:
    result: t.Dict[str, t.List[t.Dict[str, t.Any]]] = {}
    problems = []
    for group in groups:
        entries: t.List[t.Dict[str, t.Any]] = []
        for name in gateway_clusters(specs, group):
            found, reason = gateway_addresses(specs[name], observed[name])
            if reason:
                problems.append(Problem("GATEWAY_ADDRESS_PENDING", "east-west gateway of %s: %s." % (name, reason),
                                        "wait for the address, or set cluster_eastwest_gateway.address",
                                        (name,), group))
            for entry in found:
                if entry not in entries:
                    entries.append(entry)
        result[group] = entries
    return result, problems


# ---- desired objects ---------------------------------------------------------------------------

def remote_kubeconfig(source: ClusterSpec, token: t.Optional[str]) -> t.Dict[str, t.Any]:
    """The kubeconfig a peer's istiod uses to watch ``source``: its exposed API and reader token."""
    cluster: t.Dict[str, t.Any] = {"server": source.api_url, "certificate-authority-data": source.ca_data}
    if source.tls_server_name:
        cluster["tls-server-name"] = source.tls_server_name
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": source.name, "cluster": cluster}],
        "contexts": [{"name": source.name, "context": {"cluster": source.name, "user": source.name}}],
        "current-context": source.name,
        "preferences": {},
        "users": [{"name": source.name, "user": {"token": token}}],
    }


def remote_secret(source: ClusterSpec, token: t.Optional[str], namespace: str) -> t.Dict[str, t.Any]:
    kubeconfig = yaml.safe_dump(remote_kubeconfig(source, token), sort_keys=True, default_flow_style=False)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": REMOTE_SECRET_PREFIX + source.name,
            "namespace": namespace,
            "labels": {MULTICLUSTER_LABEL: "true", MANAGED_BY_LABEL: MANAGED_BY},
            "annotations": {CLUSTER_ANNOTATION: source.name},
        },
        "data": {source.name: base64.b64encode(kubeconfig.encode()).decode()},
    }


def token_secret(namespace: str) -> t.Dict[str, t.Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/service-account-token",
        "metadata": {"name": TOKEN_SECRET, "namespace": namespace,
                     "labels": {MANAGED_BY_LABEL: MANAGED_BY},
                     "annotations": {SERVICE_ACCOUNT_ANNOTATION: READER_SERVICE_ACCOUNT}},
    }


def mesh_networks(specs: t.Mapping[str, ClusterSpec], joined: t.Sequence[str],
                  gateways: t.Mapping[str, t.Sequence[t.Mapping[str, t.Any]]]) -> t.Dict[str, t.Any]:
    """``meshNetworks.networks`` entries of the joined groups: their registries and gateways."""
    members = groups_of(specs)
    return {group: {"endpoints": [{"fromRegistry": c} for c in members.get(group, [])],
                    "gateways": [dict(g) for g in gateways.get(group, [])]}
            for group in joined}


def state_record(specs: t.Mapping[str, ClusterSpec], cluster: str, joined: t.Sequence[str],
                 gateways: t.Mapping[str, t.Sequence[t.Mapping[str, t.Any]]]) -> t.Dict[str, t.Any]:
    members = groups_of(specs)
    return {
        "cluster": cluster,
        "group": specs[cluster].group,
        "joined": {g: {"clusters": members.get(g, []), "gateway_clusters": gateway_clusters(specs, g),
                       "gateways": [dict(x) for x in gateways.get(g, [])]} for g in joined},
    }


@dataclasses.dataclass
class Action:
    cluster: str
    kind: str          # Secret, ConfigMap
    name: str
    action: str        # create, update, delete
    reason: str
    before: t.Any = None
    after: t.Any = None
    body: t.Any = None  # what to write (never returned: it may hold a token)

    def summary(self) -> t.Dict[str, t.Any]:
        return {"cluster": self.cluster, "kind": self.kind, "name": self.name, "action": self.action,
                "reason": self.reason}


def _secret_view(kubeconfig: t.Optional[t.Mapping[str, t.Any]], known_token: bool = True) -> t.Any:
    """A remote secret's kubeconfig with the token masked, for diffs and reports."""
    if kubeconfig is None:
        return None
    view = copy.deepcopy(dict(kubeconfig))
    for user in view.get("users") or []:
        if isinstance(user, dict) and isinstance(user.get("user"), dict) and "token" in user["user"]:
            user["user"]["token"] = MASK if (user["user"]["token"] or not known_token) else None
    return view


def _token_of(kubeconfig: t.Optional[t.Mapping[str, t.Any]]) -> t.Optional[str]:
    for user in (kubeconfig or {}).get("users") or []:
        if isinstance(user, dict) and isinstance(user.get("user"), dict):
            return user["user"].get("token")
    return None


def plan(specs: t.Mapping[str, ClusterSpec], observed: t.Mapping[str, Observed], joined: t.Sequence[str],
         gateways: t.Mapping[str, t.Sequence[t.Mapping[str, t.Any]]], options: t.Mapping[str, t.Any],
         addresses_only: bool = False, build_missing: bool = True) -> t.List[Action]:
    """Every object to create, update or delete so that exactly ``joined`` groups are interconnected."""
    namespace = options["namespace"]
    actions: t.List[Action] = []
    joined = sorted(joined)
    peers_exist = len(joined) > 1
    sources = sorted(s.name for s in specs.values() if s.group in joined) if peers_exist else []

    for name in sorted(specs):
        spec, obs = specs[name], observed[name]
        if not obs.namespace_exists:
            continue
        member = spec.group in joined
        if not addresses_only:
            # The reader token this cluster hands to its peers.
            wants_token = member and peers_exist
            if wants_token and not obs.token_secret_exists:
                actions.append(Action(name, "Secret", TOKEN_SECRET, "create", "reader token for peers",
                                      None, {"type": "kubernetes.io/service-account-token"},
                                      token_secret(namespace)))
            elif not wants_token and obs.token_secret_exists and obs.token_secret_managed:
                actions.append(Action(name, "Secret", TOKEN_SECRET, "delete", "no peer reads this cluster any more",
                                      {"type": "kubernetes.io/service-account-token"}, None))
            # Remote secrets: one per cluster of the other joined groups.
            wanted = {}
            if member:
                for source in sources:
                    if specs[source].group != spec.group:
                        wanted[REMOTE_SECRET_PREFIX + source] = source
            for secret_name, source in sorted(wanted.items()):
                token = observed[source].token
                desired = remote_kubeconfig(specs[source], token)
                current = obs.remote_secrets.get(secret_name)
                if specs[source].api_url is None and current is not None and current.get("kubeconfig"):
                    # Only a report runs without the exposed API facts (a join refuses): judge the token alone.
                    desired = copy.deepcopy(current["kubeconfig"])
                    for user in desired.get("users") or []:
                        if isinstance(user, dict) and isinstance(user.get("user"), dict):
                            user["user"]["token"] = token
                reason = "peer %s of group %s" % (source, specs[source].group)
                if current is None and specs[source].api_url is None and not build_missing:
                    continue  # a remove keeps the peers that stay; without the exposed API it cannot rebuild one
                if current is None:
                    actions.append(Action(name, "Secret", secret_name, "create", reason, None,
                                          _secret_view(desired, token is not None),
                                          remote_secret(specs[source], token, namespace)))
                    continue
                same_labels = current.get("labels", {}).get(MULTICLUSTER_LABEL) == "true" and \
                    current.get("annotations", {}).get(CLUSTER_ANNOTATION) == source and current.get("managed")
                if token is None or current.get("kubeconfig") != desired or not same_labels:
                    token_changed = token is None or _token_of(current.get("kubeconfig")) != token
                    after = _secret_view(desired, token is not None)
                    if token_changed and after is not None:
                        for user in after["users"]:
                            user["user"]["token"] = MASK + " (new)"
                    actions.append(Action(name, "Secret", secret_name, "update", reason,
                                          _secret_view(current.get("kubeconfig")), after,
                                          remote_secret(specs[source], token, namespace)))
            for secret_name, current in sorted(obs.remote_secrets.items()):
                if secret_name not in wanted and current.get("managed"):
                    actions.append(Action(name, "Secret", secret_name, "delete",
                                          "%s is no longer a peer" % current.get("source"),
                                          _secret_view(current.get("kubeconfig")), None))
        # The record the rules are checked against on the next run.
        desired_state = state_record(specs, name, joined, gateways) if member else None
        if desired_state != obs.state or (desired_state is None and obs.state_configmap_exists):
            if desired_state is None:
                actions.append(Action(name, "ConfigMap", STATE_CONFIGMAP, "delete", "cluster left the interconnect",
                                      obs.state, None))
            else:
                actions.append(Action(name, "ConfigMap", STATE_CONFIGMAP,
                                      "update" if obs.state_configmap_exists else "create",
                                      "record of the joined groups", obs.state, desired_state, desired_state))
    return actions


def mesh_networks_plan(specs: t.Mapping[str, ClusterSpec], observed: t.Mapping[str, Observed],
                       joined: t.Sequence[str], gateways: t.Mapping[str, t.Sequence[t.Mapping[str, t.Any]]]
                       ) -> t.Dict[str, t.Dict[str, t.Any]]:
    """``{cluster: {"before", "after"}}``: the ``meshNetworks.networks`` each cluster with Istio has and must have.

    The istiod Helm release is the only writer of the mesh ConfigMap (its chart renders
    ``meshNetworks`` from ``global.meshNetworks``); this plan is what the istio role carries into
    that release. Entries of network groups not joined are dropped, foreign entries kept.
    """
    all_groups = set(groups_of(specs))
    for obs in observed.values():
        all_groups.update(((obs.state or {}).get("joined") or {}).keys())
    joined = sorted(joined)
    result = {}
    for name in sorted(specs):
        obs = observed[name]
        if not obs.namespace_exists or not obs.mesh_configmap_exists:
            continue
        current = dict(obs.mesh_networks or {})
        desired = {k: v for k, v in current.items() if k not in all_groups}
        if specs[name].group in joined:
            desired.update(mesh_networks(specs, joined, gateways))
        result[name] = {"before": current, "after": desired}
    return result


def networks_changing(networks: t.Mapping[str, t.Mapping[str, t.Any]]) -> t.List[str]:
    return sorted(name for name, pair in networks.items() if pair["before"] != pair["after"])


def affected_control_planes(actions: t.Sequence[Action], observed: t.Mapping[str, Observed],
                            options: t.Mapping[str, t.Any], networks_changed: t.Iterable[str] = ()
                            ) -> t.List[t.Dict[str, str]]:
    """The istiod Deployments that pick up a change: those of clusters whose secrets or meshNetworks change."""
    clusters = sorted({a.cluster for a in actions if a.name.startswith(REMOTE_SECRET_PREFIX)} | set(networks_changed))
    return [{"cluster": c, "namespace": options["namespace"], "deployment": d}
            for c in clusters for d in observed[c].control_planes]


def diff_of(actions: t.Sequence[Action]) -> t.Dict[str, t.Any]:
    before, after = {}, {}
    for action in actions:
        key = "%s/%s/%s" % (action.cluster, action.kind, action.name)
        before[key] = action.before
        after[key] = action.after
    return {"before": before, "after": after}


# ---- reading the clusters ----------------------------------------------------------------------

def _decode_kubeconfig(data: t.Mapping[str, str], source: str) -> t.Optional[t.Dict[str, t.Any]]:
    raw = (data or {}).get(source)
    if not raw:
        return None
    try:
        loaded = yaml.safe_load(base64.b64decode(raw).decode())
    except (ValueError, yaml.YAMLError):
        return None
    return loaded if isinstance(loaded, dict) else None


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
        if self.spec.gateway:
            obs.gateway_service = self.read_gateway_service()
            if (self.spec.gateway.get("service_type") or "LoadBalancer") == "NodePort" and \
                    not self.spec.gateway.get("address"):
                obs.node_addresses = self.node_addresses()
        deployments = self._call("list istiod Deployments", self.apps.list_namespaced_deployment, ns,
                                 label_selector="app=istiod")
        obs.control_planes = sorted(d.metadata.name for d in (deployments.items if deployments else []))
        return obs

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


# ---- the whole run -----------------------------------------------------------------------------

@dataclasses.dataclass
class Result:
    actions: t.List[Action]
    joined_before: t.List[str]
    joined_after: t.List[str]
    gateways: t.Dict[str, t.List[t.Dict[str, t.Any]]]
    control_planes: t.List[t.Dict[str, t.Any]]
    networks: t.Dict[str, t.Dict[str, t.Any]] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> t.Dict[str, t.Any]:
        changing = networks_changing(self.networks)
        diff = diff_of(self.actions)
        for name in changing:
            # Shown with the plan; written by the istiod release (the istio role), not by this module.
            key = "%s/istiod values/global.meshNetworks" % name
            diff["before"][key] = self.networks[name]["before"]
            diff["after"][key] = self.networks[name]["after"]
        return {
            "changed": bool(self.actions),
            "plan": [a.summary() for a in self.actions],
            "joined_before": self.joined_before,
            "joined_groups": self.joined_after,
            "gateways": self.gateways,
            "control_planes": self.control_planes,
            "mesh_networks": {name: pair["after"] for name, pair in self.networks.items()},
            "mesh_networks_changed": changing,
            "diff": diff,
        }


def observe_all(accesses: t.Mapping[str, ClusterAccess]) -> t.Dict[str, Observed]:
    return {name: access.observe() for name, access in sorted(accesses.items())}


def run(specs: t.Mapping[str, ClusterSpec], requested: t.Sequence[str], options: t.Mapping[str, t.Any],
        check_mode: bool, access_factory: t.Callable[[ClusterSpec], t.Any]) -> Result:
    """Join or remove ``requested`` groups; raises InterconnectError before any write when refused."""
    state = options["state"]
    addresses_only = bool(options.get("addresses_only"))
    accesses = {name: access_factory(spec) for name, spec in specs.items()}
    observed = observe_all(accesses)
    recorded = recorded_groups(observed)
    problems = check_rules(specs, recorded, requested, state, addresses_only)
    joined = desired_joined(recorded, requested, state)
    need_api = state == "present" and not addresses_only
    if not problems:
        problems = check_cluster_readiness(specs, observed, joined, options, need_api)
    if problems:
        raise InterconnectError(problems)
    # A cloud load balancer may take a while to publish its address.
    if not check_mode:
        for name in gateway_clusters_in(specs, joined):
            gw = specs[name].gateway or {}
            if (gw.get("service_type") or "LoadBalancer") == "LoadBalancer" and not gw.get("address") and \
                    not (observed[name].gateway_service or {}).get("ingress"):
                observed[name].gateway_service = accesses[name].wait_gateway(options.get("wait_timeout", 120))
    gateways, problems = group_gateways(specs, observed, joined)
    if problems:
        raise InterconnectError(problems)
    actions = plan(specs, observed, joined, gateways, options, addresses_only, need_api)
    if not check_mode:
        # Tokens first: the remote secrets carry them.
        minted = False
        for action in actions:
            if action.name == TOKEN_SECRET and action.action == "create":
                accesses[action.cluster].create_token_secret(action.body)
                observed[action.cluster].token_secret_exists = True
                observed[action.cluster].token_secret_managed = True
                observed[action.cluster].token = accesses[action.cluster].wait_token(options.get("wait_timeout", 120))
                minted = True
        if minted:
            done = [a for a in actions if a.name == TOKEN_SECRET and a.action == "create"]
            actions = done + plan(specs, observed, joined, gateways, options, addresses_only, need_api)
        for action in actions:
            if action.name == TOKEN_SECRET and action.action == "create":
                continue
            accesses[action.cluster].apply(action)
    networks = mesh_networks_plan(specs, observed, joined, gateways)
    control_planes = affected_control_planes(actions, observed, options, networks_changing(networks))
    for entry in control_planes:
        entry["restarted"] = False
        if options.get("restart_control_plane") and not check_mode:
            accesses[entry["cluster"]].restart(entry["deployment"])
            entry["restarted"] = True
    return Result(actions, sorted(recorded), joined, gateways, control_planes, networks)


def gateway_clusters_in(specs: t.Mapping[str, ClusterSpec], groups: t.Iterable[str]) -> t.List[str]:
    return [name for group in groups for name in gateway_clusters(specs, group)]


# ---- the read-only report ----------------------------------------------------------------------

def info(specs: t.Mapping[str, ClusterSpec], observed: t.Mapping[str, Observed],
         options: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    """Groups, the joined list, gateways and addresses, and remote secrets present, missing or stale."""
    recorded = recorded_groups(observed)
    joined = sorted(recorded)
    gateways, pending = group_gateways(specs, observed, groups_of(specs))
    joined_known = [g for g in joined if g in groups_of(specs)]
    actions = plan(specs, observed, joined_known, gateways, options)
    networks = mesh_networks_plan(specs, observed, joined_known, gateways)
    groups = {}
    for group, members in groups_of(specs).items():
        groups[group] = {"clusters": members, "gateway_clusters": gateway_clusters(specs, group),
                         "gateways": gateways.get(group, []), "joined": group in recorded}
    clusters = {}
    problem_secrets = {(a.cluster, a.name): a.action for a in actions if a.kind == "Secret"}
    for name in sorted(specs):
        obs = observed[name]
        present = sorted(obs.remote_secrets)
        missing = sorted(n for (c, n), act in problem_secrets.items() if c == name and act == "create"
                         and n != TOKEN_SECRET)
        stale = sorted(n for (c, n), act in problem_secrets.items() if c == name and act == "update"
                       and n != TOKEN_SECRET)
        unexpected = sorted(n for (c, n), act in problem_secrets.items() if c == name and act == "delete"
                            and n != TOKEN_SECRET)
        clusters[name] = {
            "group": specs[name].group,
            "istio": obs.namespace_exists and obs.mesh_configmap_exists,
            "remote_secrets": present,
            "missing": missing,
            "stale": stale,
            "unexpected": unexpected,
            "unmanaged": sorted(n for n, s in obs.remote_secrets.items() if not s.get("managed")),
            "mesh_networks": sorted(obs.mesh_networks),
            "control_planes": obs.control_planes,
        }
    drift = [a.summary() for a in actions]
    drift += [{"cluster": name, "kind": "ConfigMap", "name": options["mesh_config_map"], "action": "update",
               "reason": "meshNetworks of the joined groups (carried by the istiod release)"}
              for name in networks_changing(networks)]
    return {"groups": groups, "joined_groups": joined, "recorded": recorded, "clusters": clusters,
            "drift": drift, "in_sync": not drift,
            "pending_addresses": [p.as_dict() for p in pending]}
