# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rotating the Istio mesh's root CA (the plug-in CA of every cluster's Secret ``cacerts``) in stages.

Private to the multicloud.interconnect collection: other collections must not import it,
its interface may change without notice.

Every cluster's istiod signs with its own intermediate CA (``ca-cert.pem``), issued by the mesh's
root, and hands its workloads the roots they trust (``root-cert.pem``, which may hold several, in
the ConfigMap ``istio-ca-root-cert`` of every namespace). A workload of one cluster accepts a peer
of another when the peer's chain ends in a root it trusts. Replacing the root everywhere at once
leaves, while the clusters change one by one, pairs that do not trust each other; the stages are:

1. ``trust``: every cluster trusts the old and the new root; istiod still signs with the old intermediate.
2. ``issue``: every cluster signs with a new intermediate issued by the new root; both roots stay trusted.
3. ``drop``: every cluster trusts the new root only.

istiod reloads a new intermediate by itself but reads ``root-cert.pem`` when it starts, so each
stage restarts it (a digest of its cacerts on its Pods, through the release) and reads the roots it then publishes.
Workloads keep certificates issued by the old intermediate until they renew them (24 hours by
default, or at their restart), so ``drop`` waits ``drop_after`` seconds after ``issue``.

The keys live on the controller, as the istio role keeps them (the root under ``istio_ca_dir``, or
a CA of the user's own PKI given as ``istio_ca_cert``; one intermediate per cluster under
``istio_ca_dir``); a rotation's new intermediates under ``istio_ca_dir/rotation-<name>``, with a root
made there unless the user gives the new CA (``istio_ca_rotate_cert``). A CA is given as its chain
(the signer, then each CA above it); the root it ends in is the one the clusters trust.
Where each cluster stands is read from its ``cacerts``: the roots it trusts, and the root its chain
ends in. The last stage makes the new CAs the ones the istio role keeps.
"""

from __future__ import annotations

import datetime
import typing as t

from ansible_collections.multicloud.interconnect.plugins.module_utils._ca_rotation import NAME, STAGES
from ansible_collections.multicloud.interconnect.plugins.module_utils._istio_ca import anchor_fingerprint, cacerts_roots, chain_anchor
from ansible_collections.multicloud.interconnect.plugins.module_utils._problems import Problem, problem

_WHERE = ("at the start", "trusts both roots", "signs with the new root's intermediate", "finished")


def member_stage(root: t.Optional[str], trusted: t.Sequence[str], old: t.Optional[str],
                 new: t.Optional[str]) -> t.Optional[int]:
    """How many stages one cluster finished, from the root its chain ends in and the roots it trusts;
    None when it runs neither root as a stage would leave it."""
    trusted_set = set(trusted)
    if root == old and trusted_set == {old}:
        return 0
    if new and root == old and trusted_set == {old, new}:
        return 1
    if new and root == new and trusted_set == {old, new}:
        return 2
    if new and root == new and trusted_set == {new}:
        return 3
    return None


def parse_time(value: t.Optional[str]) -> t.Optional[float]:
    """Seconds since the epoch of an ISO 8601 time in UTC (the issued-at annotation); None when unreadable."""
    if not value:
        return None
    try:
        when = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.timestamp()


def format_time(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fail(result: t.Dict[str, t.Any], found: Problem) -> t.Dict[str, t.Any]:
    result["problems"].append(found)
    return result


def plan(rotation: str, members: t.Mapping[str, t.Mapping[str, t.Any]], current_chain: t.Optional[str],
         new_chain: t.Optional[str], drop_after: int, now: float, under_way: bool = True) -> t.Dict[str, t.Any]:
    """Where the Istio rotation ``rotation`` stands and what a run must do (fingerprints only, no key).

    ``members``: inventory name -> ``{name, cacerts: the Secret's data or None, issued_at: its
    annotation or None}``. ``current_chain``: the mesh's signer and the CAs above it up to its root (PEM:
    the root the istio role keeps, or istio_ca_cert); ``new_chain``: the rotation's (its root on the
    controller, or istio_ca_rotate_cert), None while the root is still to be made;
    ``under_way``: the controller marks the rotation under way (from before its root is made until
    the root is promoted), or the new CA is given and not recorded yet (the rotation's start). A cluster
    without ``cacerts`` (added since the rotation started) takes each stage's values.
    """
    names = sorted(members)
    old = anchor_fingerprint(current_chain)
    new = anchor_fingerprint(new_chain)
    result: t.Dict[str, t.Any] = {"rotation": rotation, "members": names, "old": old, "new": new,
                                  "promoted": False, "stages": {}, "newcomers": [], "todo": [], "drop_at": None,
                                  "problems": []}
    fix_name = "set istio_ca_rotation to a name for this rotation (a date or a change number)"
    if not rotation or not NAME.match(str(rotation)):
        return _fail(result, problem("ISTIO_CA_ROTATION_NAME",
                                     "the Istio rotation name %r is not a name of letters, digits, '.', '_' and '-' "
                                     "(at most 63, starting with a letter or digit)." % (rotation or ""),
                                     fix_name, names, None, "istio_ca_rotation"))
    if not names:
        return _fail(result, problem("ISTIO_CA_ROTATION_CLUSTERS", "no Istio cluster is part of this run.",
                                     "run against the inventory's clusters group", [], None, "istio_ca_rotation"))
    if not old:
        return _fail(result, problem("ISTIO_CA_ROTATION_NOT_INSTALLED",
                                     "the mesh has no root CA on this controller (istio_ca_dir), so there is none to "
                                     "rotate from.", "run site.yml first (it makes the root and installs cacerts), "
                                     "or point istio_ca_dir at the directory that holds the mesh's root",
                                     names, None, "istio_ca_dir"))
    running = {name: cacerts_roots(members[name].get("cacerts")) for name in names}
    roots = {name: running[name][0] for name in names}
    trusted = {name: running[name][1] for name in names}
    newcomers = [name for name in names if not roots[name] and not trusted[name]]
    result["newcomers"] = newcomers
    # Clusters that do not run the new root alone (a newcomer takes it from site.yml once it is promoted).
    behind = [name for name in names if name not in newcomers and (roots[name] != new or set(trusted[name]) != {new})]
    if new and (new == old or (not under_way and not behind and len(newcomers) < len(names))):
        # The istio role keeps the rotation's root already: the last stage promoted it (a given CA: the
        # mesh runs it alone and istio_ca_cert is still to name it).
        result["promoted"] = True
        old = None
    elif new and not under_way:
        # Promoted once, and another rotation moved the mesh on since: going back is a new rotation.
        return _fail(result, problem("ISTIO_CA_ROTATION_FINISHED",
                                     "Istio rotation %s finished earlier (to root %s); the mesh runs root %s since."
                                     % (rotation, new, old),
                                     "start a new rotation under another istio_ca_rotation name", names, None,
                                     "istio_ca_rotation"))
    if result["promoted"]:
        if behind:
            return _fail(result, problem("ISTIO_CA_ROTATION_FINISHED",
                                         "Istio rotation %s finished earlier (to root %s), but %s run%s another "
                                         "root." % (rotation, new, ", ".join(behind), "s" if len(behind) == 1 else ""),
                                         "run site.yml to install the mesh's root on them, or start a new rotation "
                                         "under another istio_ca_rotation name", behind, None, "istio_ca_rotation"))
        result["stages"] = {name: len(STAGES) for name in names if name not in newcomers}
        return result
    # Without the new root (made by this run), every cluster must be at the start.
    stages = {name: member_stage(roots[name], trusted[name], old, new) for name in names if name not in newcomers}
    unknown = sorted(name for name, stage in stages.items() if stage is None)
    if unknown:
        detail = "; ".join("%s chains to %s and trusts %s" % (name, roots[name] or "nothing", ", ".join(trusted[name]) or "nothing")
                           for name in unknown)
        return _fail(result, problem("ISTIO_CA_ROTATION_STATE",
                                     "Istio rotation %s goes from root %s to %s, but %s." % (
                                         rotation, old, new or "a new one", detail),
                                     "bring these clusters back to the mesh's root (site.yml installs it when no "
                                     "rotation is under way), or finish the rotation these clusters are in first",
                                     unknown, None, "istio_ca_rotation"))
    result["stages"] = stages
    done = min(stages.values()) if stages else 0
    if done >= len(STAGES):
        # Every cluster trusts the new root alone; what is left is making it the root the istio role keeps.
        result["todo"] = [STAGES[-1]]
        return result
    result["todo"] = list(STAGES[done:])
    # drop: only once workloads have had time to renew certificates from the new intermediates.
    if "issue" in result["todo"]:
        result["drop_at"] = now + drop_after
    else:
        issued = [parse_time(members[name].get("issued_at")) for name in stages]
        known = [when for when in issued if when is not None]
        result["drop_at"] = (max(known) if known else now) + drop_after
    return result


def stages_to_run(todo: t.Sequence[str], until: str, check_mode: bool, new_made: bool, drop_at: t.Optional[float],
                  now: float) -> t.List[str]:
    """The stages this run goes through: ``todo`` up to ``until``, without ``drop`` before ``drop_at``;
    in check mode the first one only, and none while the new root is still to be made."""
    run = list(todo)
    if until in run:
        run = run[:run.index(until) + 1]
    elif until in STAGES and run and STAGES.index(until) < STAGES.index(run[0]):
        run = []
    if "drop" in run and drop_at is not None and drop_at > now:
        run.remove("drop")
    if check_mode:
        return run[:1] if new_made else []
    return run


def stage_cacerts(stage: str, old: t.Mapping[str, str], new: t.Mapping[str, str]) -> t.Dict[str, str]:
    """The PEM texts of one cluster's ``cacerts`` once ``stage`` is done: ``{cert, key, chain, trusted}``
    (``chain``: the signer's chain above ``cert``, ending in its root; ``trusted``: root-cert.pem).

    ``old`` / ``new``: ``{chain, cert, key}``, the mesh's signer chain and this cluster's intermediate (PEM)."""
    old_root, new_root = chain_anchor(old["chain"]), chain_anchor(new["chain"])
    both = old_root + (new_root if new_root != old_root else "")
    if stage == "trust":
        return {"cert": old["cert"], "key": old["key"], "chain": old["chain"], "trusted": both}
    if stage == "issue":
        return {"cert": new["cert"], "key": new["key"], "chain": new["chain"], "trusted": both}
    if stage == "drop":
        return {"cert": new["cert"], "key": new["key"], "chain": new["chain"], "trusted": new_root}
    raise ValueError("unknown stage %r" % stage)


def summary(result: t.Mapping[str, t.Any], run: t.Sequence[str], now: float) -> str:
    """One paragraph a user reads before the stages run (in check mode: what would run)."""
    stages = result.get("stages") or {}
    where = ", ".join(["%s %s" % (name, _WHERE[stages[name]]) for name in sorted(stages)]
                      + ["%s has no cacerts yet (takes each stage's values)" % name for name in result.get("newcomers") or []])
    new = result.get("new") or "a root made for this rotation"
    if not result.get("todo"):
        return ("Istio CA rotation %s is finished: every cluster trusts root %s only (%s). Nothing to do."
                % (result["rotation"], new, where))
    text = ("Istio CA rotation %s: from root %s to %s; clusters: %s. Stages to run: %s."
            % (result["rotation"], result["old"], new, where, ", ".join(result["todo"])))
    if "drop" in result["todo"] and "drop" not in run and result.get("drop_at") and result["drop_at"] > now:
        text += (" The drop stage waits until %s, so that workloads renew their certificates from the new "
                 "intermediates first (istio_ca_rotate_drop_after; set it to 0 once every workload restarted)."
                 % format_time(result["drop_at"]))
    return text
