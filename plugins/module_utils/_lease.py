# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mesh lease: one changing run at a time on a set of clusters.

Private to the multicloud.interconnect collection: other collections must not import it,
its interface may change without notice.

A run that writes to clusters (site.yml, a join, a removal, an address update, a kernel roll)
holds a ``coordination.k8s.io/v1`` Lease in every cluster it changes, named
``multicloud-interconnect`` in ``kube-system``: holder = who and which run, renewed while the
run goes on, deleted at its end, and stale on its own ``leaseDurationSeconds`` after its last
renewal when the controller died. Another run finds it held and stops before any change. Runs
take the Leases cluster by cluster in one order (the sorted cluster names), so of two runs
starting at once the one that wins the first cluster wins them all, and the other stops having
taken none.

Pure and stdlib-only: the decisions (take, renew, refuse, release) are unit-tested here; the
module reads and writes the Lease objects.
"""

from __future__ import annotations

import datetime
import os
import re
import socket
import typing as t

from ansible_collections.multicloud.interconnect.plugins.module_utils._problems import Problem, problem

NAME = "multicloud-interconnect"
NAMESPACE = "kube-system"
DEFAULT_DURATION = 900
# Kubernetes MicroTime, as the API server writes it.
_MICRO = "%Y-%m-%dT%H:%M:%S.%fZ"


_HOLDER = re.compile(r"^(?P<user>[^@\s]+)@(?P<host>\S+)(?: job (?P<job>\S+))?(?: pid (?P<pid>\d+))? run \S+$")


def holder_identity(user: t.Any, pid: int, job: t.Any = None, host: t.Optional[str] = None,
                    run: t.Optional[str] = None) -> str:
    """``alice@ctl-1 [job 4711 ]pid 812 run 3f2a9c1d``: who, where, which AWX job, the ansible-playbook
    process, and a run ID that makes every run its own holder."""
    import uuid  # pylint: disable=import-outside-toplevel

    who = str(user or "").strip() or "unknown"
    job_part = " job %s" % job if job not in (None, "") else ""
    return "%s@%s%s pid %d run %s" % (who, host or socket.gethostname(), job_part, int(pid),
                                      run or uuid.uuid4().hex[:8])


def holder_alive(holder: str, host: t.Optional[str] = None) -> t.Optional[bool]:
    """Whether the run that holds a lease is still running: known only for a run of this controller
    (same host name, its ansible-playbook process still there); None for any other holder."""
    match = _HOLDER.match(holder or "")
    if not match or not match.group("pid") or match.group("host") != (host or socket.gethostname()):
        return None
    try:
        with open("/proc/%s/cmdline" % match.group("pid"), "rb") as handle:
            return b"ansible" in handle.read()
    except OSError:
        return False if os.path.isdir("/proc") else None


def micro_time(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime(_MICRO)


def parse_time(text: t.Any) -> t.Optional[datetime.datetime]:
    """A MicroTime or an RFC 3339 time with seconds only; None when absent or unreadable."""
    if not text:
        return None
    for pattern in (_MICRO, "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.datetime.strptime(str(text), pattern).replace(tzinfo=datetime.timezone.utc)
        except ValueError:
            continue
    return None


def expiry(lease: t.Mapping[str, t.Any]) -> t.Optional[datetime.datetime]:
    """When a held lease goes stale: its last renewal (or acquisition) plus its duration."""
    spec = lease.get("spec") or {}
    last = parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime"))
    if last is None:
        return None
    return last + datetime.timedelta(seconds=int(spec.get("leaseDurationSeconds") or DEFAULT_DURATION))


def body(holder: str, duration: int, now: datetime.datetime, acquired: t.Optional[str] = None,
         resource_version: t.Optional[str] = None, transitions: int = 0) -> t.Dict[str, t.Any]:
    metadata: t.Dict[str, t.Any] = {"name": NAME, "namespace": NAMESPACE,
                                    "labels": {"app.kubernetes.io/managed-by": "multicloud.interconnect"}}
    if resource_version:
        metadata["resourceVersion"] = resource_version  # the write fails (409) if someone wrote in between
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata,
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": int(duration),
                     "acquireTime": acquired or micro_time(now), "renewTime": micro_time(now),
                     "leaseTransitions": transitions}}


def decide(cluster: str, lease: t.Optional[t.Mapping[str, t.Any]], holder: str, now: datetime.datetime,
           break_held: bool = False, alive: t.Optional[bool] = None) -> t.Dict[str, t.Any]:
    """What a run that wants the lease of ``cluster`` does: ``create``, ``renew``, ``take`` or ``refuse``.

    ``take``: nobody holds it (released), it went stale, its run has ended (``alive`` False: a run of
    this controller whose process is gone, as after a failed run), or ``break_held`` (the user's word
    that its holder is gone). ``refuse`` carries the Problem that names the holder and the expiry.
    """
    if lease is None:
        return {"cluster": cluster, "action": "create"}
    spec = lease.get("spec") or {}
    current = spec.get("holderIdentity") or ""
    if current == holder:
        return {"cluster": cluster, "action": "renew"}
    ends = expiry(lease)
    if not current or ends is None or ends <= now:
        return {"cluster": cluster, "action": "take", "previous": current or None,
                "why": "stale since %s" % micro_time(ends) if current and ends else "free"}
    if alive is False:
        return {"cluster": cluster, "action": "take", "previous": current,
                "why": "its run on this controller has ended"}
    if break_held:
        return {"cluster": cluster, "action": "take", "previous": current, "why": "broken by mesh_lease_break"}
    left = int((ends - now).total_seconds())
    return {"cluster": cluster, "action": "refuse", "holder": current, "expires": micro_time(ends),
            "problem": held_problem(cluster, current, spec.get("acquireTime"), ends, left)}


def held_problem(cluster: str, holder: str, acquired: t.Any, ends: datetime.datetime, left: int) -> Problem:
    return problem(
        "MESH_LEASE_HELD",
        "cluster %s is being changed by another run: %s (since %s); its lease expires at %s unless renewed (in %d s)."
        % (cluster, holder, acquired or "?", micro_time(ends), left),
        "wait for that run to end and run again; if it is gone (a controller that died), wait for the expiry or run "
        "again with -e mesh_lease_break=true", [cluster], field="mesh_lease_break")


def conflict_problem(cluster: str, detail: str) -> Problem:
    return problem(
        "MESH_LEASE_RACE",
        "cluster %s: another run took the lease at the same moment (%s)." % (cluster, detail),
        "run again once the other run has ended", [cluster], field="mesh_lease_break")


def release_action(lease: t.Optional[t.Mapping[str, t.Any]], holder: str) -> str:
    """``delete`` a lease this run holds; ``keep`` one someone else took meanwhile; ``none`` when absent."""
    if lease is None:
        return "none"
    return "delete" if (lease.get("spec") or {}).get("holderIdentity") == holder else "keep"
