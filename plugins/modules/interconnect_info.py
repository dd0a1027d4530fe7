#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: interconnect_info
short_description: Report network groups, the interconnect list, gateway addresses and remote secret drift
version_added: 0.1.0
description:
  - Reads every cluster and reports the network groups, the groups the clusters record as joined, the east-west
    gateways and their addresses per group, and for each cluster the remote secrets present, missing, stale
    (content differs from what the peer's exposed API and reader token give) or unexpected (left by a removed peer).
  - RV(drift) lists what M(multicloud.interconnect.interconnect) would change to bring the joined groups back in line;
    it is empty when the clusters match their record.
  - Changes nothing.
author:
  - multicloud.interconnect maintainers (@multicloud)
extends_documentation_fragment:
  - multicloud.interconnect.attributes
  - multicloud.interconnect.cluster_access
options:
  clusters:
    description:
      - Every cluster of the mesh, keyed by cluster name, as for M(multicloud.interconnect.interconnect).
      - The filter P(multicloud.interconnect.istio_interconnect_clusters#filter) builds this mapping from C(hostvars).
    type: dict
    required: true
  namespace:
    description: Namespace of the Istio control plane.
    type: str
    default: istio-system
  mesh_config_map:
    description: The mesh ConfigMap that holds C(meshNetworks).
    type: str
    default: istio
  gateway_service:
    description: Name of the east-west gateway Service.
    type: str
    default: istio-eastwestgateway
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
requirements:
  - kubernetes >= 24.2.0
  - PyYAML
seealso:
  - module: multicloud.interconnect.interconnect
"""

EXAMPLES = r"""
- name: Report the interconnect and its drift
  multicloud.interconnect.interconnect_info:
    clusters: "{{ hostvars | multicloud.interconnect.istio_interconnect_clusters(groups['clusters']) }}"
  run_once: true
  register: interconnect
"""

RETURN = r"""
groups:
  description: Network groups with their clusters, gateway clusters, gateway addresses and whether they are joined.
  returned: always
  type: dict
  sample:
    net-a: {clusters: [cluster01, cluster02], gateway_clusters: [cluster01, cluster02], joined: true,
            gateways: [{address: 172.30.1.11, port: 31443}]}
joined_groups:
  description: Groups the clusters record as joined.
  returned: always
  type: list
  elements: str
recorded:
  description: The joined groups as recorded, with the clusters and gateway clusters they had when joined.
  returned: always
  type: dict
clusters:
  description: >-
    Per cluster, its group, whether Istio is installed, its remote secrets, and C(connection): which remote
    clusters istiod reports synced (read from its metrics port through the Pod proxy; C(unknown) with the
    reason when istiod cannot be read, never connected).
  returned: always
  type: dict
  sample:
    cluster01:
      group: net-a
      istio: true
      remote_secrets: [istio-remote-secret-cluster03]
      missing: [istio-remote-secret-cluster04]
      stale: []
      unexpected: []
      unmanaged: []
      mesh_networks: [net-a, net-b]
      control_planes: [istiod]
      connection: {component: istiod, state: connected, connected: [cluster03, cluster04], not_connected: []}
drift:
  description: The changes that would bring the joined groups back in line (cluster, kind, name, action, reason).
  returned: always
  type: list
  elements: dict
in_sync:
  description: Whether RV(drift) is empty.
  returned: always
  type: bool
pending_addresses:
  description: Gateways whose address is not known yet, with the reason.
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.multicloud.interconnect.plugins.module_utils._istio import MESH_SPEC, HAS_YAML, InterconnectError, clusters_from_params
from ansible_collections.multicloud.interconnect.plugins.module_utils._istio_access import ClusterAccess, observe_all
from ansible_collections.multicloud.interconnect.plugins.module_utils._istio_report import info
from ansible_collections.multicloud.interconnect.plugins.module_utils._k8s import ClusterError, cluster_module
from ansible_collections.multicloud.interconnect.plugins.module_utils._runtime import verdict
from ansible_collections.multicloud.interconnect.plugins.module_utils._runtime_k8s import istiod_report

SECRET_PREFIX = "istio-remote-secret-"


def connection(access, entry, namespace):
    """istiod's verdict on the remote clusters this cluster should have (its remote secrets as planned)."""
    planned = [s for s in (entry.get("remote_secrets") or []) + (entry.get("missing") or [])
               if s not in (entry.get("stale") or [])]
    expected = [s[len(SECRET_PREFIX):] for s in planned if s.startswith(SECRET_PREFIX)]
    reported, reason = istiod_report(access.api, namespace) if entry.get("istio") else (None, "Istio is not installed")
    return verdict("istiod", expected, reported, reason, good="synced")


def main() -> None:
    module = cluster_module(MESH_SPEC)
    if not HAS_YAML:
        module.fail_json(msg=missing_required_lib("PyYAML"))
    options = dict(module.params)
    try:
        specs = clusters_from_params(module.params["clusters"])
        access = {name: ClusterAccess(spec, options) for name, spec in specs.items()}
        observed = observe_all(access)
        report = info(specs, observed, options)
        for name, entry in report["clusters"].items():
            if name in access:
                entry["connection"] = connection(access[name], entry, module.params["namespace"])
    except InterconnectError as err:
        module.fail_json(msg=str(err), problems=[p.as_dict() for p in err.problems])
    except ClusterError as err:
        module.fail_json(msg=str(err), cluster=err.cluster)
    module.exit_json(changed=False, **report)


if __name__ == "__main__":
    main()
