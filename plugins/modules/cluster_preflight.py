#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_preflight
short_description: Check that every cluster an operation touches is reachable and authorised, before any write
version_added: 0.1.0
description:
  - Connects to every listed cluster, reads its version, and asks the API server (SelfSubjectAccessReview) whether
    the credentials may do what the operation needs.
  - Fails naming every cluster that is unreachable or not authorised, and why, so a multi-cluster operation
    stops before it changes anything rather than half-way.
  - Reads only.
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
  only:
    description:
      - Check only these clusters (inventory host names); all by default.
    type: list
    elements: str
    default: []
  permissions:
    description:
      - What the credentials must be allowed to do in every checked cluster.
    type: list
    elements: dict
    default:
      - {verb: get, resource: nodes}
      - {verb: create, resource: secrets, namespace: kube-system}
    suboptions:
      verb:
        description: The verb, for example V(create).
        type: str
        required: true
      resource:
        description: The resource, plural, for example V(secrets).
        type: str
        required: true
      group:
        description: The API group; empty for the core group.
        type: str
        default: ""
      namespace:
        description: The namespace; none for cluster-wide.
        type: str
  timeout:
    description: Seconds to wait for each request.
    type: int
    default: 10
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
- name: Stop before any change unless every cluster answers and allows what the run needs
  multicloud.interconnect.cluster_preflight:
    clusters: "{{ hostvars | multicloud.interconnect.cluster_inventory(groups['clusters']) }}"
    permissions:
      - {verb: create, resource: secrets, namespace: istio-system}
      - {verb: patch, resource: deployments, group: apps, namespace: istio-system}
"""

RETURN = r"""
clusters:
  description: Per cluster (inventory host name), whether it is reachable, its version and the denied permissions.
  returned: always
  type: dict
  sample:
    cluster01: {reachable: true, version: v1.36.3, denied: [], error: null}
failed_clusters:
  description: Inventory names of the clusters that are unreachable or lack a permission.
  returned: always
  type: list
  elements: str
"""


from ansible_collections.multicloud.interconnect.plugins.module_utils._k8s import (
    ClusterError,
    cluster_module,
    describe_api_exception,
)
from ansible_collections.multicloud.interconnect.plugins.module_utils._kube_api import ApiError, connect

ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


def _describe(permission):
    resource = permission["resource"] + ("." + permission["group"] if permission.get("group") else "")
    where = "in %s" % permission["namespace"] if permission.get("namespace") else "cluster-wide"
    return "%s %s %s" % (permission["verb"], resource, where)


def check_cluster(name, hv, permissions, timeout):
    try:
        api = connect(name, hv.get("cluster_kubeconfig"), hv.get("cluster_context"), timeout=timeout)
        version = api.version()
    except ClusterError as err:
        return {"reachable": False, "version": None, "denied": [], "error": str(err)}
    denied = []
    for permission in permissions:
        attributes = {"verb": permission["verb"], "resource": permission["resource"], "group": permission.get("group") or ""}
        if permission.get("namespace"):
            attributes["namespace"] = permission["namespace"]
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                  "spec": {"resourceAttributes": attributes}}
        try:
            answer = api.request("access review", "POST", ACCESS_REVIEWS, body=review) or {}
        except (ApiError, ClusterError) as err:  # the API went away between the two calls, or refused the review itself
            return {"reachable": False, "version": version, "denied": denied,
                    "error": "cluster %s: access review failed: %s" % (name, describe_api_exception(err))}
        if not (answer.get("status") or {}).get("allowed"):
            denied.append(_describe(permission))
    error = "cluster %s: not allowed to %s" % (name, "; ".join(denied)) if denied else None
    return {"reachable": True, "version": version, "denied": denied, "error": error}


def main():
    # Entries are inventory host variables, so the keys are the contract's.
    module = cluster_module(dict(
        clusters=dict(type="dict", required=True),
        only=dict(type="list", elements="str", default=[]),
        permissions=dict(
            type="list", elements="dict",
            default=[{"verb": "get", "resource": "nodes"},
                     {"verb": "create", "resource": "secrets", "namespace": "kube-system"}],
            options=dict(verb=dict(type="str", required=True), resource=dict(type="str", required=True),
                         group=dict(type="str", default=""), namespace=dict(type="str")),
        ),
        timeout=dict(type="int", default=10),
    ), kubeconfig_key="cluster_kubeconfig", context_key="cluster_context")
    names = module.params["only"] or sorted(module.params["clusters"])
    unknown = sorted(set(names) - set(module.params["clusters"]))
    if unknown:
        module.fail_json(msg="only: %s not in clusters (%s)" % (", ".join(unknown), ", ".join(sorted(module.params["clusters"]))))
    results = {
        name: check_cluster(name, module.params["clusters"][name] or {}, module.params["permissions"], module.params["timeout"])
        for name in names
    }
    failed = sorted(name for name, result in results.items() if result["error"])
    if failed:
        module.fail_json(
            msg="Stopped before any change: %d of %d clusters cannot be used.\n%s\nFix access to %s and run again."
            % (len(failed), len(names), "\n".join("- " + results[name]["error"] for name in failed), ", ".join(failed)),
            clusters=results, failed_clusters=failed)
    module.exit_json(changed=False, clusters=results, failed_clusters=[])


if __name__ == "__main__":
    main()
