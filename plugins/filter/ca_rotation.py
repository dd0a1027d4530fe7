# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the CA rotations (playbooks/ca_rotate.yml): thin wrappers over _ca_rotation (Cilium)
and _istio_ca_rotation (Istio).

What each cluster runs comes from the roles' gathered facts (cilium: ``__cilium_ca_secret``,
``__cilium_release_values``, ``__cilium_ca_record``; istio: ``__istio_rotation_observed``); the
members from the one model of the inventory.
"""

from __future__ import annotations

import base64
import binascii
import time

from ansible.errors import AnsibleFilterError

from ansible_collections.multicloud.interconnect.plugins.module_utils import _ca_rotation, _istio_ca, _istio_ca_rotation
from ansible_collections.multicloud.interconnect.plugins.module_utils._pem import bundle_fingerprints, pem_certificates, pem_fingerprint
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


def _refused(group, rotation, problems):
    """The plan of a Cilium rotation refused before its members were read."""
    return {"group": group, "rotation": rotation, "old": None, "new": None, "source": None, "stages": {}, "todo": [],
            "problems": problems}


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
        result = _refused(group, rotation, problems)
    elif not group_members:
        known = sorted(topology.members(cni="cilium"))
        result = _refused(group, rotation, [problem(
            "CILIUM_CA_ROTATION_GROUP", "network group %s has no Cilium cluster in the inventory." % group,
            "set cilium_ca_rotate_group to one of: %s" % (", ".join(known) or "none"), [], group,
            "cilium_ca_rotate_group")])
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


def istio_ca_rotation_plan(hostvars, hosts, inventory_hosts, rotation, current_chain, new_chain=None, drop_after=86400,
                           until="drop", check_mode=False, under_way=True, now=None, given_key=None, new_made=None):
    """Where Istio rotation ``rotation`` stands: the plan of _istio_ca_rotation.plan with ``run`` (the stages
    this run goes through), ``issued_at`` (the time a stage ``issue`` of this run records), ``summary`` and
    ``problems`` (the rendered refusal, empty when the run may go on). No key inside.

    ``current_chain`` / ``new_chain``: the mesh's signer chain and the rotation's (PEM; the roots the controller
    keeps, or the CAs the user gives; None or empty while the rotation's root is to be made); ``given_key``: the
    key of ``new_chain`` when the user gives it (istio_ca_rotate_key), which is checked first;
    ``under_way``: the controller's marker of the rotation exists, or the new CA is given and the rotation has
    not recorded it yet (its start); ``new_made``: the rotation's CAs exist on the controller (a run made its
    root, or recorded the given CA, and the intermediates), which check mode needs to show a stage's values
    (default: the new root is known)."""
    now = time.time() if now is None else float(now)
    topology = topology_from_hostvars(hostvars, inventory_hosts or [])
    playing = set(hosts or [])
    members, left_out, missing = {}, [], []
    for cluster in topology.clusters.values():
        observed = hostvars[cluster.inventory_name].get("__istio_rotation_observed") if cluster.inventory_name in playing else None
        if observed is None:
            left_out.append(cluster.inventory_name)
            continue
        if not observed.get("istiod"):
            missing.append(cluster.inventory_name)
        members[cluster.inventory_name] = {"name": cluster.name, "cacerts": observed.get("cacerts") or None,
                                           "issued_at": observed.get("issued_at")}
    if left_out:
        result = {"rotation": rotation, "todo": [], "problems": [problem(
            "ISTIO_CA_ROTATION_PARTIAL",
            "%s %s not part of this run; an Istio CA rotation moves every cluster of the mesh through each stage "
            "together." % (", ".join(sorted(left_out)), "is" if len(left_out) == 1 else "are"),
            "run without --limit, and with every cluster reachable", left_out, None, "istio_ca_rotation")]}
    elif missing:
        result = {"rotation": rotation, "todo": [], "problems": [problem(
            "ISTIO_CA_ROTATION_NOT_INSTALLED",
            "%s run%s no istiod Deployment, which the rotation restarts at each stage."
            % (", ".join(sorted(missing)), "s" if len(missing) == 1 else ""),
            "run site.yml first (it installs istiod), or set istio_istiod_deployment_name to istiod's Deployment",
            missing, None, "istio_istiod_deployment_name")]}
    else:
        given = [] if given_key is None else _istio_ca.given_ca_problems(new_chain, given_key, "istio_ca_rotate_cert",
                                                                         sorted(members))
        result = {"rotation": rotation, "todo": [], "problems": given} if given else _istio_ca_rotation.plan(
            rotation, members, current_chain or None, new_chain or None, int(drop_after), now, bool(under_way))
    if result["problems"]:
        return dict(result, run=[], summary="", issued_at="", problems=refusal("Istio CA rotation", result["problems"]))
    made = bool(result["new"]) and (new_made is None or bool(new_made))
    run = _istio_ca_rotation.stages_to_run(result["todo"], until or "drop", bool(check_mode), made,
                                           result["drop_at"], now)
    return dict(result, run=run, new_made=made, issued_at=_istio_ca_rotation.format_time(now), problems="",
                summary=_istio_ca_rotation.summary(result, run, now))


def istio_ca_stage_data(stage, old_chain, old_cert, old_key, new_chain, new_cert, new_key):
    """Base64 data of one cluster's Secret ``cacerts`` once ``stage`` is done (PEM texts from the controller)."""
    # Imported here: the Istio filters live in another file of this directory.
    from ansible_collections.multicloud.interconnect.plugins.filter.istio import istio_cacerts_data  # pylint: disable=import-outside-toplevel

    pem = _istio_ca_rotation.stage_cacerts(stage, {"chain": old_chain, "cert": old_cert, "key": old_key},
                                           {"chain": new_chain, "cert": new_cert, "key": new_key})
    return istio_cacerts_data(pem["cert"], pem["key"], pem["chain"], pem["trusted"])


def pem_fingerprints(bundle):
    """Sorted fingerprints of every certificate of a bundle (PEM, or base64 of PEM)."""
    return sorted(bundle_fingerprints(bundle))


class FilterModule:
    def filters(self):
        return {
            "istio_ca_rotation_plan": istio_ca_rotation_plan,
            "istio_ca_stage_data": istio_ca_stage_data,
            "pem_fingerprints": pem_fingerprints,
            "cilium_ca_rotation_plan": cilium_ca_rotation_plan,
            "cilium_ca_stage": cilium_ca_stage,
            "cilium_ca_stages_to_run": cilium_ca_stages_to_run,
        }
