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
from ansible_collections.multicloud.interconnect.plugins.module_utils._k8s import ClusterError
from ansible_collections.multicloud.interconnect.plugins.module_utils._kube_api import ApiError, connect, namespaced_path
from ansible_collections.multicloud.interconnect.plugins.module_utils._pem import bundle_fingerprints, pem_fingerprint
from ansible_collections.multicloud.interconnect.plugins.module_utils._runtime_k8s import istiod_report, kvstoremesh_report
from ansible_collections.multicloud.interconnect.plugins.module_utils._status import ISTIO_CLUSTER_ANNOTATION, Observed
from ansible_collections.multicloud.interconnect.plugins.module_utils._topology import Cluster


def observe(cluster: Cluster, params: t.Mapping[str, t.Any]) -> Observed:
    """What ``cluster`` (of the Topology) shows; an unreachable cluster or a failed read is reported, not raised.

    ``params``: ``timeout`` (seconds to connect and for each answer), ``cilium_namespace`` and ``istio_namespace``.
    """
    name = cluster.name
    try:
        api = connect(name, cluster.kubeconfig, cluster.context, timeout=params["timeout"])
        version = api.version()
    except ClusterError as err:
        return Observed(reachable=False, error=str(err))
    seen = Observed(version=version)
    cilium, istio = params["cilium_namespace"], params["istio_namespace"]
    try:
        config = api.get("cilium-config", namespaced_path(cilium, "configmaps", "cilium-config"))
        if config is not None:
            seen.cilium_cluster_name = (config.get("data") or {}).get("cluster-name")
            seen.cilium_cluster_id = (config.get("data") or {}).get("cluster-id")
        mesh = api.get("cilium-clustermesh", namespaced_path(cilium, "secrets", "cilium-clustermesh"))
        if mesh is not None:
            seen.cilium_peers = clustermesh_secret_peers(mesh.get("data"), name)
        elif config is not None:
            seen.cilium_peers = []
        if config is not None:
            seen.kvstoremesh_remotes, seen.kvstoremesh_reason = kvstoremesh_report(api, cilium)
        ca = api.get("cilium-ca", namespaced_path(cilium, "secrets", "cilium-ca"))
        ca_cert = (ca.get("data") or {}).get("ca.crt") if ca is not None else None
        if ca_cert:
            seen.cilium_ca_fingerprint = pem_fingerprint(ca_cert)
            bundle = api.get(TRUST_BUNDLE, namespaced_path(cilium, "configmaps", TRUST_BUNDLE))
            seen.cilium_ca_trust = bundle_fingerprints((bundle.get("data") or {}).get("ca.crt") if bundle else None) \
                or bundle_fingerprints(ca_cert)
        kosmos = api.get("Kosmos clusters", "/apis/kosmos.io/v1alpha1/clusters")
        if kosmos is not None:
            seen.kosmos_clusters = {
                item["metadata"]["name"]: ((item.get("spec") or {}).get("clusterLinkOptions") or {}).get("networkType")
                for item in kosmos.get("items") or []
            }
        secrets = api.get("Istio remote secrets", namespaced_path(istio, "secrets"),
                          query=[("labelSelector", "istio/multiCluster=true")])
        if secrets is not None:
            seen.istio_remote_secrets = sorted(
                (s["metadata"].get("annotations") or {}).get(ISTIO_CLUSTER_ANNOTATION)
                or s["metadata"]["name"].replace("istio-remote-secret-", "")
                for s in secrets.get("items") or []
            )
        if secrets is not None and secrets.get("items"):
            seen.istiod_remotes, seen.istiod_reason = istiod_report(api, istio)
        elif secrets is not None:
            seen.istiod_reason = "no remote secret in %s: istiod has no remote cluster to report" % istio
        services = api.get("east-west gateways", namespaced_path(istio, "services"),
                           query=[("labelSelector", "topology.istio.io/network")])
        seen.gateway_addresses = sorted(_gateway_addresses((services or {}).get("items") or []))
    except ApiError as err:
        seen.reachable = False
        seen.error = "cluster %s: API answered %s %s" % (name, err.status, err.reason)
    except Exception as err:  # connection dropped in the middle: report it, do not hide the rest
        seen.reachable = False
        seen.error = "cluster %s: %s" % (name, err)
    return seen


def _gateway_addresses(services: t.Iterable[t.Mapping[str, t.Any]]) -> t.Iterator[str]:
    for service in services:
        ports = [p for p in ((service.get("spec") or {}).get("ports") or []) if p.get("port") == 15443]
        ingress = (((service.get("status") or {}).get("loadBalancer") or {}).get("ingress")) or []
        for entry in ingress:
            yield "%s:15443" % (entry.get("ip") or entry.get("hostname"))
        if not ingress and ports and ports[0].get("nodePort"):
            yield "nodePort %d" % ports[0]["nodePort"]
