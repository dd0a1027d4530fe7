# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the meshes' own components report about their remote clusters.

Private to the multicloud.interconnect collection: other collections must not import it,
its interface may change without notice.

Pure and stdlib-only. The objects in the API say what a mesh is told; only its components say
whether they connected. Two of them publish that on their metrics port:

- kvstoremesh (a container of Cilium's clustermesh-apiserver Pod), port ``kvmesh-metrics``
  (9964): ``cilium_kvstoremesh_remote_cluster_readiness_status{target_cluster="<peer>"}`` is 1
  once the peer's clustermesh-apiserver answered and its data is synchronised;
- istiod, port ``http-monitoring`` (15014):
  ``istiod_remote_cluster_sync_status{cluster="<id>",status="synced"}`` is 1 once the remote
  secret's API server answered and istiod's informers for it are synced.

The verdict for one cluster compares the remote clusters the inventory expects with what the
component reports. A component that could not be read gives ``unknown`` with the reason, never
``connected``.
"""

from __future__ import annotations

import re
import typing as t

CONNECTED = "connected"
NOT_CONNECTED = "not connected"
UNKNOWN = "unknown"

KVSTOREMESH_READY = "cilium_kvstoremesh_remote_cluster_readiness_status"
ISTIOD_SYNC = "istiod_remote_cluster_sync_status"


def compare_names(expected: t.Iterable[str], configured: t.Optional[t.Iterable[str]]) -> t.Dict[str, t.Any]:
    """The peers (remote clusters, members) a cluster's objects name, against the ones expected.

    ``configured`` None: not read (every expected name is missing, none is stale). The one rule the
    status report and ``cilium_mesh_info`` count peers by.
    """
    expected_set = set(expected)
    if configured is None:
        return {"expected": sorted(expected_set), "configured": None, "missing": sorted(expected_set), "stale": []}
    configured_set = set(configured)
    return {
        "expected": sorted(expected_set),
        "configured": sorted(configured_set),
        "missing": sorted(expected_set - configured_set),
        "stale": sorted(configured_set - expected_set),
    }


# Where to read each component: namespace is the technique's, the rest is the charts'.
KVSTOREMESH = {"component": "kvstoremesh", "label_selector": "k8s-app=clustermesh-apiserver",
               "container": "kvstoremesh", "port_name": "kvmesh-metrics", "port": 9964}
ISTIOD = {"component": "istiod", "label_selector": "app=istiod",
          "container": "discovery", "port_name": "http-monitoring", "port": 15014}

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> t.List[t.Tuple[str, t.Dict[str, str], float]]:
    """Samples of a Prometheus text exposition: ``(name, labels, value)``; comments skipped."""
    samples = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if not match:
            continue
        try:
            value = float(match.group(4))
        except ValueError:
            continue
        labels = {k: v.replace('\\"', '"').replace("\\\\", "\\") for k, v in _LABEL.findall(match.group(3) or "")}
        samples.append((match.group(1), labels, value))
    return samples


def kvstoremesh_remotes(text: str) -> t.Dict[str, bool]:
    """Remote cluster -> ready, as kvstoremesh reports it."""
    return {labels["target_cluster"]: value == 1 for name, labels, value in parse_metrics(text)
            if name == KVSTOREMESH_READY and "target_cluster" in labels}


def istiod_remotes(text: str) -> t.Dict[str, str]:
    """Remote cluster ID -> sync state (synced, syncing, timeout, closed), as istiod reports it."""
    states: t.Dict[str, str] = {}
    for name, labels, value in parse_metrics(text):
        if name == ISTIOD_SYNC and value == 1 and labels.get("cluster") and labels.get("cluster_type", "remote") == "remote":
            states[labels["cluster"]] = labels.get("status", "")
    return states


def verdict(component: str, expected: t.Iterable[str], reported: t.Optional[t.Mapping[str, t.Any]],
            reason: t.Optional[str] = None, good: t.Any = True) -> t.Dict[str, t.Any]:
    """Compare the remote clusters the inventory expects with what ``component`` reports.

    ``reported`` maps remote cluster -> state (``good`` is the state that counts as connected);
    ``None`` means the component could not be read, and ``reason`` says why.
    """
    expected_list = sorted(set(expected))
    if reported is None:
        return {"component": component, "state": UNKNOWN, "reason": reason or "not read",
                "expected": expected_list, "connected": [], "not_connected": [], "unexpected": []}
    connected = sorted(c for c in expected_list if reported.get(c) == good)
    not_connected = sorted(c for c in expected_list if reported.get(c) != good)
    unexpected = sorted(c for c in reported if c not in expected_list)
    details = ["%s %s" % (c, _describe(reported.get(c))) for c in not_connected]
    details += ["%s is a remote cluster of %s but not expected by the inventory" % (c, component) for c in unexpected]
    return {"component": component, "state": CONNECTED if not not_connected else NOT_CONNECTED,
            "reason": "; ".join(details) or None, "expected": expected_list, "connected": connected,
            "not_connected": not_connected, "unexpected": unexpected,
            "reported": {k: reported[k] for k in sorted(reported)}}


def _describe(state: t.Any) -> str:
    if state is None:
        return "not reported"
    if state is False:
        return "not ready"
    return str(state)


def link_state(*verdicts_and_peers: t.Tuple[t.Optional[t.Mapping[str, t.Any]], str]) -> t.Tuple[str, t.Optional[str]]:
    """State of a link from each side's verdict about the other: ``(verdict, peer)`` pairs.

    Connected only when every side reports its peer connected; not connected as soon as one
    side reports it is not; unknown otherwise (a side could not be read), with the reasons.
    """
    reasons = []
    unknown = False
    for item, peer in verdicts_and_peers:
        if not item or item.get("state") == UNKNOWN:
            unknown = True
            reasons.append("%s unknown: %s" % ((item or {}).get("component", "component"), (item or {}).get("reason") or "not read"))
        elif peer not in item.get("connected", []):
            return NOT_CONNECTED, "%s reports %s %s" % (item["component"], peer, _describe((item.get("reported") or {}).get(peer)))
    if unknown:
        return UNKNOWN, "; ".join(reasons)
    return CONNECTED, None


def pod_metrics_port(pod: t.Mapping[str, t.Any], container: str, port_name: str, default: int) -> int:
    """The metrics port the chart gave the container (a values change may move it)."""
    for entry in ((pod.get("spec") or {}).get("containers") or []):
        if entry.get("name") != container:
            continue
        for port in entry.get("ports") or []:
            if port.get("name") == port_name and port.get("containerPort"):
                return int(port["containerPort"])
    return default
