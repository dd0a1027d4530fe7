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


from ansible_collections.multicloud.interconnect.plugins.module_utils import _kosmos as kosmos
from ansible_collections.multicloud.interconnect.plugins.module_utils._kosmos_link import API_VERSION, LinkRun
from ansible_collections.multicloud.interconnect.plugins.module_utils._k8s import ClusterError, cluster_module


def main() -> None:
    module = cluster_module(dict(
        kosmos.GROUP_SPEC,
        known_clusters=dict(type="dict", default={}),
        image_repository=dict(type="str", default=kosmos.DEFAULT_IMAGE_REPOSITORY),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        wait_timeout=dict(type="int", default=120),
    ), entries=("members", "known_clusters"))
    params = module.params
    params["members_by_name"] = {m["name"]: m for m in params["members"]}
    run = LinkRun(params, module.check_mode)
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
