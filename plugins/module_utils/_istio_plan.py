# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Istio interconnect: the plan, pure.

Private to the multicloud.interconnect collection: other collections must not import it,
its interface may change without notice.

``plan`` computes the objects every cluster must have or lose so that exactly the joined groups
are interconnected; ``mesh_networks_plan`` the meshNetworks each istiod release must carry. Both
compare desired with ``Observed``, so check mode shows the real plan and a second run is empty.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import typing as t

from ansible_collections.multicloud.interconnect.plugins.module_utils._istio import (
    CLUSTER_ANNOTATION,
    GATEWAY_PORT,
    GATEWAY_SERVICE,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    MASK,
    MULTICLUSTER_LABEL,
    PLANNED,
    READER_SERVICE_ACCOUNT,
    REMOTE_SECRET_PREFIX,
    SERVICE_ACCOUNT_ANNOTATION,
    STATE_CONFIGMAP,
    TOKEN_SECRET,
    ClusterSpec,
    Observed,
    gateway_clusters,
    groups_of,
)
from ansible_collections.multicloud.interconnect.plugins.module_utils._problems import Problem

try:
    import yaml
except ImportError:  # pragma: no cover - the modules report it through missing_required_lib
    yaml = None


def gateway_addresses(spec: ClusterSpec, obs: Observed) -> t.Tuple[t.List[t.Dict[str, t.Any]], t.Optional[str]]:
    """The ``{address, port}`` entries peers use to reach ``spec``'s gateway, or a reason it has none yet.

    A fixed ``address`` wins; LoadBalancer uses the Service's ingress; NodePort uses the nodes'
    InternalIPs with the node port of 15443.
    """
    gateway = spec.gateway or {}
    service = obs.gateway_service or {}
    service_type = gateway.get("service_type") or "LoadBalancer"
    port: t.Any = GATEWAY_PORT
    if service_type == "NodePort":
        port = gateway.get("node_port") or service.get("node_port")
        if not port and service.get("planned"):
            port = PLANNED % ("node port of %d" % GATEWAY_PORT)
        elif not port:
            return [], "Service %s has no node port for %d yet" % (service.get("name", GATEWAY_SERVICE), GATEWAY_PORT)
    if service.get("planned") and not gateway.get("address") and service_type != "NodePort":
        return [{"address": PLANNED % "load balancer address", "port": port}], None
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
    return [{"address": a, "port": port if isinstance(port, str) else int(port)} for a in sorted(set(addresses))], None


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
                                        (name,), group, field="cluster_eastwest_gateway.address"))
            for entry in found:
                if entry not in entries:
                    entries.append(entry)
        result[group] = entries
    return result, problems


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
