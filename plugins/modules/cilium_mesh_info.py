#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cilium_mesh_info
short_description: Read back what Cilium ClusterMesh runs in every cluster and compare it with the plan
version_added: 0.2.0
description:
  - For each cluster, reads the ConfigMap C(cilium-config) (C(cluster-name), C(cluster-id)), the keys of the
    Secret C(cilium-clustermesh) (the peers the Cilium agents load), the certificate of the Secret C(cilium-ca) and
    the trust bundle C(cilium-root-ca.crt) when the chart writes one (during a CA rotation).
  - Reports per cluster the configured peers, the missing and unexpected ones against the plan, and whether every
    other cluster of its network group trusts the CA that issues its certificates and issues from a CA it trusts
    (one shared CA; during a rotation, the old and the new one).
  - Never reads or returns private keys; the CA is reported by a SHA-256 fingerprint.
  - Reports per cluster which peers kvstoremesh (in the C(clustermesh-apiserver) Pod) says are ready, read from
    its metrics port through the Pod proxy subresource (RBAC C(pods/proxy) get); a kvstoremesh that cannot be
    read is reported as C(unknown) with the reason, never as connected.
author:
  - multicloud.interconnect maintainers (@multicloud)
extends_documentation_fragment:
  - multicloud.interconnect.attributes
  - multicloud.interconnect.cluster_access
options:
  clusters:
    description:
      - The mesh, keyed by inventory host name.
      - "Each value: C(name) (the Cilium cluster name), C(id), C(group) (network group), C(peers) (the cluster names
        it must list), and C(kubeconfig) / C(context) to reach it (C(K8S_AUTH_KUBECONFIG) and C(K8S_AUTH_CONTEXT) are
        honoured when unset)."
    type: dict
    required: true
  namespace:
    description:
      - Namespace of the Cilium release.
    type: str
    default: kube-system
  fail_on_mismatch:
    description:
      - Fail when a cluster has the wrong name or ID, misses or has extra peers, or runs another CA than its group.
    type: bool
    default: true
  wait_connected:
    description:
      - Seconds to wait until kvstoremesh of every cluster reports each of its peers ready (0 reads once).
    type: int
    default: 0
  fail_on_not_connected:
    description:
      - Fail when, after O(wait_connected), a kvstoremesh reports a peer not ready or cannot be read.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
notes:
  - Reads only; reports RV(ignore:changed=false) in every mode.
seealso:
  - module: multicloud.interconnect.validate_topology
"""

EXAMPLES = r"""
- name: Compare the running mesh with the inventory
  multicloud.interconnect.cilium_mesh_info:
    clusters:
      cluster01: {name: cluster01, id: 1, group: net-a, peers: [cluster02], kubeconfig: ~/.kube/cluster01.yaml}
      cluster02: {name: cluster02, id: 2, group: net-a, peers: [cluster01], kubeconfig: ~/.kube/cluster02.yaml}
  register: mesh
"""

RETURN = r"""
ok:
  description: Whether every cluster matches the plan.
  returned: always
  type: bool
clusters:
  description: Per cluster (inventory host name) what it runs and how it compares.
  returned: always
  type: dict
  contains:
    cluster_name:
      description: C(cluster-name) of C(cilium-config), or null when Cilium is not installed.
      type: str
    cluster_id:
      description: C(cluster-id) of C(cilium-config).
      type: str
    identity_ok:
      description: Name and ID equal the inventory's.
      type: bool
    configured_peers:
      description: Peers in the Secret C(cilium-clustermesh).
      type: list
      elements: str
    missing_peers:
      description: Peers of the plan the cluster does not list.
      type: list
      elements: str
    unexpected_peers:
      description: Peers the cluster lists that the plan does not have.
      type: list
      elements: str
    ca_fingerprint:
      description: SHA-256 fingerprint of the C(cilium-ca) certificate (its first, for a chain).
      type: str
    ca_trust:
      description: Fingerprints of the CA certificates the cluster trusts (its trust bundle, else C(cilium-ca)'s).
      type: list
      elements: str
    ca_match:
      description: The cluster and every other cluster of its network group trust each other's issuing CA.
      type: bool
    ok:
      description: All of the above hold.
      type: bool
    connection:
      description: >-
        What kvstoremesh reports: C(state) (connected, not connected, unknown), C(connected) and
        C(not_connected) peers, C(unexpected) remote clusters, C(reason).
      type: dict
  sample:
    cluster01:
      cluster_name: cluster01
      cluster_id: "1"
      identity_ok: true
      configured_peers: [cluster02]
      missing_peers: []
      unexpected_peers: []
      ca_fingerprint: "3F:1A:09:C2:77:54:AB:10:6E:0D:91:42:5C:8B:27:E3:19:A0:44:7F:D2:38:C5:60:9B:11:E4:72:08:AD:5F:36"
      ca_trust: ["3F:1A:09:C2:77:54:AB:10:6E:0D:91:42:5C:8B:27:E3:19:A0:44:7F:D2:38:C5:60:9B:11:E4:72:08:AD:5F:36"]
      ca_match: true
      ok: true
connected:
  description: Every cluster's kvstoremesh reports every peer ready (null when one could not be read).
  returned: always
  type: bool
report:
  description: The comparison as lines for a terminal.
  returned: always
  type: list
  elements: str
"""

import time
import typing as t

from ansible_collections.multicloud.interconnect.plugins.module_utils._cilium import (
    mesh_report,
    clustermesh_secret_peers,
    render_report,
)
from ansible_collections.multicloud.interconnect.plugins.module_utils._k8s import ClusterError, cluster_module, describe_api_exception
from ansible_collections.multicloud.interconnect.plugins.module_utils._kube_api import ApiError, connect, namespaced_path
from ansible_collections.multicloud.interconnect.plugins.module_utils._ca_rotation import TRUST_BUNDLE
from ansible_collections.multicloud.interconnect.plugins.module_utils._pem import bundle_fingerprints, pem_fingerprint
from ansible_collections.multicloud.interconnect.plugins.module_utils._runtime import CONNECTED, NOT_CONNECTED, UNKNOWN, verdict
from ansible_collections.multicloud.interconnect.plugins.module_utils._runtime_k8s import kvstoremesh_report


def observe(cluster: str, spec: t.Mapping[str, t.Any], namespace: str) -> t.Dict[str, t.Any]:
    """What one cluster runs; secrets are read for their keys and the CA certificate only."""
    api = connect(cluster, spec.get("kubeconfig"), spec.get("context"))

    def read(plural: str, name: str) -> t.Dict[str, t.Any]:
        try:
            found = api.get(name, namespaced_path(namespace, plural, name))
        except ApiError as err:
            raise ClusterError(cluster, describe_api_exception(err), err.status) from err
        return dict((found or {}).get("data") or {})

    config, mesh = read("configmaps", "cilium-config"), read("secrets", "cilium-clustermesh")
    ca_cert = read("secrets", "cilium-ca").get("ca.crt")
    bundle = read("configmaps", TRUST_BUNDLE)
    return {
        "config": config,
        "peers": clustermesh_secret_peers(mesh or None, spec.get("name") or cluster),
        "ca_fingerprint": pem_fingerprint(ca_cert),
        "ca_trust": bundle_fingerprints(bundle.get("ca.crt")) or bundle_fingerprints(ca_cert),
    }


def connections(clusters: t.Mapping[str, t.Any], namespace: str, wait: int) -> t.Dict[str, t.Dict[str, t.Any]]:
    """kvstoremesh's verdict per cluster; re-read those not connected until ``wait`` seconds passed."""
    deadline = time.monotonic() + wait
    result: t.Dict[str, t.Dict[str, t.Any]] = {}
    while True:
        for name, spec in sorted(clusters.items()):
            if result.get(name, {}).get("state") == CONNECTED:
                continue
            try:
                reported, reason = kvstoremesh_report(connect(name, spec.get("kubeconfig"), spec.get("context"), timeout=10),
                                                      namespace)
            except ClusterError as err:
                reported, reason = None, str(err)
            result[name] = verdict("kvstoremesh", spec.get("peers") or [], reported, reason)
        if all(v["state"] == CONNECTED for v in result.values()) or time.monotonic() >= deadline:
            return result
        time.sleep(2)


def main() -> None:
    module = cluster_module(dict(
        clusters=dict(type="dict", required=True),
        namespace=dict(type="str", default="kube-system"),
        fail_on_mismatch=dict(type="bool", default=True),
        wait_connected=dict(type="int", default=0),
        fail_on_not_connected=dict(type="bool", default=False),
    ))
    clusters = module.params["clusters"]
    try:
        observed = {name: observe(name, spec or {}, module.params["namespace"]) for name, spec in clusters.items()}
    except ClusterError as err:
        module.fail_json(msg=str(err))
    expected = {name: {"name": spec.get("name") or name, "id": spec.get("id"), "group": spec.get("group"),
                       "peers": list(spec.get("peers") or [])} for name, spec in clusters.items()}
    report = mesh_report(expected, observed)
    # Only a mesh whose objects match the plan is worth waiting for.
    wait = module.params["wait_connected"] if report["ok"] else 0
    verdicts = connections(clusters, module.params["namespace"], wait)
    lines = render_report(report)
    for name, entry in sorted(report["clusters"].items()):
        entry["connection"] = verdicts[name]
        lines.append("%s: kvstoremesh %s%s" % (name, verdicts[name]["state"],
                                               ": %s" % verdicts[name]["reason"] if verdicts[name]["reason"] else ""))
    states = {v["state"] for v in verdicts.values()}
    connected = False if NOT_CONNECTED in states else None if UNKNOWN in states else True
    result = dict(changed=False, ok=report["ok"], clusters=report["clusters"], report=lines, connected=connected)
    if module.params["fail_on_not_connected"] and connected is not True and report["ok"]:
        bad = ", ".join(name for name, v in sorted(verdicts.items()) if v["state"] != CONNECTED)
        module.fail_json(msg="Cilium ClusterMesh objects match the inventory, but kvstoremesh does not report every peer "
                             "ready on %s after %ds:\n%s" % (bad, wait, "\n".join(lines)), **result)
    if not report["ok"] and module.params["fail_on_mismatch"]:
        bad = ", ".join(name for name, entry in sorted(report["clusters"].items()) if not entry["ok"])
        module.fail_json(msg="Cilium ClusterMesh differs from the inventory on %s:\n%s" % (bad, "\n".join(result["report"])),
                         **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
