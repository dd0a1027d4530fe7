# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Istio interconnect: the rules a request must pass before anything is written.

Private to the multicloud.interconnect collection: other collections must not import it,
its interface may change without notice.

Every function returns every problem at once (``Problem`` with code, clusters, field and fix);
the caller refuses with ``InterconnectError`` when any is left.
"""

from __future__ import annotations

import json
import typing as t

from ansible_collections.multicloud.interconnect.plugins.module_utils._istio import (
    READER_SERVICE_ACCOUNT,
    ClusterSpec,
    Observed,
    gateway_clusters,
    groups_of,
)
from ansible_collections.multicloud.interconnect.plugins.module_utils._problems import Problem, problem


def _difference(before: t.Iterable[str], now: t.Iterable[str], added_as: str,
                dropped_as: str) -> t.Tuple[t.List[str], t.List[str], str]:
    """(added, dropped, "added_as a, b; dropped_as c") between two lists of cluster names."""
    added = sorted(set(now) - set(before))
    dropped = sorted(set(before) - set(now))
    detail = "; ".join(part for part in ("%s %s" % (added_as, ", ".join(added)) if added else "",
                                         "%s %s" % (dropped_as, ", ".join(dropped)) if dropped else "") if part)
    return added, dropped, detail


def desired_joined(recorded: t.Iterable[str], requested: t.Iterable[str], state: str) -> t.List[str]:
    recorded_set, requested_set = set(recorded), set(requested)
    if state == "absent":
        return sorted(recorded_set - requested_set)
    return sorted(recorded_set | requested_set)


def check_rules(specs: t.Mapping[str, ClusterSpec], recorded: t.Mapping[str, t.Mapping[str, t.Any]],
                requested: t.Sequence[str], state: str, addresses_only: bool = False) -> t.List[Problem]:
    """Every reason the mesh network groups' rules refuse this request; empty when it may proceed."""
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
                "fix the name in interconnect_groups", (), group, field="interconnect_groups"))
            continue
        if state == "present" and group in groups and not gateway_clusters(specs, group):
            problems.append(Problem(
                "INTERCONNECT_NO_GATEWAY",
                "network group %s has no east-west gateway (clusters: %s), so it cannot join the interconnect."
                % (group, ", ".join(groups[group])),
                "set cluster_eastwest_gateway on at least one cluster of %s and run playbooks/istio_mesh.yml" % group,
                tuple(groups[group]), group, field="cluster_eastwest_gateway"))
        if addresses_only and group not in recorded:
            problems.append(Problem(
                "INTERCONNECT_NOT_JOINED",
                "group %s is not joined; a gateway address update applies to joined groups only." % group,
                "join it with playbooks/interconnect_join.yml, or leave it out of the update", (), group,
                field="interconnect_update_groups"))
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
                    tuple(before["clusters"]), group, field="cluster_network_group"))
            else:
                problems.append(Problem(
                    "GROUP_EMPTY",
                    "joined group %s would keep no cluster (it had %s); a group keeps at least one cluster."
                    % (group, ", ".join(before["clusters"])),
                    "keep at least one cluster in %s, or run %s" % (group, remove_flow % group),
                    tuple(before["clusters"]), group, field="cluster_network_group"))
            continue
        added, dropped, detail = _difference(before["clusters"], now, "added", "removed or moved")
        if added or dropped:
            problems.append(Problem(
                "JOINED_GROUP_CHANGED",
                "group %s is joined, so its clusters cannot change (%s); only gateway addresses may change."
                % (group, detail), "run " + remove_flow % group, tuple(sorted(set(added) | set(dropped))), group,
                field="cluster_network_group"))
            continue
        gw_added, gw_dropped, detail = _difference(before["gateway_clusters"], gateway_clusters(specs, group),
                                                   "added on", "removed from")
        if gw_added or gw_dropped:
            problems.append(Problem(
                "JOINED_GATEWAYS_CHANGED",
                "group %s is joined, so its east-west gateways cannot be added or removed (%s); only their "
                "addresses may change." % (group, detail), "run " + remove_flow % group,
                tuple(sorted(set(gw_added) | set(gw_dropped))), group, field="cluster_eastwest_gateway"))
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
                    "or give api_url and ca_data", (spec.name,), spec.group, field="api_url/ca_data"))
        if spec.gateway and obs.gateway_service is None:
            problems.append(Problem(
                "GATEWAY_MISSING",
                "cluster %s declares an east-west gateway but has no Service %s/%s."
                % (spec.name, options["namespace"], options["gateway_service"]),
                "run playbooks/istio_mesh.yml first", (spec.name,), spec.group, field="cluster_eastwest_gateway"))
    return problems


def assume_planned(specs: t.Mapping[str, ClusterSpec], observed: t.Mapping[str, Observed],
                   joined: t.Sequence[str], options: t.Mapping[str, t.Any]) -> t.List[t.Dict[str, str]]:
    """Check mode of a run whose earlier stages install Istio, the gateways and the API exposure
    (``site.yml --check``): take what a joined cluster lacks as planned, so the report shows the
    whole join instead of refusing; returns what was assumed, per cluster. Values known only after
    those stages apply (tokens, node ports, addresses) are shown as such."""
    assumed = []
    for name in sorted(specs):
        spec, obs = specs[name], observed[name]
        if spec.group not in joined:
            continue
        lacking = []
        if not obs.namespace_exists or not obs.mesh_configmap_exists:
            lacking.append("Istio (namespace %s, ConfigMap %s)" % (options["namespace"], options["mesh_config_map"]))
            obs.namespace_exists = obs.mesh_configmap_exists = True
            obs.mesh_networks = {}
        if not obs.reader_account_exists:
            lacking.append("ServiceAccount %s" % READER_SERVICE_ACCOUNT)
            obs.reader_account_exists = True
        if spec.gateway and obs.gateway_service is None:
            lacking.append("east-west gateway Service %s" % options["gateway_service"])
            obs.gateway_service = {"name": options["gateway_service"], "type": spec.gateway.get("service_type"),
                                   "node_port": None, "ingress": [], "planned": True}
        if lacking:
            assumed.append({"cluster": name, "planned": ", ".join(lacking)})
    return assumed


def disable_problems(joined: t.Iterable[str], confirmation: t.Any, expected: str) -> t.List[Problem]:
    """Why the interconnect feature cannot be disabled yet; empty when it can."""
    problems = []
    joined = sorted(joined)
    if joined:
        problems.append(problem(
            "INTERCONNECT_STILL_JOINED",
            "groups still on the interconnect list: %s" % ", ".join(joined),
            "run playbooks/interconnect_remove.yml with interconnect_groups=%s first" % json.dumps(joined),
            field="interconnect_groups"))
    if confirmation != expected:
        problems.append(problem(
            "INTERCONNECT_DISABLE_UNCONFIRMED",
            "disabling removes the gateway rule and every east-west gateway",
            "confirm with -e interconnect_disable_confirm='%s'" % expected,
            field="interconnect_disable_confirm"))
    return problems
