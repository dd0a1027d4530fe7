#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_objects
short_description: Keep, remove and read many objects of one cluster in one call
version_added: 0.1.0
description:
  - One call per stage instead of one per object; the roles use it for the objects of a stage (the API server's
    NodePort Service with the reader's account, role, bindings and token, for example) and for what the stage reads.
  - Each object of O(present) is compared with the cluster first; every field the manifest names must be there with
    the same value (fields the server adds do not count; lists of mappings are compared item by item). An equal
    object is not written. A missing or differing object is written with server-side apply under the field manager
    C(multicloud.interconnect), in the order given (a namespace before what lives in it).
  - Objects of O(absent) are deleted when they exist. O(read) lists or gets objects and returns them under RV(read).
  - In check mode nothing is written; an update is sent as a server dry run, so the diff shows what the server would
    keep (in the task's diff); a create is a dry run too, or shows the manifest when its namespace or its kind (a CRD that an earlier step
    of the same run installs) does not exist yet.
  - Secret values never appear in the diff or in RV(objects) (a digest stands for each); Secrets returned under RV(read)
    carry their data, so a task that reads Secrets sets C(no_log).
author:
  - multicloud.interconnect maintainers (@multicloud)
extends_documentation_fragment:
  - multicloud.interconnect.attributes
  - multicloud.interconnect.cluster_access
options:
  cluster:
    description: Name of the cluster in messages (the inventory's cluster name).
    type: str
    default: this cluster
  present:
    description: Manifests of the objects the cluster must hold, applied in this order.
    type: list
    elements: dict
    default: []
  secret_data:
    description:
      - Values of the Secrets of O(present), by C(namespace/name) (base64, as a Secret's C(data)); they take the place
        of the manifest's C(data). Ansible hides this option's values from every output, and the module shows
        digests of them, so a task that writes Secrets needs no C(no_log) and still shows its diff.
    type: dict
    default: {}
  absent:
    description:
      - Objects to delete when they exist, each a reference (C(api_version), C(kind), C(name), C(namespace)) or a
        manifest (C(apiVersion), C(kind), C(metadata.name), C(metadata.namespace)), so the manifests of a stage that
        is turned off can be passed as they are.
    type: list
    elements: dict
    default: []
  wait:
    description:
      - Objects to wait for after the writes (not in check mode), as references like those of O(absent) or as
        manifests (entries of O(present) may be repeated here).
      - A CRD is waited for until it is Established; a Deployment, DaemonSet or StatefulSet until its current
        generation is rolled out and every replica is available; any other kind until it exists.
    type: list
    elements: dict
    default: []
  wait_timeout:
    description: Seconds to wait for O(wait) before the module fails, naming what is not ready and why.
    type: int
    default: 300
  read:
    description: Objects to read after the writes and the wait; RV(read) has one list per entry, in this order.
    type: list
    elements: dict
    default: []
    suboptions:
      api_version:
        description: API version.
        type: str
        required: true
      kind:
        description: Kind.
        type: str
        required: true
      name:
        description: Name of one object; without it, every object of the kind (in O(read[].namespace) if set).
        type: str
      namespace:
        description: Namespace.
        type: str
      label_selector:
        description: Label selector of a list.
        type: str
      newest_by_label:
        description:
          - Of the objects listed, only the one whose value of this label is the highest number (as a list of one).
          - The others are read for their metadata only, so Helm's release Secrets (C(owner=helm,name=<release>), one
            per revision, chart included) cost one revision rather than ten. Use V(version) for them.
        type: str
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
requirements:
  - kubernetes (Python library)
"""

EXAMPLES = r"""
- name: Expose the API server and read what peers need, in one call
  multicloud.interconnect.cluster_objects:
    kubeconfig: "{{ cluster_kubeconfig }}"
    present:
      - apiVersion: v1
        kind: Service
        metadata: {name: kube-apiserver-nodeport, namespace: kube-system}
        spec:
          type: NodePort
          selector: {component: kube-apiserver, tier: control-plane}
          ports: [{name: https, protocol: TCP, port: 6443, targetPort: 6443}]
    absent:
      - {api_version: rbac.authorization.k8s.io/v1, kind: ClusterRoleBinding, name: old-reader}
    read:
      - {api_version: v1, kind: Node, label_selector: "!node-role.kubernetes.io/control-plane"}
  register: exposed
"""

RETURN = r"""
results:
  description: One entry per object of O(present) then O(absent), with what was (or would be) done.
  returned: always
  type: list
  elements: dict
  sample: [{kind: Service, name: kube-apiserver-nodeport, namespace: kube-system, api_version: v1,
            action: unchanged, changes: []}]
objects:
  description: The objects of O(present) as the cluster holds them after the call (the plan in check mode), Secret values as digests.
  returned: always
  type: list
  elements: dict
read:
  description: One list of objects per entry of O(read).
  returned: always
  type: list
  elements: list
"""

from ansible_collections.multicloud.interconnect.plugins.module_utils import _objects as objects  # noqa: E402
from ansible_collections.multicloud.interconnect.plugins.module_utils._k8s import (  # noqa: E402
    ClusterError, cluster_module)

QUERY = dict(api_version=dict(type="str", required=True), kind=dict(type="str", required=True),
             name=dict(type="str"), namespace=dict(type="str"), label_selector=dict(type="str"),
             newest_by_label=dict(type="str"))


def main() -> None:
    module = cluster_module(dict(
        cluster=dict(type="str", default="this cluster"),
        present=dict(type="list", elements="dict", default=[]),
        secret_data=dict(type="dict", default={}, no_log=True),
        absent=dict(type="list", elements="dict", default=[]),
        wait=dict(type="list", elements="dict", default=[]),
        wait_timeout=dict(type="int", default=300),
        read=dict(type="list", elements="dict", default=[], options=QUERY),
    ), entries=())
    params = module.params
    for index, manifest in enumerate(params["present"]):
        ref = objects.reference(manifest)
        missing = [field for field, key in (("apiVersion", "api_version"), ("kind", "kind"), ("metadata.name", "name"))
                   if not ref[key]]
        if missing:
            module.fail_json(msg="present[%d] needs apiVersion, kind and metadata.name (missing: %s)"
                             % (index, ", ".join(missing)))
    try:
        refs = {option: objects.references(option, params[option]) for option in ("absent", "wait")}
    except ValueError as err:
        module.fail_json(msg=str(err))
    try:
        cluster = objects.Objects(params["cluster"], params["kubeconfig"], params["context"])
        present = objects.with_secret_data(params["present"], params["secret_data"])
        result = objects.run(cluster, present, refs["absent"], params["read"], module.check_mode, refs["wait"],
                             params["wait_timeout"])
    except ClusterError as err:
        module.fail_json(msg=str(err))
    if not module._diff:  # pylint: disable=protected-access
        result.pop("diff")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
