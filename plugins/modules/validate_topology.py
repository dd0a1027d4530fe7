#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: validate_topology
short_description: Validate cluster names, IDs, CIDRs, network groups and the interconnect list
version_added: 0.1.0
description:
  - Checks the whole multi-cluster topology described by the inventory before anything touches a cluster.
  - Reports every problem in one run, each with a stable code, the clusters and the field involved, and the fix.
  - "Rules: cluster names are DNS-1123 labels of at most 32 characters, unique, not V(default); cluster IDs are
    unique integers in 1..255 (1..511 when O(clusters) set C(mesh_max_connected_clusters=511), one value for the
    whole mesh); CIDRs parse, have no host bits set and do not overlap inside a cluster; inside one network group
    Pod and Service CIDRs do not overlap across clusters, unless Kosmos global CIDRs map them; every cluster is in
    exactly one group with one L3 technique per group; a group on the interconnect list has an east-west gateway."
  - Overlap across network groups is allowed and reported as information.
  - Reads nothing but its arguments; talks to no cluster.
author:
  - multicloud.interconnect maintainers (@multicloud)
extends_documentation_fragment:
  - multicloud.interconnect.attributes
options:
  clusters:
    description:
      - The clusters, as a mapping of inventory host name to that host's variables.
      - "Variables read: C(cluster_name), C(cluster_id), C(cluster_pod_cidrs), C(cluster_service_cidrs),
        C(cluster_node_cidrs), C(cluster_network_group), C(cluster_cni), C(cluster_eastwest_gateway),
        C(cluster_global_cidrs), C(cluster_ipam_mode), C(cluster_cni_chaining_mode), C(mesh_max_connected_clusters)."
      - The filter P(multicloud.interconnect.cluster_inventory#filter) builds this mapping from C(hostvars).
    type: dict
    required: true
  interconnect_groups:
    description:
      - Network groups on the interconnect list (joined through Istio east-west gateways).
    type: list
    elements: raw
    default: []
  mesh_clusters:
    description:
      - Inventory host names of every cluster of the mesh (the inventory variable C(mesh_clusters)); empty to skip.
      - When set, a run whose C(clusters) lack any of them is refused (C(MESH_CLUSTERS_MISSING)), as is a cluster
        the list leaves out (C(MESH_CLUSTERS_UNLISTED)). An AWX job slice sees only part of the inventory and would
        otherwise plan a smaller mesh.
    type: list
    elements: raw
    default: []
  fail_on_error:
    description:
      - Fail when the topology has errors. Set to V(false) to inspect RV(errors) and fail later.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
notes:
  - The module never changes anything, so it reports RV(ignore:changed=false) in every mode.
seealso:
  - module: multicloud.interconnect.interconnect
"""

EXAMPLES = r"""
- name: Validate the topology of every cluster in the inventory
  multicloud.interconnect.validate_topology:
    clusters: "{{ hostvars | multicloud.interconnect.cluster_inventory(groups['clusters']) }}"
    interconnect_groups: "{{ interconnect_groups | default([]) }}"

- name: Collect the report without failing, to print it first
  multicloud.interconnect.validate_topology:
    clusters: "{{ hostvars | multicloud.interconnect.cluster_inventory(groups['clusters']) }}"
    interconnect_groups: [net-a, net-b]
    fail_on_error: false
  register: topology
"""

RETURN = r"""
ok:
  description: Whether the topology has no error.
  returned: always
  type: bool
  sample: false
errors:
  description: Problems that block any change.
  returned: always
  type: list
  elements: dict
  contains:
    code:
      description: Stable code of the rule, for example C(CIDR_OVERLAP_IN_GROUP).
      type: str
    severity:
      description: V(error), V(warning) or V(info).
      type: str
    field:
      description: The inventory variable involved.
      type: str
    clusters:
      description: The clusters involved.
      type: list
      elements: str
    group:
      description: The network group involved, if any.
      type: str
    message:
      description: What is wrong.
      type: str
    fix:
      description: How to fix it.
      type: str
  sample:
    - code: ID_DUPLICATE
      severity: error
      field: cluster_id
      clusters: [cluster01, cluster02]
      group: null
      message: cluster_id 1 is used by cluster01, cluster02.
      fix: give each cluster its own ID; the first free ones are 3
findings:
  description: All findings by severity, each entry shaped like those in RV(errors).
  returned: always
  type: dict
  contains:
    errors:
      description: The same list as RV(errors).
      type: list
      elements: dict
    warnings:
      description: Problems that do not block changes, such as cluster IDs that break with ENI IPAM.
      type: list
      elements: dict
    infos:
      description: Facts worth knowing, such as CIDRs shared across network groups.
      type: list
      elements: dict
clusters:
  description: Per-cluster summary keyed by cluster name.
  returned: always
  type: dict
  sample:
    cluster01:
      inventory_name: cluster01
      cluster_id: 1
      network_group: net-a
      cni: cilium
      pod_cidrs: [10.244.0.0/16]
      service_cidrs: [10.96.0.0/16]
      eastwest_gateway: true
      errors: 0
groups:
  description: Network groups keyed by name with their clusters, technique, gateways and interconnect state.
  returned: always
  type: dict
message:
  description: One paragraph for a person; on errors, every error with its fix.
  returned: always
  type: str
  sample: "Topology is valid: 4 clusters, 2 network groups, 0 warnings."
report:
  description: The report as lines for a terminal, problems first and a table of clusters after.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.multicloud.interconnect.plugins.module_utils._topology import validate_inventory


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            clusters=dict(type="dict", required=True),
            interconnect_groups=dict(type="list", elements="raw", default=[]),
            mesh_clusters=dict(type="list", elements="raw", default=[]),
            fail_on_error=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    report = validate_inventory(module.params["clusters"], module.params["interconnect_groups"],
                                module.params["mesh_clusters"])
    result = dict(changed=False, report=report.render(), message=report.failure_message() if not report.ok
                  else report.success_message(), **report.as_dict())
    for warning in report.warnings:
        module.warn("%s [%s]: %s Fix: %s" % (warning.code, ", ".join(warning.clusters), warning.message, warning.fix))
    if not report.ok and module.params["fail_on_error"]:
        module.fail_json(msg=report.failure_message(), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
