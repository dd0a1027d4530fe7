# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The status report's reads: what each cluster of the Topology shows, once.

Private to the multicloud.interconnect collection: other collections must not import it,
its interface may change without notice.

Identity and peers of Cilium (``cilium-config``, ``cilium-clustermesh``, ``cilium-ca``), what the
real kvstoremesh and istiod report, Kosmos ``Cluster`` objects, Istio remote secrets and the
east-west gateways' addresses. The comparison with the Topology is the pure ``_status``.
"""

from __future__ import annotations

import typing as t

from ansible_collections.multicloud.interconnect.plugins.module_utils._ca_rotation import TRUST_BUNDLE
from ansible_collections.multicloud.interconnect.plugins.module_utils._cilium import clustermesh_secret_peers
from ansible_collections.multicloud.interconnect.plugins.module_utils._pem import bundle_fingerprints, pem_fingerprint
from ansible_collections.multicloud.interconnect.plugins.module_utils._k8s import ClusterError, api_client, server_version
from ansible_collections.multicloud.interconnect.plugins.module_utils._runtime_k8s import istiod_report, kvstoremesh_report
from ansible_collections.multicloud.interconnect.plugins.module_utils._status import ISTIO_CLUSTER_ANNOTATION, Observed
from ansible_collections.multicloud.interconnect.plugins.module_utils._topology import Cluster

try:
    from kubernetes import client as k8s_client
    from kubernetes.client.rest import ApiException
except ImportError:  # the module reports it through missing_required_lib before any read
    k8s_client = None

    class ApiException(Exception):  # type: ignore[no-redef]
        """Stands in for the library's, so the handlers below still parse."""

        status = None
        reason = None


def _absent_is_none(call):
    try:
        return call()
    except ApiException as err:
        if err.status == 404:
            return None
        raise


def observe(cluster: Cluster, params: t.Mapping[str, t.Any]) -> Observed:
    """What ``cluster`` (of the Topology) shows; an unreachable cluster or a failed read is reported, not raised.

    ``params``: ``timeout``, ``cilium_namespace`` and ``istio_namespace``.
    """
    name = cluster.name
    timeout = params["timeout"]
    try:
        api = api_client(name, cluster.kubeconfig, cluster.context)
        version = server_version(name, api, timeout)
    except ClusterError as err:
        return Observed(reachable=False, error=str(err))
    core = k8s_client.CoreV1Api(api)
    seen = Observed(version=version)
    try:
        config = _absent_is_none(lambda: core.read_namespaced_config_map(
            "cilium-config", params["cilium_namespace"], _request_timeout=timeout))
        if config is not None:
            seen.cilium_cluster_name = (config.data or {}).get("cluster-name")
            seen.cilium_cluster_id = (config.data or {}).get("cluster-id")
        mesh = _absent_is_none(lambda: core.read_namespaced_secret(
            "cilium-clustermesh", params["cilium_namespace"], _request_timeout=timeout))
        if mesh is not None:
            seen.cilium_peers = clustermesh_secret_peers(mesh.data, name)
        elif config is not None:
            seen.cilium_peers = []
        if config is not None:
            seen.kvstoremesh_remotes, seen.kvstoremesh_reason = kvstoremesh_report(api, params["cilium_namespace"], timeout)
        ca = _absent_is_none(lambda: core.read_namespaced_secret(
            "cilium-ca", params["cilium_namespace"], _request_timeout=timeout))
        if ca is not None and (ca.data or {}).get("ca.crt"):
            seen.cilium_ca_fingerprint = pem_fingerprint(ca.data["ca.crt"])
            bundle = _absent_is_none(lambda: core.read_namespaced_config_map(
                TRUST_BUNDLE, params["cilium_namespace"], _request_timeout=timeout))
            seen.cilium_ca_trust = bundle_fingerprints((bundle.data or {}).get("ca.crt") if bundle else None) \
                or bundle_fingerprints(ca.data["ca.crt"])
        custom = k8s_client.CustomObjectsApi(api)
        kosmos = _absent_is_none(lambda: custom.list_cluster_custom_object(
            "kosmos.io", "v1alpha1", "clusters", _request_timeout=timeout))
        if kosmos is not None:
            seen.kosmos_clusters = {
                item["metadata"]["name"]: ((item.get("spec") or {}).get("clusterLinkOptions") or {}).get("networkType")
                for item in kosmos.get("items", [])
            }
        secrets = _absent_is_none(lambda: core.list_namespaced_secret(
            params["istio_namespace"], label_selector="istio/multiCluster=true", _request_timeout=timeout))
        if secrets is not None:
            seen.istio_remote_secrets = sorted(
                (s.metadata.annotations or {}).get(ISTIO_CLUSTER_ANNOTATION)
                or s.metadata.name.replace("istio-remote-secret-", "")
                for s in secrets.items
            )
        if secrets is not None and secrets.items:
            seen.istiod_remotes, seen.istiod_reason = istiod_report(api, params["istio_namespace"], timeout)
        elif secrets is not None:
            seen.istiod_reason = "no remote secret in %s: istiod has no remote cluster to report" % params["istio_namespace"]
        services = _absent_is_none(lambda: core.list_namespaced_service(
            params["istio_namespace"], label_selector="topology.istio.io/network", _request_timeout=timeout))
        seen.gateway_addresses = sorted(_gateway_addresses(services.items if services else []))
    except ApiException as err:
        seen.reachable = False
        seen.error = "cluster %s: API answered %s %s" % (name, err.status, err.reason)
    except Exception as err:  # connection dropped in the middle: report it, do not hide the rest
        seen.reachable = False
        seen.error = "cluster %s: %s" % (name, err)
    return seen


def _gateway_addresses(services):
    for service in services:
        ports = [p for p in (service.spec.ports or []) if p.port == 15443]
        ingress = ((service.status.load_balancer or {}) and service.status.load_balancer.ingress) or []
        for entry in ingress:
            yield "%s:15443" % (entry.ip or entry.hostname)
        if not ingress and ports and ports[0].node_port:
            yield "nodePort %d" % ports[0].node_port
