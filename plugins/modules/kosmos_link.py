#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: kosmos_link
short_description: Join clusters to a Kosmos host with ClusterLink, and unjoin the ones that left
version_added: 0.1.0
description:
  - Does what C(kosmosctl join cluster --enable-link) and C(kosmosctl unjoin cluster) do, for a whole network group
    at once, computed as desired-versus-observed so check mode shows the real plan and a second run changes nothing.
  - "In every member (the host included): namespace O(namespace), service accounts C(kosmos-control) and
    C(clusterlink-operator), ClusterRole and ClusterRoleBinding C(kosmos), secret C(controlpanel-config) holding a
    kubeconfig for the host, and a C(kosmos-control-token) service-account token secret."
  - "On the host: one C(clusters.kosmos.io) object per member whose C(spec.kubeconfig) is built from the member's
    C(kosmos-control) token (never from the inventory credentials), with C(spec.clusterLinkOptions) as given; the host's
    own object carries the annotation C(kosmos.io/cluster-role=root)."
  - Cluster objects this module created on the host for clusters no longer in O(members) are deleted (waiting for the
    Kosmos operator's finalizer), then their member-side objects are deleted when O(known_clusters) says how to reach
    them. Only objects labelled C(app.kubernetes.io/managed-by=multicloud.interconnect) are ever deleted.
  - Kosmos itself (CRDs, operator, network manager) must already be installed on the host; the role
    P(multicloud.interconnect.kosmos#role) does both.
author:
  - multicloud.interconnect maintainers (@multicloud)
extends_documentation_fragment:
  - multicloud.interconnect.attributes
  - multicloud.interconnect.cluster_access
options:
  group:
    description: The network group; written as a label on every object.
    type: str
    required: true
  host:
    description: Name of the host cluster; it must be one of O(members) when O(state=present).
    type: str
    required: true
  members:
    description:
      - The clusters of the group, the host included, as the filter P(multicloud.interconnect.kosmos_plan#filter) lists
        them under C(groups.<group>.members).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Cluster name; the name of its C(clusters.kosmos.io) object.
        type: str
        required: true
      inventory_name:
        description: Inventory host name, for messages.
        type: str
      kubeconfig:
        description: Path to, or content of, a kubeconfig that reaches the cluster from the controller.
        type: raw
      context:
        description: Context of O(members[].kubeconfig).
        type: str
      api_server:
        description:
          - API server URL the Kosmos components reach this cluster at, when it differs from the one in
            O(members[].kubeconfig).
        type: str
      root:
        description: Whether this is the host cluster.
        type: bool
        default: false
      cluster_link_options:
        description: The C(spec.clusterLinkOptions) of the cluster's C(clusters.kosmos.io) object.
        type: dict
        required: true
  known_clusters:
    description:
      - "How to reach every cluster of the inventory, as C({name: {kubeconfig, context}}), so clusters that left the
        group can be unjoined on their side too."
    type: dict
    default: {}
  namespace:
    description: Kosmos namespace in every cluster.
    type: str
    default: kosmos-system
  image_repository:
    description: Image repository written into the Cluster objects (C(spec.imageRepository)).
    type: str
    default: ghcr.io/kosmos-io
  state:
    description:
      - V(present) joins O(members) and unjoins the clusters that left; V(absent) unjoins every member this host
        joined.
    type: str
    choices: [present, absent]
    default: present
  wait_timeout:
    description: Seconds to wait for a token to be issued or a Cluster object's finalizer to be released.
    type: int
    default: 120
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: Kubeconfigs and secret data are replaced by a short digest.
  idempotent:
    support: full
notes:
  - In check mode a member whose token secret does not exist yet is reported as needing its Cluster object written,
    since its kubeconfig can only be built once the token is issued.
seealso:
  - module: multicloud.interconnect.kosmos_link_info
"""

EXAMPLES = r"""
- name: Join every cluster of net-b to its Kosmos host
  vars:
    plan: "{{ hostvars | multicloud.interconnect.kosmos_plan(groups['clusters']) }}"
  multicloud.interconnect.kosmos_link:
    group: net-b
    host: "{{ plan.groups['net-b'].host }}"
    members: "{{ plan.groups['net-b'].members }}"
    known_clusters: "{{ plan.known_clusters }}"
"""

RETURN = r"""
actions:
  description: Every object created, updated or deleted (or that would be, in check mode).
  returned: always
  type: list
  elements: dict
  contains:
    cluster:
      description: The cluster whose API holds the object.
      type: str
    kind:
      description: Object kind.
      type: str
    name:
      description: Object name (namespace/name when namespaced).
      type: str
    action:
      description: V(create), V(update) or V(delete).
      type: str
    fields:
      description: The fields that differ.
      type: list
      elements: str
  sample:
    - {cluster: cluster03, kind: Cluster, name: cluster04, action: update, fields: [spec.clusterLinkOptions.networkType]}
unjoined:
  description: Clusters unjoined in this run.
  returned: always
  type: list
  elements: str
warnings_list:
  description: Things left behind that a person must finish, such as member-side objects of a cluster not in the inventory.
  returned: always
  type: list
  elements: str
readback:
  description:
    - Per member, what the host holds after the run, from the API (C(joined), C(network_type), C(ip_family), C(cni),
      C(global_cidrs), C(matches_inventory), C(mismatches), C(member_side), C(cluster_nodes), C(gateway_nodes),
      C(node_configs)). Controller-created objects that are absent are reported as not observed.
  returned: always
  type: dict
report:
  description: The read-back as lines for a terminal.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.multicloud.interconnect.plugins.module_utils import _kosmos as kosmos
from ansible_collections.multicloud.interconnect.plugins.module_utils import _kosmos_k8s as api
from ansible_collections.multicloud.interconnect.plugins.module_utils._k8s import (
    ACCESS_ARGS,
    HAS_KUBERNETES,
    KUBERNETES_IMPORT_ERROR,
    ClusterError,
    with_access_defaults,
)

API_VERSION = "%s/%s" % (kosmos.GROUP, kosmos.VERSION)

MEMBER_SPEC = dict(
    name=dict(type="str", required=True),
    inventory_name=dict(type="str"),
    kubeconfig=dict(type="raw"),
    context=dict(type="str"),
    api_server=dict(type="str"),
    root=dict(type="bool", default=False),
    cluster_link_options=dict(type="dict", required=True),
)


class Run:
    """One run: the clients, and everything done or planned, for the result."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.check = module.check_mode
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
            self.module.fail_json(msg="host %s is not among the members (%s); nothing was changed"
                                  % (params["host"], ", ".join(names)))
        labels = kosmos.managed_labels(params["group"], params["host"])
        host_member = next(m for m in members if m["name"] == params["host"])
        host = self.client(host_member["name"], host_member.get("kubeconfig"), host_member.get("context"))
        self.crd_missing = not host.has_kind(API_VERSION, "Cluster")
        if self.crd_missing and not self.check:
            self.module.fail_json(msg="cluster %s: the clusters.kosmos.io CRD is missing; install Kosmos on the host "
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


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            ACCESS_ARGS,
            group=dict(type="str", required=True),
            host=dict(type="str", required=True),
            members=dict(type="list", elements="dict", required=True, options=MEMBER_SPEC),
            known_clusters=dict(type="dict", default={}),
            namespace=dict(type="str", default=kosmos.DEFAULT_NAMESPACE),
            image_repository=dict(type="str", default=kosmos.DEFAULT_IMAGE_REPOSITORY),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            wait_timeout=dict(type="int", default=120),
        ),
        supports_check_mode=True,
    )
    # The module's kubeconfig/context (often from module_defaults) fill what an entry leaves out.
    module.params["members"] = with_access_defaults(module.params["members"], module.params)
    module.params["known_clusters"] = with_access_defaults(module.params["known_clusters"], module.params)
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=str(KUBERNETES_IMPORT_ERROR))
    run = Run(module)
    params = run.params
    params["members_by_name"] = {m["name"]: m for m in params["members"]}
    try:
        if params["state"] == "present":
            host = run.join()
        else:
            host_member = params["members_by_name"].get(params["host"]) or params["known_clusters"].get(params["host"])
            if host_member is None:
                module.fail_json(msg="host %s: no kubeconfig given in members or known_clusters" % params["host"])
            host = run.client(params["host"], host_member.get("kubeconfig"), host_member.get("context"))
            if host.has_kind(API_VERSION, "Cluster"):
                run.prune(host, [])
        if host.has_kind(API_VERSION, "Cluster"):
            result = run.readback(host)
        else:  # check mode before the first install, or after an uninstall
            result = kosmos.readback(params["members"] if params["state"] == "present" else [], {}, None, None)
    except (ClusterError, kosmos.KosmosError) as err:
        module.fail_json(msg=str(err), actions=run.actions)
    network_type = next((m["cluster_link_options"].get("networkType") for m in params["members"]), "-")
    for warning in run.warnings:
        module.warn(warning)
    module.exit_json(
        changed=bool(run.actions),
        actions=run.actions,
        unjoined=run.unjoined,
        warnings_list=run.warnings,
        readback=result,
        report=kosmos.render_readback(params["group"], network_type, params["host"], result),
        diff=run.diffs,
    )


if __name__ == "__main__":
    main()
