#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: kosmos_link_info
short_description: Read back a Kosmos ClusterLink group and plan its pairwise checks
version_added: 0.1.0
description:
  - Reads the host's C(clusters.kosmos.io), C(clusternodes) and C(nodeconfigs), and the member-side objects of every
    member, and compares them with the members as the inventory describes them.
  - C(clusternodes) and C(nodeconfigs) are created by the Kosmos controllers, not by a join; when a joined cluster has
    none (the controllers have not run, as on a lab whose Pods are simulated) they are reported as not observed.
  - Lists the nodes of every member and returns every cross-cluster node pair, as C(kosmosctl check) probes them,
    and a cluster-by-cluster matrix of what the control plane can answer.
  - Changes nothing. Kubeconfigs are returned as a digest only.
author:
  - multicloud.interconnect maintainers (@multicloud)
extends_documentation_fragment:
  - multicloud.interconnect.attributes
  - multicloud.interconnect.cluster_access
options:
  group:
    description: The network group.
    type: str
    required: true
  host:
    description: Name of the host cluster.
    type: str
    required: true
  members:
    description: The clusters of the group, as for M(multicloud.interconnect.kosmos_link).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Cluster name.
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
        description: API server URL the Kosmos components use; not read here.
        type: str
      root:
        description: Whether this is the host cluster.
        type: bool
        default: false
      cluster_link_options:
        description: The expected C(spec.clusterLinkOptions).
        type: dict
        required: true
  namespace:
    description: Kosmos namespace in every cluster.
    type: str
    default: kosmos-system
  probe_pods:
    description:
      - Label selector of the probe Pods (one per node, in O(namespace)) whose IPs are the Pod-network targets.
    type: str
    default: app=clusterlink-floater
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
"""

EXAMPLES = r"""
- name: Read back net-b
  vars:
    plan: "{{ hostvars | multicloud.interconnect.kosmos_plan(groups['clusters']) }}"
  multicloud.interconnect.kosmos_link_info:
    group: net-b
    host: "{{ plan.groups['net-b'].host }}"
    members: "{{ plan.groups['net-b'].members }}"
  register: net_b
"""

RETURN = r"""
readback:
  description: Per member, as returned by M(multicloud.interconnect.kosmos_link) in its C(readback).
  returned: always
  type: dict
report:
  description: The read-back as lines for a terminal.
  returned: always
  type: list
  elements: str
nodes:
  description: Per member, its nodes with their InternalIP and the IP of the probe Pod on them, if any.
  returned: always
  type: dict
  sample: {cluster03: [{name: cluster03-worker, ip: 172.30.3.11, pod_ip: null}]}
pairs:
  description: Every ordered cross-cluster node pair, with its host-network and Pod-network target.
  returned: always
  type: list
  elements: dict
control_plane:
  description: Cluster-by-cluster matrix of the control-plane checks (both joined, same mode, nodes known).
  returned: always
  type: dict
  sample: {cluster03: {cluster03: "-", cluster04: ok}}
"""


from ansible_collections.multicloud.interconnect.plugins.module_utils import _kosmos as kosmos
from ansible_collections.multicloud.interconnect.plugins.module_utils import _kosmos_k8s as api
from ansible_collections.multicloud.interconnect.plugins.module_utils._k8s import ClusterError, cluster_module


def _internal_ip(node):
    for address in (node.get("status") or {}).get("addresses") or []:
        if address.get("type") == "InternalIP":
            return address.get("address")
    return None


def observe_nodes(cluster, namespace, selector):
    pods = {}
    for pod in cluster.list("v1", "Pod", label_selector=selector) if selector else []:
        if (pod.get("metadata") or {}).get("namespace") == namespace and (pod.get("status") or {}).get("podIP"):
            pods[(pod.get("spec") or {}).get("nodeName")] = pod["status"]["podIP"]
    return [{"name": n["metadata"]["name"], "ip": _internal_ip(n), "pod_ip": pods.get(n["metadata"]["name"])}
            for n in sorted(cluster.list("v1", "Node"), key=lambda n: n["metadata"]["name"])
            if kosmos.EXCLUDE_LABEL not in ((n.get("metadata") or {}).get("labels") or {})]


def main() -> None:
    module = cluster_module(dict(kosmos.GROUP_SPEC, probe_pods=dict(type="str", default="app=clusterlink-floater")),
                            entries=("members",))
    params = module.params
    members = params["members"]
    by_name = {m["name"]: m for m in members}
    if params["host"] not in by_name:
        module.fail_json(msg="host %s is not among the members (%s)" % (params["host"], ", ".join(by_name)))
    network_type = by_name[params["host"]]["cluster_link_options"].get("networkType")
    try:
        clients = {m["name"]: api.Cluster(m["name"], m.get("kubeconfig"), m.get("context")) for m in members}
        host = clients[params["host"]]
        clusters = api.list_kosmos(host, "Cluster")
        if clusters is None:
            module.fail_json(msg="cluster %s: the clusters.kosmos.io CRD is missing; Kosmos is not installed there"
                             % host.name)
        side = {name: api.member_side_presence(c, params["namespace"], name == params["host"])
                for name, c in clients.items()}
        stale = kosmos.stale_clusters(clusters, list(by_name), params["host"])
        result = kosmos.readback(members, {c["metadata"]["name"]: c for c in clusters},
                                 api.list_kosmos(host, "ClusterNode"), api.list_kosmos(host, "NodeConfig"), side, stale)
        nodes = {name: observe_nodes(c, params["namespace"], params["probe_pods"]) for name, c in clients.items()}
    except ClusterError as err:
        module.fail_json(msg=str(err))
    module.exit_json(
        changed=False,
        readback=result,
        report=kosmos.render_readback(params["group"], network_type, params["host"], result),
        nodes=nodes,
        pairs=kosmos.diagnosis_pairs({name: {"nodes": n} for name, n in nodes.items()}),
        control_plane=kosmos.control_plane_checks(params["group"], network_type, result,
                                                  {name: len(n) for name, n in nodes.items()}),
    )


if __name__ == "__main__":
    main()
