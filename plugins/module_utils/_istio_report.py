# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Istio interconnect: the read-only report.

Private to the multicloud.interconnect collection: other collections must not import it,
its interface may change without notice.

Groups, the joined list, gateways and addresses, remote secrets present, missing, stale or
unexpected, and the drift a join would repair: the plan of a join of the recorded groups.
"""

from __future__ import annotations

import typing as t

from ansible_collections.multicloud.interconnect.plugins.module_utils._istio import (
    TOKEN_SECRET,
    ClusterSpec,
    Observed,
    gateway_clusters,
    groups_of,
    recorded_groups,
)
from ansible_collections.multicloud.interconnect.plugins.module_utils._istio_plan import group_gateways, mesh_networks_plan, networks_changing, plan


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
