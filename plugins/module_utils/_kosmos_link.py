# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kosmos ClusterLink: one join or removal of a network group, from observe to apply.

Private to the multicloud.interconnect collection: other collections must not import it,
its interface may change without notice.

Members' objects first (so an unreachable member fails the run before the host changes), then
the host's ``Cluster`` objects with each member's kubeconfig, then what left the group is
unjoined, then the host is read back. The objects come from the pure ``_kosmos``, the API calls
from ``_kosmos_k8s``; the module ``kosmos_link`` only parses its options and reports.
"""

from __future__ import annotations

import typing as t

from ansible_collections.multicloud.interconnect.plugins.module_utils import _kosmos as kosmos
from ansible_collections.multicloud.interconnect.plugins.module_utils import _kosmos_k8s as api

API_VERSION = "%s/%s" % (kosmos.GROUP, kosmos.VERSION)


class LinkRun:
    """One run of kosmos_link: the clients, and everything done or planned, for the result.

    ``params`` are the options of kosmos_link, with ``members_by_name`` added; ``check_mode`` plans
    without writing. Refusals raise ``KosmosError`` before anything is written; API errors raise
    ``ClusterError`` naming the cluster.
    """

    def __init__(self, params: t.Dict[str, t.Any], check_mode: bool) -> None:
        self.params = params
        self.check = check_mode
        self.actions = []
        self.diffs = []
        self.warnings = []
        self.unjoined = []
        self.clients = {}
        # Check mode before the first install: the host has no clusters.kosmos.io yet, so every
        # Cluster object is planned as created without asking the API.
        self.crd_missing = False

    def client(self, name, kubeconfig=None, context=None):
        if name not in self.clients:
            self.clients[name] = api.Cluster(name, kubeconfig, context)
        return self.clients[name]

    def record(self, cluster, desired, action, fields, observed):
        if action in ("unchanged", "absent") or action.startswith("kept"):
            return
        meta = (desired or observed)["metadata"]
        name = "%s/%s" % (meta["namespace"], meta["name"]) if meta.get("namespace") else meta["name"]
        self.actions.append(dict(cluster=cluster, kind=(desired or observed)["kind"], name=name, action=action,
                                 fields=fields))
        self.diffs.append(dict(
            before_header="%s: %s %s" % (cluster, self.actions[-1]["kind"], name),
            after_header="%s: %s %s (%s)" % (cluster, self.actions[-1]["kind"], name, action),
            before=kosmos.masked(observed) or {},
            after=kosmos.masked(desired) if action != "delete" else {}))

    def apply(self, cluster, desired):
        if self.crd_missing and desired["kind"] == "Cluster":
            self.record(cluster.name, desired, "create", ["(create)"], None)
            return "create"
        action, fields, observed = api.apply(cluster, desired, self.check)
        self.record(cluster.name, desired, action, fields, observed)
        return action

    # -- join -----------------------------------------------------------------------------------
    def join_member_side(self, member, labels):
        cluster = self.client(member["name"], member.get("kubeconfig"), member.get("context"))
        for obj in kosmos.member_objects(self.params["namespace"], labels, member["name"] == self.params["host"]):
            self.apply(cluster, obj)
        if self.check:
            return api.observe_token(cluster, self.params["namespace"])
        return cluster.wait_token(self.params["namespace"], self.params["wait_timeout"])

    def join(self):
        params = self.params
        members = params["members"]
        names = [m["name"] for m in members]
        if params["host"] not in names:
            raise kosmos.KosmosError("host %s is not among the members (%s); nothing was changed"
                                     % (params["host"], ", ".join(names)))
        labels = kosmos.managed_labels(params["group"], params["host"])
        host_member = next(m for m in members if m["name"] == params["host"])
        host = self.client(host_member["name"], host_member.get("kubeconfig"), host_member.get("context"))
        self.crd_missing = not host.has_kind(API_VERSION, "Cluster")
        if self.crd_missing and not self.check:
            raise kosmos.KosmosError("cluster %s: the clusters.kosmos.io CRD is missing; install Kosmos on the host "
                                     "first (role multicloud.interconnect.kosmos); nothing was changed" % host.name)
        # Members first, so a cluster that cannot be reached fails the run before the host changes.
        for member in members:
            self.client(member["name"], member.get("kubeconfig"), member.get("context"))
        ordered = [host_member] + [m for m in members if m["name"] != params["host"]]
        tokens = {m["name"]: self.join_member_side(m, labels) for m in ordered}
        host_kubeconfig = (api.kubeconfig_for(host, tokens[host.name], host_member.get("api_server"))
                           if tokens[host.name] else None)
        for member in ordered:
            cluster = self.clients[member["name"]]
            secret = kosmos.controlpanel_secret(params["namespace"], labels, host_kubeconfig or b"")
            if host_kubeconfig is None:
                secret.pop("data")  # check mode before the host token exists: only "will be created" is known
            self.apply(cluster, secret)
            token = tokens[member["name"]]
            kubeconfig = api.kubeconfig_for(cluster, token, member.get("api_server")) if token else None
            self.apply(host, kosmos.cluster_object(member, params["namespace"], params["image_repository"], labels,
                                                   kubeconfig))
        if not self.crd_missing:
            self.prune(host, names)
        return host

    # -- unjoin -----------------------------------------------------------------------------------
    def prune(self, host, keep):
        observed = api.list_kosmos(host, "Cluster") or []
        for name in kosmos.stale_clusters(observed, keep, self.params["host"]):
            self.unjoin(host, name)

    def unjoin(self, host, name):
        params = self.params
        action, observed = api.remove(host, API_VERSION, "Cluster", name, None, self.check)
        self.record(host.name, None, action, [], observed)
        if action == "delete" and not self.check:
            # The Kosmos operator removes its agents from the member, through the member's
            # kubeconfig, before it releases its finalizer: member RBAC must outlive that.
            host.wait_gone(API_VERSION, "Cluster", name, None, params["wait_timeout"],
                           "the Kosmos operator holds its finalizer; check clusterlink-operator in %s on %s"
                           % (params["namespace"], host.name))
        self.unjoined.append(name)
        member = params["members_by_name"].get(name) or params["known_clusters"].get(name)
        if member is None:
            self.warnings.append(
                "cluster %s left the group but is not in the inventory, so its namespace %s, service accounts, "
                "ClusterRole/ClusterRoleBinding kosmos and secret %s were left in place; add it back with "
                "cluster_kubeconfig (in another group) and run again, or remove them by hand"
                % (name, params["namespace"], kosmos.CONTROLPANEL_SECRET))
            return
        cluster = self.client(name, member.get("kubeconfig"), member.get("context"))
        is_host = name == params["host"]
        objects = kosmos.member_objects(params["namespace"], {}, is_host)
        objects.insert(0, kosmos.controlpanel_secret(params["namespace"], {}, b""))
        # Namespaced objects first, the RBAC next, the namespace last.
        for obj in sorted(objects, key=_unjoin_order):
            meta = obj["metadata"]
            action, observed = api.remove(cluster, obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"),
                                          self.check)
            self.record(name, None, action, [], observed)

    # -- read back --------------------------------------------------------------------------------
    def readback(self, host):
        params = self.params
        clusters = api.list_kosmos(host, "Cluster") or []
        observed = {c["metadata"]["name"]: c for c in clusters}
        side = {}
        for member in params["members"] if params["state"] == "present" else []:
            cluster = self.clients[member["name"]]
            side[member["name"]] = api.member_side_presence(cluster, params["namespace"],
                                                            member["name"] == params["host"])
        members = params["members"] if params["state"] == "present" else []
        stale = kosmos.stale_clusters(clusters, [m["name"] for m in members], params["host"])
        return kosmos.readback(members, observed, api.list_kosmos(host, "ClusterNode"),
                               api.list_kosmos(host, "NodeConfig"), side, stale)


def _unjoin_order(obj):
    return {"Secret": 0, "ServiceAccount": 1, "ClusterRoleBinding": 2, "ClusterRole": 3, "Namespace": 4}[obj["kind"]]
