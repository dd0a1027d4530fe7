# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read the meshes' components through the Kubernetes API (the Pod proxy subresource).

Private to the multicloud.interconnect collection: other collections must not import it,
its interface may change without notice.

``GET /api/v1/namespaces/<ns>/pods/<pod>:<port>/proxy/metrics`` reaches a component's metrics
port with ordinary RBAC (``pods/proxy`` get): no exec, no port-forward, no route from the
controller to the Pod network. What the text means is decided in ``_runtime``.
"""

from __future__ import annotations

import typing as t

from ansible_collections.multicloud.interconnect.plugins.module_utils._kube_api import Api, ApiError, namespaced_path
from ansible_collections.multicloud.interconnect.plugins.module_utils._runtime import (
    ISTIOD,
    KVSTOREMESH,
    istiod_remotes,
    kvstoremesh_remotes,
    pod_metrics_port,
)


def read_metrics(api: Api, namespace: str, spec: t.Mapping[str, t.Any]) -> t.Tuple[t.Optional[str], t.Optional[str]]:
    """``(metrics text, None)`` from the newest Running Pod of the component, or ``(None, reason)``.

    ``api``: ``_kube_api.connect(...)``, whose timeout bounds each read."""
    pods_path = namespaced_path(namespace, "pods")
    try:
        pods = api.request("%s Pods" % spec["component"], "GET", pods_path,
                           query=[("labelSelector", spec["label_selector"])]) or {}
    except ApiError as err:
        return None, "cannot list %s Pods in %s: %s %s" % (spec["component"], namespace, err.status, err.reason)
    running = [p for p in pods.get("items") or []
               if (p.get("status") or {}).get("phase") == "Running" and (p.get("status") or {}).get("podIP")
               and not p["metadata"].get("deletionTimestamp")]
    if not running:
        return None, "no Running %s Pod (%s) in namespace %s" % (spec["component"], spec["label_selector"], namespace)
    # RFC 3339 times in UTC ("...Z"), so the newest sorts last as text.
    running.sort(key=lambda p: p["metadata"].get("creationTimestamp") or "", reverse=True)
    reasons = []
    for pod in running:
        name = pod["metadata"]["name"]
        port = pod_metrics_port(pod, spec["container"], spec["port_name"], spec["port"])
        try:
            text = api.request("%s metrics" % spec["component"], "GET",
                               namespaced_path(namespace, "pods", name) + ":%d/proxy/metrics" % port, raw=True)
            return (text or b"").decode("utf-8", "replace"), None
        except ApiError as err:
            detail = " ".join(str(err.message).split())[:160]
            reasons.append("Pod %s port %d: %s %s %s" % (name, port, err.status, err.reason, detail))
        except Exception as err:  # a dropped connection: say so, try the next Pod
            reasons.append("Pod %s port %d: %s" % (name, port, err))
    return None, "%s metrics not readable: %s" % (spec["component"], "; ".join(reasons))


def kvstoremesh_report(api: Api, namespace: str) -> t.Tuple[t.Optional[t.Dict[str, bool]], t.Optional[str]]:
    """Remote cluster -> ready as kvstoremesh reports it, or ``(None, reason)``."""
    text, reason = read_metrics(api, namespace, KVSTOREMESH)
    if text is None:
        return None, reason
    return kvstoremesh_remotes(text), None


def istiod_report(api: Api, namespace: str) -> t.Tuple[t.Optional[t.Dict[str, str]], t.Optional[str]]:
    """Remote cluster -> sync state as istiod reports it, or ``(None, reason)``."""
    text, reason = read_metrics(api, namespace, ISTIOD)
    if text is None:
        return None, reason
    return istiod_remotes(text), None
