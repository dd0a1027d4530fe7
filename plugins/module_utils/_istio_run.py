# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Istio interconnect: a join, remove or address update from observe to apply.

Private to the multicloud.interconnect collection: other collections must not import it,
its interface may change without notice.

observe every cluster -> refuse what the rules forbid (nothing written) -> plan -> apply the
plan (reader tokens first: the remote secrets carry them) -> name the istiod Deployments that
read the change. In check mode the plan is returned and nothing is written.
"""

from __future__ import annotations

import dataclasses
import typing as t

from ansible_collections.multicloud.interconnect.plugins.module_utils._istio import (
    TOKEN_SECRET,
    ClusterSpec,
    InterconnectError,
    gateway_clusters_in,
    recorded_groups,
)
from ansible_collections.multicloud.interconnect.plugins.module_utils._istio_access import observe_all
from ansible_collections.multicloud.interconnect.plugins.module_utils._istio_plan import (
    Action,
    affected_control_planes,
    diff_of,
    group_gateways,
    mesh_networks_plan,
    networks_changing,
    plan,
)
from ansible_collections.multicloud.interconnect.plugins.module_utils._istio_rules import (
    assume_planned,
    check_cluster_readiness,
    check_rules,
    desired_joined,
)


@dataclasses.dataclass
class Result:
    actions: t.List[Action]
    joined_before: t.List[str]
    joined_after: t.List[str]
    gateways: t.Dict[str, t.List[t.Dict[str, t.Any]]]
    control_planes: t.List[t.Dict[str, t.Any]]
    networks: t.Dict[str, t.Dict[str, t.Any]] = dataclasses.field(default_factory=dict)
    assumed: t.List[t.Dict[str, str]] = dataclasses.field(default_factory=list)

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
            "assumed": self.assumed,
            "diff": diff,
        }


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
    assumed = []
    if check_mode and options.get("planned_prerequisites") and not problems:
        assumed = assume_planned(specs, observed, joined, options)
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
    return Result(actions, sorted(recorded), joined, gateways, control_planes, networks, assumed)
