#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: helm_releases
short_description: Keep several Helm releases of one cluster in one call, running helm only to change one
version_added: 0.1.0
description:
  - Reads each release from the Secrets Helm keeps it in (C(sh.helm.release.v1.<name>.v<revision>)) through the API,
    and compares the chart, its version and the values it runs with the ones asked for. Only a release that differs
    (or is missing, or not C(deployed)) is installed or upgraded, with C(helm upgrade --install --reset-values) and
    the values in a file readable by the owner only; releases are handled in the order given.
  - A run in which nothing differs starts no helm process; the istio role keeps its namespace, the Secret C(cacerts),
    istio-base and istiod with one call.
  - O(objects) are kept first, as M(multicloud.interconnect.cluster_objects) keeps them (compared, then server-side
    apply of what differs). They are what the releases need before they start, or what needs the CRDs of an earlier
    call.
  - O(absent) objects are deleted next, when they exist (what a stage that is turned off kept beside its releases).
  - In check mode helm never runs; the result and the diff say what would be installed, upgraded or removed.
  - A release in the middle of another Helm operation (C(pending-*)) is refused, naming it and how to recover.
author:
  - multicloud.interconnect maintainers (@multicloud)
extends_documentation_fragment:
  - multicloud.interconnect.attributes
  - multicloud.interconnect.cluster_access
options:
  cluster:
    description: Name of the cluster in messages.
    type: str
    default: this cluster
  binary_path:
    description: The helm binary.
    type: path
    default: helm
  releases:
    description: The releases, handled in this order.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Release name.
        type: str
        required: true
      namespace:
        description: Release namespace.
        type: str
        required: true
      state:
        description: V(present) or V(absent).
        type: str
        choices: [present, absent]
        default: present
      chart_ref:
        description: Chart name in O(releases[].chart_repo_url), an C(oci://) reference, or a chart directory.
        type: str
      chart_repo_url:
        description: Chart repository URL; empty for a directory or an OCI reference.
        type: str
        default: ""
      chart_version:
        description: Chart version; a chart directory's own version is read from its C(Chart.yaml).
        type: str
        default: ""
      values:
        description: The release's values, all of them (nothing is reused from the running release).
        type: dict
        default: {}
      create_namespace:
        description: Create the namespace if it does not exist.
        type: bool
        default: false
      wait:
        description: Wait for the release's resources (C(helm --wait)).
        type: bool
        default: false
      timeout:
        description: Helm's timeout, as C(5m0s).
        type: str
        default: 5m0s
      show_values:
        description: Show the values in the diff; turn off for values with secrets (the task sets C(no_log) then too).
        type: bool
        default: true
      keep_values:
        description:
          - Dotted paths of values (as C(global.meshNetworks)) taken from the running release when it has them,
            instead of from O(releases[].values). Settings another stage owns, which a re-run of this one keeps.
        type: list
        elements: str
        default: []
  objects:
    description:
      - Manifests kept before the releases, in this order (see the description); a Secret's values go in O(secret_data).
    type: list
    elements: dict
    default: []
  absent:
    description:
      - Objects deleted when they exist, after O(objects) are kept and before the releases, each a reference
        (C(api_version), C(kind), C(name), C(namespace)) or a manifest, as in M(multicloud.interconnect.cluster_objects).
        A stage that is turned off passes the manifests it keeps otherwise.
    type: list
    elements: dict
    default: []
  secret_data:
    description: The C(data) of Secrets of O(objects), keyed C(namespace/name); never shown, digests in the diff.
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
requirements:
  - kubernetes (Python library)
  - helm 3 on the controller
"""

EXAMPLES = r"""
- name: Install istio-base, then istiod
  multicloud.interconnect.helm_releases:
    kubeconfig: "{{ cluster_kubeconfig }}"
    binary_path: /usr/local/bin/helm
    releases:
      - {name: istio-base, namespace: istio-system, chart_ref: base,
         chart_repo_url: "https://istio-release.storage.googleapis.com/charts", chart_version: "1.30.3"}
      - {name: istiod, namespace: istio-system, chart_ref: istiod,
         chart_repo_url: "https://istio-release.storage.googleapis.com/charts", chart_version: "1.30.3",
         values: {global: {meshID: mesh1, multiCluster: {clusterName: cluster01}, network: net-a}}}
"""

RETURN = r"""
objects:
  description: One entry per object of O(objects), as M(multicloud.interconnect.cluster_objects) returns them.
  returned: always
  type: list
  elements: dict
results:
  description: One entry per release with what was (or would be) done and why.
  returned: always
  type: list
  elements: dict
  sample: [{name: istiod, namespace: istio-system, action: upgrade, reasons: [values], revision: 3}]
"""

import os  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402

from ansible_collections.multicloud.interconnect.plugins.module_utils import _helm as helm  # noqa: E402
from ansible_collections.multicloud.interconnect.plugins.module_utils import _objects as objects  # noqa: E402
from ansible_collections.multicloud.interconnect.plugins.module_utils._k8s import (  # noqa: E402
    ClusterError, cluster_module, env_fallback_value)

RELEASE = dict(
    name=dict(type="str", required=True), namespace=dict(type="str", required=True),
    state=dict(type="str", choices=["present", "absent"], default="present"), chart_ref=dict(type="str"),
    chart_repo_url=dict(type="str", default=""), chart_version=dict(type="str", default=""),
    values=dict(type="dict", default={}), create_namespace=dict(type="bool", default=False),
    wait=dict(type="bool", default=False), timeout=dict(type="str", default="5m0s"),
    show_values=dict(type="bool", default=True), keep_values=dict(type="list", elements="str", default=[]))


def main() -> None:
    module = cluster_module(dict(
        cluster=dict(type="str", default="this cluster"),
        binary_path=dict(type="path", default="helm"),
        releases=dict(type="list", elements="dict", required=True, options=RELEASE),
        objects=dict(type="list", elements="dict", default=[]),
        absent=dict(type="list", elements="dict", default=[]),
        secret_data=dict(type="dict", default={}, no_log=True),
    ), entries=())
    params = module.params
    name = params["cluster"]
    for spec in params["releases"]:
        if spec["state"] == "present" and not spec["chart_ref"]:
            module.fail_json(msg="cluster %s: release %s needs chart_ref" % (name, spec["name"]))
    try:
        absent = objects.references("absent", params["absent"])
    except ValueError as err:
        module.fail_json(msg="cluster %s: %s" % (name, err))
    results, before, after, kept = [], {}, {}, {"results": []}
    workdir = tempfile.mkdtemp(prefix="helm-releases-")
    try:
        cluster = objects.Objects(name, params["kubeconfig"], params["context"])
        access = helm.access_arguments(params["kubeconfig"] or env_fallback_value("K8S_AUTH_KUBECONFIG"),
                                       params["context"] or env_fallback_value("K8S_AUTH_CONTEXT"), workdir)
        if params["objects"] or absent:
            kept = objects.run(cluster, objects.with_secret_data(params["objects"], params["secret_data"]), absent, [],
                               module.check_mode)
            before.update(kept["diff"]["before"])
            after.update(kept["diff"]["after"])
        for spec in params["releases"]:
            secrets = cluster.newest({"api_version": "v1", "kind": "Secret", "namespace": spec["namespace"],
                                      "label_selector": "owner=helm,name=%s" % spec["name"]}, "version")
            observed = helm.observed_release(secrets)
            spec["values"] = helm.with_kept_values(spec["values"], observed, spec["keep_values"])
            action, reasons = helm.plan(spec, observed, name)
            entry = {"name": spec["name"], "namespace": spec["namespace"], "action": action, "reasons": reasons,
                     "revision": observed["revision"] if observed else None}
            if action != "unchanged" and action != "absent":
                key = "%s/%s" % (spec["namespace"], spec["name"])
                shown = spec["show_values"]
                before[key] = (observed["values"] if shown else "(values not shown)") if observed else None
                after[key] = None if action == "uninstall" else (spec["values"] if shown else "(values not shown)")
            if not module.check_mode and action in ("install", "upgrade", "uninstall"):
                if action == "uninstall":
                    command = helm.uninstall_command(params["binary_path"], spec, access)
                else:
                    values_file = helm.write_private(os.path.join(workdir, "values-%s.json" % spec["name"]),
                                                     spec["values"])
                    command = helm.upgrade_command(params["binary_path"], spec, values_file, access)
                rc, out, err = module.run_command(command)
                if rc != 0:
                    module.fail_json(msg="cluster %s: helm %s of %s/%s failed: %s"
                                     % (name, action, spec["namespace"], spec["name"], (err or out).strip()[-2000:]),
                                     results=results)
            results.append(entry)
    except (ClusterError, helm.HelmError) as err:
        module.fail_json(msg=str(err), results=results, objects=kept["results"])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result = {"changed": kept.get("changed", False) or any(r["action"] not in ("unchanged", "absent") for r in results),
              "results": results, "objects": kept["results"]}
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = {"before": before, "after": after}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
