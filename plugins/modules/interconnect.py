#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: interconnect
short_description: Join network groups to the Istio interconnect list, remove them, or update gateway addresses
version_added: 0.1.0
description:
  - Network groups are sets of clusters whose Pods reach each other by IP; each group is one Istio network.
    Groups on the interconnect list reach each other through east-west gateways on port 15443.
  - With O(state=present), every cluster of every joined group gets a remote secret for every cluster of the other
    joined groups, shaped as C(istioctl create-remote-secret) makes it (C(istio-remote-secret-<cluster>), label
    C(istio/multiCluster=true), annotation C(networking.istio.io/cluster), a kubeconfig whose server is the peer's
    exposed API server URL, with C(tls-server-name) and the token of the peer's C(istio-reader-service-account)).
    The joined networks and their gateway addresses are planned for C(meshNetworks) and returned in RV(mesh_networks).
    The mesh ConfigMap belongs to the istiod Helm release, so the C(istio) role carries them into that release
    (C(global.meshNetworks)), as C(playbooks/istio_mesh_networks.yml) does after every join, remove and address
    update. This module never writes the ConfigMap.
  - With O(state=absent), exactly those objects are deleted on every side for the groups in O(groups).
  - With O(addresses_only=true), only gateway addresses of groups already joined change.
  - "The interconnect rules are enforced before any change, with every problem reported at once: a group without an
    east-west gateway cannot join; a joined group may change only its gateway addresses (adding or removing clusters
    or gateways needs a remove first); a joined group keeps at least one cluster; a joined group's name cannot
    change."
  - The joined groups are recorded in the ConfigMap C(istio-interconnect) of each joined cluster, so the rules are
    checked against the clusters themselves.
  - Changes are computed as desired against observed state, so check mode shows the real plan and a second run
    changes nothing. The diff masks tokens.
  - The diff shows the planned C(meshNetworks) as C(<cluster>/istiod values/global.meshNetworks).
  - istiod reads remote secrets and C(meshNetworks) without a restart; the affected istiod Deployments are reported in
    RV(control_planes) and restarted only with O(restart_control_plane=true).
author:
  - multicloud.interconnect maintainers (@multicloud)
extends_documentation_fragment:
  - multicloud.interconnect.attributes
  - multicloud.interconnect.cluster_access
options:
  clusters:
    description:
      - Every cluster of the mesh, keyed by cluster name.
      - "Keys of each entry: C(network_group) (required, the cluster's C(cluster_network_group));
        C(eastwest_gateway) (its C(cluster_eastwest_gateway); C(service_type), C(address) and C(node_port) are read);
        C(api_url), C(tls_server_name), C(ca_data) (how peers reach its API server: facts C(apiserver_nodeport_url),
        C(apiserver_tls_server_name), C(apiserver_ca_data)); C(kubeconfig) (a path or a mapping) and C(context)
        (how this module reaches it)."
      - The filter P(multicloud.interconnect.istio_interconnect_clusters#filter) builds this mapping from C(hostvars).
    type: dict
    required: true
  groups:
    description: The network groups to join (O(state=present)) or remove (O(state=absent)).
    type: list
    elements: str
    required: true
  state:
    description:
      - V(present) joins O(groups) (groups joined earlier stay joined) and brings addresses up to date.
      - V(absent) removes O(groups) from the interconnect list.
    type: str
    choices: [present, absent]
    default: present
  addresses_only:
    description:
      - Refuse anything but gateway address changes of groups already joined.
    type: bool
    default: false
  restart_control_plane:
    description:
      - Restart the affected istiod Deployments after the change (rolling restart through an annotation).
    type: bool
    default: false
  namespace:
    description: Namespace of the Istio control plane.
    type: str
    default: istio-system
  mesh_config_map:
    description: The mesh ConfigMap that holds C(meshNetworks); V(istio-<revision>) for a revisioned control plane.
    type: str
    default: istio
  gateway_service:
    description: Name of the east-west gateway Service in O(namespace).
    type: str
    default: istio-eastwestgateway
  wait_timeout:
    description: Seconds to wait for a reader token to be issued, or for a load balancer address.
    type: int
    default: 120
  planned_prerequisites:
    description:
      - In check mode, the run's earlier stages plan Istio, the reader account and the east-west gateways of joined
        clusters that lack them (as C(site.yml --check) does), so the join is planned on top of them; values known only
        once they apply (reader tokens, node ports, load balancer addresses) are shown as such, and RV(assumed) lists
        what was taken as planned. C(playbooks/istio_mesh.yml) sets the fact C(interconnect_prerequisites_planned)
        that C(playbooks/interconnect_join.yml) passes here.
      - Outside check mode it has no effect; missing prerequisites are refused.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
notes:
  - Reader tokens never appear in the result, the diff or the logs.
  - Clusters are reached with the kubernetes Python library.
requirements:
  - kubernetes >= 24.2.0
  - PyYAML
seealso:
  - module: multicloud.interconnect.interconnect_info
  - module: multicloud.interconnect.validate_topology
"""

EXAMPLES = r"""
- name: Join net-a and net-b
  multicloud.interconnect.interconnect:
    clusters: "{{ hostvars | multicloud.interconnect.istio_interconnect_clusters(groups['clusters']) }}"
    groups: [net-a, net-b]
  run_once: true

- name: Remove net-b and restart the istiod Deployments that read the change
  multicloud.interconnect.interconnect:
    clusters: "{{ hostvars | multicloud.interconnect.istio_interconnect_clusters(groups['clusters']) }}"
    groups: [net-b]
    state: absent
    restart_control_plane: true
  run_once: true
"""

RETURN = r"""
plan:
  description: The objects created, updated or deleted (in check mode, that would be).
  returned: always
  type: list
  elements: dict
  contains:
    cluster:
      description: Cluster the object lives in.
      type: str
    kind:
      description: V(Secret) or V(ConfigMap).
      type: str
    name:
      description: Object name.
      type: str
    action:
      description: V(create), V(update) or V(delete).
      type: str
    reason:
      description: Why.
      type: str
  sample:
    - {cluster: cluster01, kind: Secret, name: istio-remote-secret-cluster03, action: create,
       reason: peer cluster03 of group net-b}
joined_before:
  description: Groups the clusters recorded as joined before this run.
  returned: always
  type: list
  elements: str
joined_groups:
  description: Groups joined after this run.
  returned: always
  type: list
  elements: str
  sample: [net-a, net-b]
mesh_networks:
  description:
    - The C(meshNetworks.networks) each cluster with Istio must have after this run (entries of groups not joined
      dropped, foreign entries kept), keyed by cluster name. The C(istio) role takes one as C(istio_mesh_networks).
  returned: always
  type: dict
  sample: {cluster01: {net-a: {endpoints: [{fromRegistry: cluster01}], gateways: [{address: 172.30.1.11, port: 31443}]}}}
mesh_networks_changed:
  description: Clusters whose C(meshNetworks) differ from what their istiod release renders now.
  returned: always
  type: list
  elements: str
assumed:
  description: With O(planned_prerequisites) in check mode, what each cluster lacked and the plan took as planned.
  returned: always
  type: list
  elements: dict
  sample: [{cluster: cluster01, planned: "Istio (namespace istio-system, ConfigMap istio), east-west gateway Service istio-eastwestgateway"}]
gateways:
  description: Gateway addresses per joined group, as planned for C(meshNetworks).
  returned: always
  type: dict
  sample: {net-a: [{address: 172.30.1.11, port: 31443}]}
control_planes:
  description: istiod Deployments affected by the change, and whether they were restarted.
  returned: always
  type: list
  elements: dict
  contains:
    cluster:
      description: Cluster name.
      type: str
    namespace:
      description: Namespace of the Deployment.
      type: str
    deployment:
      description: Deployment name.
      type: str
    restarted:
      description: Whether this run restarted it.
      type: bool
problems:
  description: On refusal, every rule broken, each with a code, the clusters or group involved and the fix.
  returned: failure
  type: list
  elements: dict
"""

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.multicloud.interconnect.plugins.module_utils._istio import MESH_SPEC, HAS_YAML, InterconnectError, clusters_from_params
from ansible_collections.multicloud.interconnect.plugins.module_utils._istio_access import ClusterAccess
from ansible_collections.multicloud.interconnect.plugins.module_utils._istio_run import run
from ansible_collections.multicloud.interconnect.plugins.module_utils._k8s import ClusterError, cluster_module


def main() -> None:
    module = cluster_module(dict(
        MESH_SPEC,
        groups=dict(type="list", elements="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        addresses_only=dict(type="bool", default=False),
        restart_control_plane=dict(type="bool", default=False),
        wait_timeout=dict(type="int", default=120),
        planned_prerequisites=dict(type="bool", default=False),
    ))
    if not HAS_YAML:
        module.fail_json(msg=missing_required_lib("PyYAML"))
    options = dict(module.params)
    try:
        specs = clusters_from_params(module.params["clusters"])
        result = run(specs, module.params["groups"], options, module.check_mode,
                     lambda spec: ClusterAccess(spec, options))
    except InterconnectError as err:
        module.fail_json(msg=str(err), problems=[p.as_dict() for p in err.problems])
    except ClusterError as err:
        module.fail_json(msg=str(err), cluster=err.cluster)
    output = result.as_dict()
    diff = output.pop("diff")
    if module._diff:
        output["diff"] = diff
    module.exit_json(**output)


if __name__ == "__main__":
    main()
