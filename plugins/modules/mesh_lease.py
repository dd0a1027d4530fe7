#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: mesh_lease
short_description: Hold or release the lease that lets one changing run at a time work on the clusters
version_added: 0.1.0
description:
  - A run that writes to clusters takes a C(coordination.k8s.io/v1) Lease named C(multicloud-interconnect) in
    C(kube-system) of every cluster it changes, renews it while it goes on, and deletes it at its end. A Lease that
    was not renewed for its O(duration) (a controller that died) is stale and is taken over.
  - A second run finds the Lease held and fails before any change, naming the cluster, the holder, and when the
    Lease expires. Leases are taken cluster by cluster in the order of the sorted cluster names; when two runs race
    for one, the write that loses (HTTP 409) stops its run, which gives back the Leases it took in this call.
  - Releasing deletes only Leases this holder holds (with the resourceVersion it read as a precondition).
  - In check mode nothing is written; the result says what would be taken and who holds what.
author:
  - multicloud.interconnect maintainers (@multicloud)
extends_documentation_fragment:
  - multicloud.interconnect.attributes
  - multicloud.interconnect.cluster_access
options:
  clusters:
    description:
      - The clusters, as a mapping of inventory host name to that host's variables (C(cluster_kubeconfig),
        C(cluster_context)), as M(multicloud.interconnect.cluster_preflight) takes them.
    type: dict
    required: true
  holder:
    description:
      - Who holds the Lease, written to C(spec.holderIdentity) and shown to a run that finds it held; unique per
        run. The filter C(multicloud.interconnect.mesh_lease_holder) makes it as
        C(<user>@<controller> [job <AWX job>] pid <ansible-playbook process> run <ID>); a Lease whose holder names
        this controller and a process that is gone (a run that failed) is taken over at once.
    type: str
    required: true
  state:
    description: V(present) takes or renews the Lease in every cluster; V(absent) gives back those this holder holds.
    type: str
    choices: [present, absent]
    default: present
  duration:
    description: Seconds without renewal after which the Lease is stale (C(spec.leaseDurationSeconds)).
    type: int
    default: 900
  break_held:
    description:
      - Take Leases other holders hold and renewed recently. Only for a holder that is known to be gone (a
        controller that died); two runs at once can tangle a mesh.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: partial
    details: Renewing a held Lease writes its C(renewTime); the result reports C(changed) only when a Lease is created,
      taken over or deleted.
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Take the mesh lease in every cluster before any change
  multicloud.interconnect.mesh_lease:
    clusters: "{{ hostvars | multicloud.interconnect.cluster_inventory(groups['clusters']) }}"
    holder: "{{ lookup('ansible.builtin.env', 'USER') | multicloud.interconnect.mesh_lease_holder }}"

- name: Give it back at the end
  multicloud.interconnect.mesh_lease:
    clusters: "{{ hostvars | multicloud.interconnect.cluster_inventory(groups['clusters']) }}"
    holder: "{{ mesh_lease_holder }}"
    state: absent
"""

RETURN = r"""
clusters:
  description: Per cluster (inventory host name), what was done (C(create), C(renew), C(take), C(delete), C(keep),
    C(none), C(refuse)), the previous holder of a taken Lease, and for a refusal the holder and the expiry.
  returned: always
  type: dict
  sample:
    cluster01: {action: renew}
    cluster02: {action: refuse, holder: "bob@ctl-2 job 12", expires: "2026-12-03T12:15:00.000000Z"}
holder:
  description: The holder identity the Leases carry.
  returned: always
  type: str
ansible_facts:
  description: C(mesh_lease_renewed), when this holder last wrote the Leases (seconds since the epoch; 0 once given back).
  returned: success, outside check mode
  type: dict
  sample: {mesh_lease_renewed: 1796299978.06}
"""

import datetime

from ansible_collections.multicloud.interconnect.plugins.module_utils import _lease
from ansible_collections.multicloud.interconnect.plugins.module_utils._k8s import ClusterError, cluster_module, describe_api_exception
from ansible_collections.multicloud.interconnect.plugins.module_utils._kube_api import ApiError, connect
from ansible_collections.multicloud.interconnect.plugins.module_utils._problems import refusal

PATH = "/apis/coordination.k8s.io/v1/namespaces/%s/leases" % _lease.NAMESPACE
ITEM = "%s/%s" % (PATH, _lease.NAME)


def read(api):
    try:
        return api.request("read the mesh lease", "GET", ITEM)
    except ApiError as err:
        if err.status == 404:
            return None
        raise ClusterError(api.name, "cannot read the mesh lease %s/%s: %s" % (
            _lease.NAMESPACE, _lease.NAME, describe_api_exception(err)), err.status) from err


def write(api, decision, lease, holder, duration, now):
    """Create, renew or take one Lease; a 409 (someone wrote in between) raises ApiError."""
    if decision["action"] == "create":
        return api.request("create the mesh lease", "POST", PATH, body=_lease.body(holder, duration, now))
    spec = (lease or {}).get("spec") or {}
    renewing = decision["action"] == "renew"
    return api.request("write the mesh lease", "PUT", ITEM, body=_lease.body(
        holder, duration, now, acquired=spec.get("acquireTime") if renewing else None,
        resource_version=lease["metadata"]["resourceVersion"],
        transitions=int(spec.get("leaseTransitions") or 0) + (0 if renewing else 1)))


def delete(api, lease):
    api.request("delete the mesh lease", "DELETE", ITEM,
                body={"preconditions": {"resourceVersion": lease["metadata"]["resourceVersion"]}})


def acquire(module, apis, holder):
    now = datetime.datetime.now(datetime.timezone.utc)
    leases = {name: read(api) for name, api in apis.items()}
    alive = {}  # per holder: is its run still going (known for runs of this controller only)
    for lease in leases.values():
        other = ((lease or {}).get("spec") or {}).get("holderIdentity")
        if other and other != holder and other not in alive:
            alive[other] = _lease.holder_alive(other)
    decisions = {name: _lease.decide(name, leases[name], holder, now, module.params["break_held"],
                                     alive.get(((leases[name] or {}).get("spec") or {}).get("holderIdentity")))
                 for name in apis}
    refused = [d["problem"] for d in decisions.values() if d["action"] == "refuse"]
    report = {name: {k: v for k, v in d.items() if k != "problem"} for name, d in decisions.items()}
    if refused:
        module.fail_json(msg=refusal("Mesh lease", refused), clusters=report, holder=holder)
    if module.check_mode:
        module.exit_json(changed=any(d["action"] in ("create", "take") for d in decisions.values()),
                         clusters=report, holder=holder)
    taken = []
    for name in sorted(apis):
        try:
            written = write(apis[name], decisions[name], leases[name], holder, module.params["duration"], now)
        except ApiError as err:
            if err.status != 409:
                raise ClusterError(name, "cannot write the mesh lease: %s" % describe_api_exception(err),
                                   err.status) from err
            # Lost a race: give back what this call took, so the winner is the only holder.
            for done, lease in taken:
                try:
                    delete(apis[done], lease)
                except (ApiError, ClusterError):
                    pass
            module.fail_json(msg=refusal("Mesh lease", [_lease.conflict_problem(name, err.message or err.reason)]),
                             clusters=report, holder=holder)
        if decisions[name]["action"] != "renew":
            taken.append((name, written))
    module.exit_json(changed=any(d["action"] in ("create", "take") for d in decisions.values()),
                     clusters=report, holder=holder, ansible_facts={"mesh_lease_renewed": now.timestamp()})


def release(module, apis, holder):
    report = {}
    for name in sorted(apis):
        lease = read(apis[name])
        action = _lease.release_action(lease, holder)
        report[name] = {"action": action}
        if action == "keep":
            report[name]["holder"] = lease["spec"].get("holderIdentity")
        if action == "delete" and not module.check_mode:
            try:
                delete(apis[name], lease)
            except ApiError as err:
                if err.status not in (404, 409):  # gone, or taken over after going stale: not ours to delete
                    raise ClusterError(name, "cannot delete the mesh lease: %s" % describe_api_exception(err),
                                       err.status) from err
                report[name] = {"action": "keep" if err.status == 409 else "none"}
    module.exit_json(changed=any(r["action"] == "delete" for r in report.values()), clusters=report, holder=holder,
                     ansible_facts={} if module.check_mode else {"mesh_lease_renewed": 0})


def main():
    module = cluster_module(dict(
        clusters=dict(type="dict", required=True),
        holder=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        duration=dict(type="int", default=_lease.DEFAULT_DURATION),
        break_held=dict(type="bool", default=False),
    ), entries=("clusters",), kubeconfig_key="cluster_kubeconfig", context_key="cluster_context")
    holder = module.params["holder"].strip()
    if not holder:
        module.fail_json(msg="holder is empty: name who runs (user, controller, job)")
    try:
        apis = {name: connect(name, (entry or {}).get("cluster_kubeconfig"), (entry or {}).get("cluster_context"))
                for name, entry in sorted(module.params["clusters"].items())}
        if module.params["state"] == "present":
            acquire(module, apis, holder)
        else:
            release(module, apis, holder)
    except ClusterError as err:
        module.fail_json(msg=str(err), holder=holder)


if __name__ == "__main__":
    main()
