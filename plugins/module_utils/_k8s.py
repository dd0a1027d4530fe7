# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes API access shared by every module that talks to clusters.

Private to the multicloud.interconnect collection: other collections must not import it,
its interface may change without notice.

One argument spec (with the ``K8S_AUTH_*`` environment fallback AWX credentials rely on), one
way to build a client per cluster, and one exception type that names the cluster, so a failure
in the middle of a multi-cluster run says which cluster and why.
"""

from __future__ import annotations

import os
import typing as t

try:
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.client.rest import ApiException

    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None
except ImportError as _import_error:  # pragma: no cover - reported through missing_required_lib
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = _import_error
    ApiException = Exception  # type: ignore[assignment,misc]


def env_fallback_value(name: str) -> t.Optional[str]:
    value = os.environ.get(name)
    return value or None


class ClusterError(Exception):
    """A cluster could not be reached or refused a request; the message names the cluster."""

    def __init__(self, cluster: str, message: str) -> None:
        super().__init__("cluster %s: %s" % (cluster, message))
        self.cluster = cluster


def describe_api_exception(err: t.Any) -> str:
    status = getattr(err, "status", None)
    reason = getattr(err, "reason", None) or str(err)
    if status in (401, 403):
        return "not authorised (%s %s); check the credentials in its kubeconfig" % (status, reason)
    if status:
        return "%s %s" % (status, reason)
    return str(err)


def api_client(cluster: str, kubeconfig: t.Any = None, context: t.Optional[str] = None) -> t.Any:
    """An ApiClient for one cluster.

    ``kubeconfig`` is a path, a kubeconfig mapping, or None for ``K8S_AUTH_KUBECONFIG``, then
    ``KUBECONFIG`` / ``~/.kube/config``; ``context`` falls back to ``K8S_AUTH_CONTEXT``.
    """
    if not HAS_KUBERNETES:
        raise ClusterError(cluster, "the kubernetes Python library is missing: %s" % KUBERNETES_IMPORT_ERROR)
    kubeconfig = kubeconfig or env_fallback_value("K8S_AUTH_KUBECONFIG")
    context = context or env_fallback_value("K8S_AUTH_CONTEXT")
    try:
        if isinstance(kubeconfig, dict):
            configuration = k8s_client.Configuration()
            loader = k8s_config.kube_config.KubeConfigLoader(config_dict=kubeconfig, active_context=context)
            loader.load_and_set(configuration)
            return k8s_client.ApiClient(configuration)
        path = os.path.expanduser(str(kubeconfig)) if kubeconfig else None
        return k8s_config.new_client_from_config(config_file=path, context=context, persist_config=False)
    except Exception as err:  # the loader raises ConfigException, IOError, KeyError ...
        raise ClusterError(cluster, "cannot load kubeconfig %s (context %s): %s"
                           % (kubeconfig or "default", context or "current", err)) from err


def server_version(cluster: str, api: t.Any, timeout: float = 10) -> str:
    """The cluster's gitVersion; raises ClusterError when it cannot be reached."""
    try:
        info = k8s_client.VersionApi(api).get_code(_request_timeout=timeout)
    except Exception as err:  # ApiException, or urllib3 connection errors that carry the endpoint
        if isinstance(err, ApiException) and getattr(err, "status", None):
            raise ClusterError(cluster, "API server answered %s" % describe_api_exception(err)) from err
        raise ClusterError(cluster, "API server unreachable: %s" % _short(err)) from err
    return info.git_version


def _short(err: BaseException) -> str:
    text = str(err)
    return text if len(text) < 300 else text[:297] + "..."
