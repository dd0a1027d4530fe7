# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the Cilium CA rotation (playbooks/ca_rotate.yml): thin wrappers over _ca_rotation.

What each cluster runs comes from the cilium role's gathered facts (``__cilium_ca_secret``,
``__cilium_release_values``, ``__cilium_ca_record``); the group's members from the one model of
the inventory.
"""

from __future__ import annotations

import base64
import binascii

from ansible.errors import AnsibleFilterError

from ansible_collections.multicloud.interconnect.plugins.module_utils import _ca_rotation
from ansible_collections.multicloud.interconnect.plugins.module_utils._pem import pem_certificates, pem_fingerprint
from ansible_collections.multicloud.interconnect.plugins.module_utils._problems import problem, refusal
from ansible_collections.multicloud.interconnect.plugins.module_utils._topology import topology_from_hostvars


def _gathered(hostvars, name):
    hv = hostvars[name]
    return {"ca": hv.get("__cilium_ca_secret") or None, "trust": _ca_rotation.release_trust(hv.get("__cilium_release_values")),
            "record": hv.get("__cilium_ca_record") or None}


def _decode(value):
    try:
        return base64.b64decode(value or "", validate=False)
    except (binascii.Error, ValueError):
        return b""


def _given_ca_problems(group, members, cert, key):
    """Why a CA given for a rotation cannot issue the group's certificates (empty: it can)."""
    if not key:
        return [problem("CILIUM_CA_ROTATION_KEY", "network group %s: cilium_ca_rotate_cert is set without "
                        "cilium_ca_rotate_key." % group,
                        "set cilium_ca_rotate_key to the new CA's key (base64 PEM; keep it in a vault)",
                        members, group, "cilium_ca_rotate_key")]
    # Imported here: every task that uses any of the collection's filters loads this file, and
    # cryptography is only needed to check a CA given for a rotation.
    from ansible_collections.multicloud.interconnect.plugins.module_utils import _ca  # pylint: disable=import-outside-toplevel

    if not _ca.HAS_CRYPTOGRAPHY:
        raise AnsibleFilterError("checking cilium_ca_rotate_cert needs the Python library cryptography on the controller")
    found = _ca.chain_problems([c.encode("ascii") for c in pem_certificates(cert)], _decode(key), "cilium_ca_rotate_cert")
    if not found:
        return []
    return [problem("CILIUM_CA_ROTATION_CERT_INVALID", "network group %s: %s." % (group, "; ".join(found)),
                    "give the issuing CA first, then each CA above it, and that CA's key", members, group,
                    "cilium_ca_rotate_cert")]


def cilium_ca_rotation_plan(hostvars, hosts, inventory_hosts, group, rotation, provided_cert=None, provided_key=None):
    """Where rotation ``rotation`` of ``group`` stands: ``{group, rotation, old, new, source, stages, todo,
    summary, problems}`` (``problems``: the rendered refusal, empty when the run may go on). No key inside.

    ``hosts``: the play's hosts (those that gathered); ``inventory_hosts``: every cluster of the inventory,
    so that a run that leaves a member of the group out is refused."""
    topology = topology_from_hostvars(hostvars, inventory_hosts or [])
    group_members = topology.members(cni="cilium").get(group) or []
    playing = set(hosts or [])
    members = {}
    for cluster in group_members:
        if cluster.inventory_name in playing and "__cilium_ca_secret" in hostvars[cluster.inventory_name]:
            members[cluster.inventory_name] = dict(_gathered(hostvars, cluster.inventory_name), name=cluster.name)
    left_out = sorted(c.inventory_name for c in group_members if c.inventory_name not in members)
    if left_out:
        problems = [problem("CILIUM_CA_ROTATION_PARTIAL",
                            "network group %s: %s %s not part of this run; a rotation moves every cluster of the group "
                            "through each stage together." % (group, ", ".join(left_out), "is" if len(left_out) == 1 else "are"),
                            "run without --limit (or with every cluster of the group), and with every cluster reachable",
                            left_out, group, "cilium_ca_rotate_group")]
        result = {"group": group, "rotation": rotation, "old": None, "new": None, "source": None, "stages": {},
                  "todo": [], "problems": problems}
    elif not group_members:
        known = sorted(topology.members(cni="cilium"))
        result = {"group": group, "rotation": rotation, "old": None, "new": None, "source": None, "stages": {},
                  "todo": [], "problems": [problem(
                      "CILIUM_CA_ROTATION_GROUP", "network group %s has no Cilium cluster in the inventory." % group,
                      "set cilium_ca_rotate_group to one of: %s" % (", ".join(known) or "none"), [], group,
                      "cilium_ca_rotate_group")]}
    else:
        result = _ca_rotation.plan(group, rotation, members, provided_cert or None)
    if provided_cert and not result["problems"] and result["source"] == "provided":
        result["problems"].extend(_given_ca_problems(group, sorted(members), provided_cert, provided_key))
    rendered = refusal("Cilium CA rotation", result["problems"]) if result["problems"] else ""
    return dict(result, problems=rendered, summary="" if rendered else _ca_rotation.summary(result))


def cilium_ca_stage(hostvars, hosts, rotation_plan, stage, new_ca=None):
    """``{ca, record}`` for every cluster of the rotation once ``stage`` is done, by inventory name:
    ``ca`` the values of the cilium role (``__cilium_ca``), ``record`` the ``cilium-ca-rotation``
    Secret's data to write (None at the ``issue`` stage, which leaves it as it is).

    The new CA comes from the record in the clusters, else ``new_ca`` (``{cert, key}``: given or generated)."""
    members = list(rotation_plan.get("members") or sorted(rotation_plan.get("stages") or {}))
    gathered = {name: _gathered(hostvars, name) for name in members if name in (hosts or members)}
    old = new = None
    for info in gathered.values():
        record = info["record"] or {}
        data = _ca_rotation.read_record(record)
        if data and data["rotation"] == rotation_plan["rotation"] and record.get("ca.key"):
            new = {"cert": record["ca.crt"], "key": record["ca.key"]}
            old = {"cert": record["previous.crt"], "key": None}
    if new is None:
        if not new_ca or not new_ca.get("cert") or not new_ca.get("key"):
            raise AnsibleFilterError("Cilium CA rotation %s: no new CA (no record in the clusters and none given)"
                                     % rotation_plan["rotation"])
        new = {"cert": new_ca["cert"], "key": new_ca["key"]}
    for info in gathered.values():
        ca = info["ca"] or {}
        if pem_fingerprint(ca.get("ca.crt")) == rotation_plan["old"]:
            old = {"cert": ca["ca.crt"], "key": ca.get("ca.key")}
            break
    if old is None:
        raise AnsibleFilterError("Cilium CA rotation %s: the old CA %s is in no cluster and no record"
                                 % (rotation_plan["rotation"], rotation_plan["old"]))
    if stage == "trust" and not old.get("key"):
        raise AnsibleFilterError("Cilium CA rotation %s: no cluster holds the old CA's key any more, so it cannot issue "
                                 "during the trust stage" % rotation_plan["rotation"])
    new_fp = pem_fingerprint(new["cert"])
    ca = _ca_rotation.stage_ca(stage, old, new, new_fp)
    record = None
    if stage in ("trust", "drop"):
        record = _ca_rotation.record_data(rotation_plan["rotation"], new["cert"], new["key"], old["cert"],
                                          finished=stage == "drop")
    return {name: {"ca": ca, "record": record} for name in gathered}


def cilium_ca_stages_to_run(todo, until, check_mode=False, source=None):
    """The stages this run goes through (``cilium_ca_rotate_until``; check mode: the first, once the new CA exists)."""
    return _ca_rotation.stages_to_run(todo or [], until or "drop", bool(check_mode), source == "generate")


class FilterModule:
    def filters(self):
        return {
            "cilium_ca_rotation_plan": cilium_ca_rotation_plan,
            "cilium_ca_stage": cilium_ca_stage,
            "cilium_ca_stages_to_run": cilium_ca_stages_to_run,
        }
