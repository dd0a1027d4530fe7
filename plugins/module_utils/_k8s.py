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

import importlib.util
import os
import typing as t

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

# The kubernetes library is imported by the functions that use it, not here: importing it costs
# about 0.2 s of CPU (every API model), a third of a module run, and the per-cluster stage modules
# reach the API through _kube_api without it.
HAS_KUBERNETES = importlib.util.find_spec("kubernetes") is not None


def __getattr__(name: str) -> t.Any:
    # ``from _k8s import ApiException``: the library's exception for the modules that use the library.
    if name == "ApiException":
        try:
            from kubernetes.client.rest import ApiException
        except ImportError:  # pragma: no cover - reported through missing_required_lib
            return Exception
        return ApiException
    raise AttributeError(name)


# Options of every module that talks to clusters (doc fragment multicloud.interconnect.cluster_access).
# A kubeconfig may be a path, which Ansible must not mask in output, or a mapping with credentials,
# which the modules never return.
# The K8S_AUTH_* variables (what an AWX credential injects), as kubernetes.core reads them; the
# readers (api_client, _kube_api) fall back to them too, for entries of multi-cluster options.
ACCESS_ARGS: t.Dict[str, t.Dict[str, t.Any]] = {
    "kubeconfig": {"type": "raw", "no_log": False, "fallback": (env_fallback, ["K8S_AUTH_KUBECONFIG"])},
    "context": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_CONTEXT"])},
}


def with_access_defaults(entries: t.Any, params: t.Mapping[str, t.Any], kubeconfig_key: str = "kubeconfig",
                         context_key: str = "context") -> t.Any:
    """Copies of ``entries`` (a mapping or list of cluster entries) where the module's own
    ``kubeconfig`` / ``context`` fill what an entry leaves empty. The ``K8S_AUTH_*`` variables
    come after both, in ``api_client``."""
    def fill(entry: t.Any) -> t.Any:
        if not isinstance(entry, dict):
            return entry
        entry = dict(entry)
        for key, option in ((kubeconfig_key, "kubeconfig"), (context_key, "context")):
            if not entry.get(key) and params.get(option):
                entry[key] = params[option]
        return entry

    if isinstance(entries, dict):
        return {name: fill(entry) for name, entry in entries.items()}
    if isinstance(entries, list):
        return [fill(entry) for entry in entries]
    return entries


def cluster_module(argument_spec: t.Mapping[str, t.Any], entries: t.Iterable[str] = ("clusters",),
                   kubeconfig_key: str = "kubeconfig", context_key: str = "context") -> AnsibleModule:
    """The AnsibleModule of a module that talks to clusters: its options plus ACCESS_ARGS, check mode
    supported, the module-level ``kubeconfig`` / ``context`` filled into every entry of the options
    named in ``entries`` that names none, and a clear failure without the kubernetes library."""
    module = AnsibleModule(argument_spec=dict(ACCESS_ARGS, **argument_spec), supports_check_mode=True)
    for option in entries:
        module.params[option] = with_access_defaults(module.params[option], module.params, kubeconfig_key, context_key)
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"))
    return module


def env_fallback_value(name: str) -> t.Optional[str]:
    value = os.environ.get(name)
    return value or None


class ClusterError(Exception):
    """A cluster could not be reached or refused a request; the message names the cluster."""

    def __init__(self, cluster: str, message: str, status: t.Optional[int] = None) -> None:
        super().__init__("cluster %s: %s" % (cluster, message))
        self.cluster = cluster
        self.status = status  # the API's HTTP status, when it answered


def describe_api_exception(err: t.Any) -> str:
    """The library's ApiException or _kube_api's ApiError (which carries the API's Status message) in a sentence."""
    status = getattr(err, "status", None)
    reason = getattr(err, "reason", None) or str(err)
    message = getattr(err, "message", "")
    detail = ": " + message if message else ""
    if status in (401, 403):
        return "not authorised (%s %s); check the credentials in its kubeconfig%s" % (status, reason, detail)
    if status:
        return "%s %s%s" % (status, reason, detail)
    return str(err)


def api_client(cluster: str, kubeconfig: t.Any = None, context: t.Optional[str] = None) -> t.Any:
    """An ApiClient for one cluster.

    ``kubeconfig`` is a path, a kubeconfig mapping, or None for ``K8S_AUTH_KUBECONFIG``, then
    ``KUBECONFIG`` / ``~/.kube/config``; ``context`` falls back to ``K8S_AUTH_CONTEXT``.
    """
    try:
        from kubernetes import client as k8s_client, config as k8s_config
    except ImportError as err:
        raise ClusterError(cluster, "the kubernetes Python library is missing: %s" % err) from err
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


def _short(err: BaseException) -> str:
    text = str(err)
    return text if len(text) < 300 else text[:297] + "..."
