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

from ansible_collections.multicloud.interconnect.plugins.module_utils._runtime import (
    ISTIOD,
    KVSTOREMESH,
    istiod_remotes,
    kvstoremesh_remotes,
    pod_metrics_port,
)

try:
    from kubernetes import client as k8s_client
    from kubernetes.client.rest import ApiException
except ImportError:  # the callers report the missing library
    pass


def read_metrics(api: t.Any, namespace: str, spec: t.Mapping[str, t.Any],
                 timeout: int) -> t.Tuple[t.Optional[str], t.Optional[str]]:
    """``(metrics text, None)`` from the newest Running Pod of the component, or ``(None, reason)``."""
    core = k8s_client.CoreV1Api(api)
    try:
        pods = core.list_namespaced_pod(namespace, label_selector=spec["label_selector"], _request_timeout=timeout)
    except ApiException as err:
        return None, "cannot list %s Pods in %s: %s %s" % (spec["component"], namespace, err.status, err.reason)
    running = [p for p in pods.items if (p.status.phase == "Running" and p.status.pod_ip
                                         and not p.metadata.deletion_timestamp)]
    if not running:
        return None, "no Running %s Pod (%s) in namespace %s" % (spec["component"], spec["label_selector"], namespace)
    running.sort(key=lambda p: p.metadata.creation_timestamp, reverse=True)
    reasons = []
    for pod in running:
        port = pod_metrics_port(api.sanitize_for_serialization(pod), spec["container"], spec["port_name"], spec["port"])
        try:
            resp = core.connect_get_namespaced_pod_proxy_with_path(
                "%s:%d" % (pod.metadata.name, port), namespace, "metrics",
                _preload_content=False, _request_timeout=timeout)
            return resp.data.decode("utf-8", "replace"), None
        except ApiException as err:
            body = (err.body or b"")
            if isinstance(body, bytes):
                body = body.decode("utf-8", "replace")
            detail = " ".join(str(body).split())[:160]
            reasons.append("Pod %s port %d: %s %s %s" % (pod.metadata.name, port, err.status, err.reason, detail))
        except Exception as err:  # a dropped connection: say so, try the next Pod
            reasons.append("Pod %s port %d: %s" % (pod.metadata.name, port, err))
    return None, "%s metrics not readable: %s" % (spec["component"], "; ".join(reasons))


def kvstoremesh_report(api: t.Any, namespace: str, timeout: int) -> t.Tuple[t.Optional[t.Dict[str, bool]], t.Optional[str]]:
    """Remote cluster -> ready as kvstoremesh reports it, or ``(None, reason)``."""
    text, reason = read_metrics(api, namespace, KVSTOREMESH, timeout)
    if text is None:
        return None, reason
    return kvstoremesh_remotes(text), None


def istiod_report(api: t.Any, namespace: str, timeout: int) -> t.Tuple[t.Optional[t.Dict[str, str]], t.Optional[str]]:
    """Remote cluster -> sync state as istiod reports it, or ``(None, reason)``."""
    text, reason = read_metrics(api, namespace, ISTIOD, timeout)
    if text is None:
        return None, reason
    return istiod_remotes(text), None
