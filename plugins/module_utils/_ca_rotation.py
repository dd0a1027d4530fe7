# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rotating the shared Cilium CA of a network group in three stages, without a disconnect.

Private to the multicloud.interconnect collection: other collections must not import it,
its interface may change without notice.

Every component of a ClusterMesh verifies its peers against the CA certificates it trusts and
presents a certificate issued by its cluster's CA. Replacing ``cilium-ca`` everywhere at once
leaves, while the clusters change one by one, pairs whose certificates the other side does not
trust. The chart's CA trust bundle (``tls.caBundle``) takes the place of the certificates' own
``ca.crt`` wherever they are verified, so the rotation is:

1. ``trust``: every cluster trusts the old and the new CA; certificates are still issued by the old.
2. ``issue``: every cluster issues its certificates from the new CA; the trust stays on both.
3. ``drop``: the bundle is dropped, so every cluster trusts the new CA only (its certificates'
   ``ca.crt``), which issued every certificate by then.

A stage starts on any cluster only once every cluster of the group finished the one before, so at
every moment each cluster's certificate is issued by a CA every other cluster trusts. etcd and the
Cilium clients load the CAs they trust when they start; the Pods carry the stage in an annotation,
so each stage restarts them and the new trust is in force (and proven by kvstoremesh) before the
next stage. A chain (an intermediate CA, then the CAs above it) is one CA here: the first
certificate issues, all are trusted.

Where a rotation stands is read from the clusters, never from the controller: the Secret
``cilium-ca-rotation`` in every cluster of the group names the rotation and holds the new CA
(and the old certificate), and each cluster's issuer and bundle say which stage it finished. A
run that stopped anywhere is finished by the next one with the same rotation name; once finished,
the record keeps the name and drops the key, and the same name changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import re
import typing as t

from ansible_collections.multicloud.interconnect.plugins.module_utils._pem import bundle_fingerprints, pem_certificates, pem_fingerprint
from ansible_collections.multicloud.interconnect.plugins.module_utils._problems import Problem, problem

STAGES = ("trust", "issue", "drop")
# On the agents' and the clustermesh-apiserver's Pods while a rotation is under way.
ANNOTATION = "ca-rotation.multicloud.interconnect/stage"
RECORD = "cilium-ca-rotation"
# The ConfigMap the chart writes from tls.caBundle.content (its default name and key).
TRUST_BUNDLE = "cilium-root-ca.crt"
# The annotation shows the stage and the start of the new CA's fingerprint.
_FP_SHOWN = 23
# A rotation name is part of a path on the controller and of the new CA's common name.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def _text(value: t.Any) -> str:
    """A Secret data value (base64) as text; empty when absent or unreadable."""
    if not value:
        return ""
    try:
        return base64.b64decode(value, validate=False).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return ""


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def release_trust(release_values: t.Optional[t.Mapping[str, t.Any]]) -> t.Optional[str]:
    """The trust bundle (PEM) a Cilium release's values set, or None when the chart's bundle is off."""
    bundle = ((release_values or {}).get("tls") or {}).get("caBundle") or {}
    return bundle.get("content") if bundle.get("enabled") else None


def annotation_value(stage: str, new_fingerprint: str) -> str:
    return "%s %s" % (stage, (new_fingerprint or "")[:_FP_SHOWN])


def member_stage(issuer: t.Optional[str], trust: t.Sequence[str], old: t.Optional[str],
                 new: t.Optional[str]) -> t.Optional[int]:
    """How many stages one cluster finished, from the first fingerprint of its ``cilium-ca`` (``issuer``)
    and the fingerprints of its trust bundle (empty: no bundle); None when it runs neither CA."""
    if issuer and issuer == old and (not new or new not in trust):
        return 0
    if issuer and issuer == old:
        return 1
    if issuer and issuer == new and old in trust:
        return 2
    if issuer and issuer == new:
        return 3
    return None


def read_record(data: t.Optional[t.Mapping[str, t.Any]]) -> t.Optional[t.Dict[str, t.Any]]:
    """The ``cilium-ca-rotation`` Secret's data as ``{rotation, new, old, finished}`` (fingerprints)."""
    if not data:
        return None
    return {
        "rotation": _text(data.get("rotation")).strip(),
        "new": pem_fingerprint(data.get("ca.crt")),
        "old": pem_fingerprint(data.get("previous.crt")),
        "finished": not data.get("ca.key"),
    }


def record_data(rotation: str, new_cert: str, new_key: str, old_cert: str, finished: bool) -> t.Dict[str, str]:
    """Data of the ``cilium-ca-rotation`` Secret (values base64, certificates base64 of PEM as given).
    A finished record keeps ``ca.key`` empty rather than leaving it out, so that writing it replaces the key."""
    return {"rotation": _b64(rotation), "ca.crt": new_cert, "previous.crt": old_cert,
            "ca.key": "" if finished else new_key}


def plan(group: str, rotation: str, members: t.Mapping[str, t.Mapping[str, t.Any]],
         provided_cert: t.Optional[str] = None) -> t.Dict[str, t.Any]:
    """Where the rotation ``rotation`` of ``group`` stands and what a run must do (no keys inside).

    ``members``: inventory name -> ``{name, ca: cilium-ca Secret data or None, trust: the release's
    tls.caBundle content when enabled (PEM) or None, record: cilium-ca-rotation Secret data or None}``.
    ``provided_cert``: the new CA the user gives (base64 PEM, chain allowed); None to generate one.
    """
    problems: t.List[Problem] = []
    names = sorted(members)
    issuers = {name: pem_fingerprint((members[name].get("ca") or {}).get("ca.crt")) for name in names}
    trusts = {name: bundle_fingerprints(members[name].get("trust")) for name in names}
    records = {name: read_record(members[name].get("record")) for name in names}
    result: t.Dict[str, t.Any] = {"group": group, "rotation": rotation, "members": names, "old": None, "new": None,
                                  "source": None, "stages": {}, "todo": [], "problems": problems}
    if not rotation or not str(rotation).strip():
        problems.append(problem("CILIUM_CA_ROTATION_NAME", "network group %s: the rotation has no name." % group,
                                "set cilium_ca_rotation to a name for this rotation (a date or a change number); "
                                "a run with the same name finishes it or, once finished, changes nothing",
                                names, group, "cilium_ca_rotation"))
        return result
    if not NAME.match(str(rotation)):
        problems.append(problem("CILIUM_CA_ROTATION_NAME",
                                "network group %s: the rotation name %r is not a name of letters, digits, '.', '_' "
                                "and '-' (at most 63, starting with a letter or digit)." % (group, rotation),
                                "set cilium_ca_rotation to such a name, e.g. 2026-12 or CHG-1234", names, group,
                                "cilium_ca_rotation"))
        return result
    if not names:
        problems.append(problem("CILIUM_CA_ROTATION_GROUP", "network group %s has no Cilium cluster in this run." % group,
                                "name a network group whose clusters run Cilium", [], group, "cilium_ca_rotate_group"))
        return result
    missing = [name for name in names if not issuers[name]]
    if missing:
        problems.append(problem("CILIUM_CA_ROTATION_NOT_INSTALLED",
                                "network group %s: %s %s no cilium-ca Secret, so there is no CA to rotate from."
                                % (group, ", ".join(missing), "has" if len(missing) == 1 else "have"),
                                "run site.yml first: it installs Cilium with the group's shared CA",
                                missing, group, "cilium_ca_rotate_group"))
        return result
    # A rotation's first stage writes its record over the finished record of an earlier one, cluster
    # by cluster: records of finished rotations never compete with the one under way.
    unfinished = [(name, r) for name, r in sorted(records.items()) if r and not r["finished"]]
    if len({(r["rotation"], r["new"], r["old"]) for _name, r in unfinished}) > 1:
        detail = "; ".join("%s: rotation %s to %s" % (name, r["rotation"], r["new"]) for name, r in unfinished)
        problems.append(problem("CILIUM_CA_ROTATION_RECORDS_DIFFER",
                                "network group %s: the clusters record different unfinished rotations (%s)."
                                % (group, detail),
                                "delete the %s Secret in kube-system of the clusters whose record is not the one to "
                                "finish, then run again" % RECORD, [name for name, _r in unfinished], group,
                                "cilium_ca_rotation"))
        return result
    record = (unfinished[0][1] if unfinished
              else next((r for r in records.values() if r and r["rotation"] == rotation), None))
    if record and not record["finished"] and record["rotation"] != rotation:
        problems.append(problem("CILIUM_CA_ROTATION_IN_PROGRESS",
                                "network group %s: rotation %s (to CA %s) is not finished; rotation %s cannot start "
                                "before it ends." % (group, record["rotation"], record["new"], rotation),
                                "run ca_rotate.yml with cilium_ca_rotation=%s to finish it first" % record["rotation"],
                                names, group, "cilium_ca_rotation"))
        return result
    provided = pem_fingerprint(provided_cert) if provided_cert else None
    if provided_cert and not provided:
        problems.append(problem("CILIUM_CA_ROTATION_CERT_INVALID",
                                "network group %s: cilium_ca_rotate_cert holds no PEM certificate." % group,
                                "give the new CA certificate as base64 of its PEM (chain allowed, issuing CA first)",
                                names, group, "cilium_ca_rotate_cert"))
        return result
    if record and record["rotation"] == rotation:
        # Resumed, or finished earlier: the record in the clusters is the plan.
        result.update(old=record["old"], new=record["new"], source="record")
        if provided and provided != record["new"]:
            problems.append(problem("CILIUM_CA_ROTATION_CERT_DIFFERS",
                                    "network group %s: rotation %s rotates to CA %s, not to the cilium_ca_rotate_cert "
                                    "given (%s)." % (group, rotation, record["new"], provided),
                                    "give the same certificate, or none, to finish rotation %s; use another rotation "
                                    "name for another CA once it is finished" % rotation,
                                    names, group, "cilium_ca_rotate_cert"))
    else:
        running = sorted(set(issuers.values()))
        if len(running) > 1:
            detail = "; ".join("%s runs %s" % (name, fp) for name, fp in sorted(issuers.items()))
            problems.append(problem("CILIUM_CA_CONFLICT",
                                    "network group %s: the clusters run different Cilium CAs (%s); a rotation starts from "
                                    "one shared CA." % (group, detail),
                                    "run site.yml first (set cilium_ca_source_cluster to the cluster whose CA the others "
                                    "adopt)", names, group, "cilium_ca_source_cluster"))
            return result
        result.update(old=running[0], new=provided, source="provided" if provided else "generate")
        if provided and provided == running[0]:
            problems.append(problem("CILIUM_CA_ROTATION_SAME_CA",
                                    "network group %s: cilium_ca_rotate_cert is the CA the clusters already run (%s)."
                                    % (group, provided), "give the new CA, or none to have one generated",
                                    names, group, "cilium_ca_rotate_cert"))
            return result
    stages = {name: member_stage(issuers[name], trusts[name], result["old"], result["new"]) for name in names}
    unknown = [name for name in names if stages[name] is None]
    if unknown:
        detail = "; ".join("%s issues from %s and trusts %s" % (name, issuers[name], ", ".join(trusts[name]) or "its own CA")
                           for name in unknown)
        problems.append(problem("CILIUM_CA_ROTATION_STATE",
                                "network group %s: rotation %s goes from CA %s to %s, but %s." % (
                                    group, rotation, result["old"], result["new"] or "a new one", detail),
                                "bring these clusters back to one of the two CAs (site.yml adopts the group's CA), "
                                "then run again", unknown, group, "cilium_ca_rotation"))
        return result
    result["stages"] = stages
    done = min(stages.values())
    if record and record["rotation"] == rotation and record["finished"] and done < len(STAGES):
        behind = [name for name in names if stages[name] < len(STAGES)]
        problems.append(problem("CILIUM_CA_ROTATION_FINISHED",
                                "network group %s: rotation %s finished earlier (to CA %s), and its key is no longer "
                                "kept, but %s run%s CA %s again." % (group, rotation, record["new"], ", ".join(behind),
                                                                     "s" if len(behind) == 1 else "", record["old"]),
                                "start a new rotation under another cilium_ca_rotation name", behind, group,
                                "cilium_ca_rotation"))
        return result
    if done < len(STAGES):
        result["todo"] = list(STAGES[done:])
    elif not all(r and r["finished"] and r["rotation"] == rotation for r in records.values()):
        # Every cluster runs the new CA alone, but the record still holds the key, or a cluster lacks
        # it: the last stage writes the finished record (its values are already in place).
        result["todo"] = [STAGES[-1]]
    return result


def stages_to_run(todo: t.Sequence[str], until: str, check_mode: bool, generate: bool) -> t.List[str]:
    """The stages this run goes through: ``todo`` up to ``until``; in check mode the first one only (the
    later ones start from what it writes), and none when the new CA is still to be made."""
    run = list(todo)
    if until in run:
        run = run[:run.index(until) + 1]
    elif until in STAGES and run and STAGES.index(until) < STAGES.index(run[0]):
        run = []
    if check_mode:
        return [] if generate else run[:1]
    return run


def summary(result: t.Mapping[str, t.Any]) -> str:
    """One paragraph a user reads before the stages run (and in check mode, what would run)."""
    stages = result.get("stages") or {}
    where = ", ".join("%s %s" % (name, ("at the start", "trusts both", "issues from the new CA", "finished")[stages[name]])
                      for name in sorted(stages))
    new = result.get("new") or "a CA generated for this rotation"
    if not result.get("todo"):
        return ("Cilium CA rotation %s of network group %s is finished: every cluster runs CA %s only (%s). Nothing to do."
                % (result["rotation"], result["group"], new, where))
    return ("Cilium CA rotation %s of network group %s: from CA %s to %s; clusters: %s. Stages to run: %s."
            % (result["rotation"], result["group"], result["old"], new, where, ", ".join(result["todo"])))


def stage_ca(stage: str, old: t.Mapping[str, str], new: t.Mapping[str, str], new_fingerprint: str) -> t.Dict[str, t.Any]:
    """The CA values of one cluster once ``stage`` is done: ``{cert, key, trust, annotation}``.

    ``old`` / ``new``: ``{cert, key}`` (base64 PEM as the chart's tls.ca takes them; ``old`` needs no key
    after the first stage). ``trust``: PEM blocks of the bundle, empty for none.
    """
    old_certs = pem_certificates(old.get("cert"))
    both = old_certs + [c for c in pem_certificates(new.get("cert")) if c not in old_certs]
    if stage == "trust":
        return {"cert": old["cert"], "key": old["key"], "trust": both, "annotation": annotation_value(stage, new_fingerprint)}
    if stage == "issue":
        return {"cert": new["cert"], "key": new["key"], "trust": both, "annotation": annotation_value(stage, new_fingerprint)}
    if stage == "drop":
        return {"cert": new["cert"], "key": new["key"], "trust": [], "annotation": ""}
    raise ValueError("unknown stage %r" % stage)


def kept_ca(ca_secret: t.Mapping[str, str], trust: t.Optional[str],
            record: t.Optional[t.Mapping[str, t.Any]]) -> t.Dict[str, t.Any]:
    """What a cluster keeps while a rotation is under way and another playbook (site.yml) renders its
    values: its issuer and bundle as they are, with the annotation of the stage it finished."""
    info = read_record(record)
    blocks = pem_certificates(trust)
    kept = {"cert": ca_secret.get("ca.crt"), "key": ca_secret.get("ca.key"), "trust": blocks, "annotation": ""}
    if info and not info["finished"]:
        stage = member_stage(pem_fingerprint(ca_secret.get("ca.crt")), bundle_fingerprints(trust), info["old"], info["new"])
        if stage in (1, 2):
            kept["annotation"] = annotation_value(STAGES[stage - 1], info["new"])
    return kept


def values(ca: t.Optional[t.Mapping[str, t.Any]]) -> t.Dict[str, t.Any]:
    """The chart values of a cluster's CA: ``tls.ca``, the trust bundle and the stage annotations."""
    if not ca or not ca.get("cert") or not ca.get("key"):
        return {}
    out: t.Dict[str, t.Any] = {"tls": {"ca": {"cert": ca["cert"], "key": ca["key"]}}}
    if ca.get("trust"):
        out["tls"]["caBundle"] = {"enabled": True, "content": "".join(ca["trust"])}
    if ca.get("annotation"):
        out["podAnnotations"] = {ANNOTATION: ca["annotation"]}
        out["clustermesh"] = {"apiserver": {"podAnnotations": {ANNOTATION: ca["annotation"]}}}
    return out


def trust_mismatches(members: t.Mapping[str, t.Mapping[str, t.Any]]) -> t.Dict[str, t.List[str]]:
    """For each cluster of one group, the peers that cannot verify it or that it cannot verify.

    ``members``: name -> ``{issuer: fingerprint or None, trust: fingerprints it trusts}``. A cluster
    without a bundle trusts the certificates of its own ``ca.crt``. This is what the read-back and the
    status report call a shared CA, during a rotation as outside one.
    """
    result: t.Dict[str, t.List[str]] = {}
    for name, own in members.items():
        bad = []
        for peer, other in members.items():
            if peer == name:
                continue
            if not own.get("issuer") or not other.get("issuer") or own["issuer"] not in (other.get("trust") or []) \
                    or other["issuer"] not in (own.get("trust") or []):
                bad.append(peer)
        result[name] = sorted(bad)
    return result
