#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: topology_status
short_description: Report the multi-cluster topology as the clusters show it, against the inventory
version_added: 0.1.0
description:
  - Reads every cluster of the inventory and compares what Cilium, Kosmos and Istio will load with what the
    inventory expects, per cluster and per network group.
  - "Per cluster: technique, ID, CIDRs, L3 peers expected, configured and missing (Cilium C(cilium-clustermesh) secret,
    Kosmos C(clusters.kosmos.io) objects), C(cilium-config) name and ID, the Cilium CA fingerprint, Istio remote
    secrets expected, present, missing and stale, east-west gateway addresses, and the drift found."
  - Returns the report as data, as lines for a terminal, and as an SVG picture (groups as boxes, clusters inside,
    links labelled with technique and status).
  - Reads only from the clusters; an unreachable cluster is reported, not fatal, so the report shows it.
author:
  - multicloud.interconnect maintainers (@multicloud)
extends_documentation_fragment:
  - multicloud.interconnect.attributes
  - multicloud.interconnect.cluster_access
options:
  clusters:
    description:
      - The clusters, as a mapping of inventory host name to that host's variables, as for
        M(multicloud.interconnect.validate_topology). C(cluster_kubeconfig) and C(cluster_context) say how to reach
        each one; C(K8S_AUTH_KUBECONFIG) and C(K8S_AUTH_CONTEXT) are the fallback.
    type: dict
    required: true
  interconnect_groups:
    description: Network groups on the interconnect list.
    type: list
    elements: str
    default: []
  istio_namespace:
    description: Namespace of istiod, the remote secrets and the east-west gateways.
    type: str
    default: istio-system
  cilium_namespace:
    description: Namespace of Cilium.
    type: str
    default: kube-system
  drawing_note:
    description: A sentence added to the picture's legend, for example what the environment cannot show.
    type: str
    default: ""
  timeout:
    description: Seconds to wait for each API request.
    type: int
    default: 10
  output_dir:
    description:
      - Directory to write the report to, as C(status.json) and C(topology.svg) (created when missing, files mode
        0644). A file is rewritten only when its content differs, which is then the module's only change.
      - Without it, nothing is written; the report is in the result either way.
    type: path
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Read the whole topology back from the clusters
  multicloud.interconnect.topology_status:
    clusters: "{{ hostvars | multicloud.interconnect.cluster_inventory(groups['clusters']) }}"
    interconnect_groups: "{{ interconnect_groups | default([]) }}"
  register: topology

- name: Show it
  ansible.builtin.debug:
    msg: "{{ topology.table }}"
"""

RETURN = r"""
status:
  description: The report as data, also written as JSON to O(output_dir).
  returned: always
  type: dict
  contains:
    clusters:
      description: Per cluster, keyed by name; C(l3) and C(remote_secrets) hold C(expected), C(configured), C(missing), C(stale).
      type: dict
    groups:
      description: Per network group, keyed by name.
      type: dict
    links:
      description: Links between clusters of a group and between joined groups, with technique and status.
      type: list
      elements: dict
    interconnect_groups:
      description: Joined groups that exist.
      type: list
      elements: str
    connected:
      description: >-
        What the meshes' components report (kvstoremesh for Cilium peers, istiod for remote
        clusters), read through the Pod proxy: true when every link is connected, false when one is
        not, null when a component could not be read (each link's C(reason) says why).
      type: bool
    healthy:
      description: No drift anywhere and no link that a component reports not connected.
      type: bool
healthy:
  description: No drift anywhere and no link that a component reports not connected.
  returned: always
  type: bool
table:
  description: The report as lines for a terminal.
  returned: always
  type: list
  elements: str
svg:
  description: The picture, an SVG document.
  returned: always
  type: str
written:
  description: Files of O(output_dir) written by this run (in check mode, those that would be).
  returned: always
  type: list
  elements: str
"""

import traceback


from ansible_collections.multicloud.interconnect.plugins.module_utils._k8s import cluster_module
from ansible_collections.multicloud.interconnect.plugins.module_utils._status import (
    build_status, render_svg, render_table, report_files, write_files)
from ansible_collections.multicloud.interconnect.plugins.module_utils._status_k8s import observe
from ansible_collections.multicloud.interconnect.plugins.module_utils._topology import topology_from_inventory


def main():
    # Entries are inventory host variables (the Topology reads them), so the keys are the contract's.
    module = cluster_module(dict(
        clusters=dict(type="dict", required=True),
        interconnect_groups=dict(type="list", elements="str", default=[]),
        istio_namespace=dict(type="str", default="istio-system"),
        cilium_namespace=dict(type="str", default="kube-system"),
        drawing_note=dict(type="str", default=""),
        timeout=dict(type="int", default=10),
        output_dir=dict(type="path"),
    ), kubeconfig_key="cluster_kubeconfig", context_key="cluster_context")
    topology = topology_from_inventory(module.params["clusters"], module.params["interconnect_groups"])
    try:
        observed = {cluster.name: observe(cluster, module.params) for cluster in topology.clusters.values()}
    except Exception as err:  # pragma: no cover - a bug, shown with its trace
        module.fail_json(msg="status failed: %s" % err, exception=traceback.format_exc())
    status = build_status(topology, observed)
    svg = render_svg(status, module.params["drawing_note"])
    written = []
    if module.params["output_dir"]:
        try:
            written = write_files(module.params["output_dir"], report_files(status, svg), module.check_mode)
        except OSError as err:
            module.fail_json(msg="cannot write the report to %s: %s" % (module.params["output_dir"], err))
    module.exit_json(changed=bool(written), status=status, healthy=status["healthy"], table=render_table(status),
                     svg=svg, written=written)


if __name__ == "__main__":
    main()
