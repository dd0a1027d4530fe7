# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the Istio roles and interconnect playbooks: chart values and module inputs.

Pure functions, so the roles and playbooks shape no data in Jinja.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from ansible.errors import AnsibleFilterError

from ansible_collections.multicloud.interconnect.plugins.module_utils._data import copied
from ansible_collections.multicloud.interconnect.plugins.module_utils._istio import GATEWAY_PORT, NETWORK_LABEL
from ansible_collections.multicloud.interconnect.plugins.module_utils._istio_ca import chain_anchor, given_ca_problems, install_problems
from ansible_collections.multicloud.interconnect.plugins.module_utils._pem import bundle_fingerprints, pem_certificates, pem_fingerprint
from ansible_collections.multicloud.interconnect.plugins.module_utils._istio_rules import disable_problems
from ansible_collections.multicloud.interconnect.plugins.module_utils._problems import problem, refusal
from ansible_collections.multicloud.interconnect.plugins.module_utils._topology import topology_from_hostvars

_MISSING = object()
# On istiod's Pods: what it loaded from cacerts (istio_cacerts_digest).
CA_ANNOTATION = "ca.multicloud.interconnect/cacerts"
# What the apiserver_nodeport role publishes about each cluster (facts), under the module's keys.
_APISERVER_FACTS = (
    ("apiserver_nodeport_url", "api_url"),
    ("apiserver_tls_server_name", "tls_server_name"),
    ("apiserver_ca_data", "ca_data"),
)


def _get(host, key):
    if hasattr(host, "get"):
        try:
            return host.get(key, _MISSING)
        except Exception:  # an undefined variable inside hostvars raises on access
            return _MISSING
    return _MISSING


def istio_interconnect_clusters(hostvars, names):
    """``{cluster name: {network_group, eastwest_gateway, api_url, tls_server_name, ca_data, kubeconfig, context}}``.

    Who each cluster is comes from the inventory's model; ``api_url``, ``tls_server_name`` and
    ``ca_data`` from the facts the apiserver_nodeport role sets. Values a cluster lacks are left out.
    """
    result = {}
    for cluster in topology_from_hostvars(hostvars, names or []).clusters.values():
        entry = {"network_group": cluster.network_group, "eastwest_gateway": cluster.eastwest_gateway,
                 "kubeconfig": cluster.kubeconfig, "context": cluster.context}
        host = hostvars[cluster.inventory_name]
        for fact, key in _APISERVER_FACTS:
            entry[key] = _get(host, fact)
        result[cluster.name] = {k: v for k, v in entry.items() if v not in (_MISSING, None, "")}
    return result


def _merge(base, override):
    merged = copied(base or {})
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copied(value)
    return merged


def istio_istiod_values(extra, cluster_name, network, mesh_id, mesh_networks=None, ca_digest=""):
    """istiod values: ``extra`` with the mesh identity on top.

    ``mesh_networks`` is the interconnect module's plan for this cluster. Without one, meshNetworks
    is empty here and the role keeps what the running release has (helm_releases ``keep_values``),
    so an upgrade of the chart keeps the joined networks instead of resetting them. The release is
    the only writer of the mesh ConfigMap.

    ``ca_digest`` (``istio_cacerts_digest`` of the cacerts written with this release) goes on
    istiod's Pods: istiod reads the roots of cacerts only when it starts, so a change of them
    restarts it. Without one, the role keeps what the running release has.
    """
    networks = {}
    if mesh_networks is not None:
        if not isinstance(mesh_networks, dict):
            raise AnsibleFilterError("istio_istiod_values: istio_mesh_networks must be a mapping of networks, got %r"
                                     % (mesh_networks,))
        networks = copied(mesh_networks)
    own = {"global": {"meshID": mesh_id, "multiCluster": {"clusterName": cluster_name}, "network": network,
                      "meshNetworks": networks}}
    if ca_digest:
        own["podAnnotations"] = {CA_ANNOTATION: ca_digest}
    return _merge(extra, own)


def istio_cacerts_digest(data):
    """A short digest of what istiod loads from cacerts (base64 data): the intermediate it signs with and
    the roots it trusts, by fingerprint; the same for the same CAs however the Secret was written."""
    data = data or {}
    roots = sorted(bundle_fingerprints(data.get("root-cert.pem")))
    signing = pem_fingerprint(data.get("ca-cert.pem")) or ""
    return hashlib.sha256(("%s|%s" % (signing, ",".join(roots))).encode()).hexdigest()[:16]


def istio_gateway_values(spec, network, extra=None):
    """Values of the istio/gateway chart for the east-west gateway ``spec`` of ``network``."""
    if not isinstance(spec, dict):
        raise AnsibleFilterError("istio_gateway_values: cluster_eastwest_gateway must be a mapping, got %r" % (spec,))
    service_type = spec.get("service_type") or "LoadBalancer"
    own = {
        "networkGateway": network,
        "replicaCount": int(spec.get("replicas", 1) or 1),
        # A fixed replica count, as the inventory says; the chart autoscales by default.
        "autoscaling": {"enabled": False},
        "labels": {NETWORK_LABEL: network},
        "service": {"type": service_type, "annotations": dict(spec.get("service_annotations") or {})},
    }
    return _merge(extra, own)


def istio_gateway_node_port_patch(spec, name, namespace):
    """A strategic-merge patch that pins the node port of 15443, or None when none is asked.

    The gateway chart renders the network gateway's ports itself and has no node port value; the
    chart never sets nodePort, so Helm's three-way merge keeps the pinned one across upgrades.
    """
    if not isinstance(spec, dict) or not spec.get("node_port") or spec.get("service_type") != "NodePort":
        return None
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": {"ports": [{"port": GATEWAY_PORT, "nodePort": int(spec["node_port"])}]}}


def istio_gateway_rule(name, namespace, hosts, release_name):
    """The gateway rule of the basic settings: mTLS passthrough on 15443 for ``hosts``."""
    selector = release_name[len("istio-"):] if release_name.startswith("istio-") else release_name
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {"app.kubernetes.io/managed-by": "multicloud.interconnect"}},
        "spec": {
            "selector": {"istio": selector},
            "servers": [{"port": {"number": GATEWAY_PORT, "name": "tls", "protocol": "TLS"},
                         "tls": {"mode": "AUTO_PASSTHROUGH"}, "hosts": list(hosts)}],
        },
    }


def istio_cacerts_data(ca_cert, ca_key, signer_chain, trusted_roots=None):
    """Base64 data of the Secret ``cacerts``: the cluster's intermediate CA, and the chain of the CA that
    issued it (that CA first, then each CA above it up to the mesh's root; the root alone when the istio
    role made it).

    ``trusted_roots``: root-cert.pem when it is not the root the chain ends in alone (during a CA
    rotation: the old and the new root)."""
    for label, value in (("ca_cert", ca_cert), ("ca_key", ca_key), ("signer_chain", signer_chain)):
        if not value or "-----BEGIN" not in str(value):
            raise AnsibleFilterError("istio_cacerts_data: %s is not a PEM text" % label)
    trusted_roots = trusted_roots or chain_anchor(signer_chain)
    if not trusted_roots:
        raise AnsibleFilterError("istio_cacerts_data: signer_chain holds no certificate")

    def b64(text):
        text = str(text) if str(text).endswith("\n") else str(text) + "\n"
        return base64.b64encode(text.encode()).decode()

    return {"ca-cert.pem": b64(ca_cert), "ca-key.pem": b64(ca_key), "root-cert.pem": b64(trusted_roots),
            "cert-chain.pem": b64(str(ca_cert).rstrip("\n") + "\n" + "".join(pem_certificates(signer_chain)))}


def _pem_text(value):
    """PEM text of a base64 PEM inventory value; None when it is not base64 of a PEM text."""
    try:
        text = base64.b64decode(str(value), validate=False).decode("ascii")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    return text if "-----BEGIN" in text else None


def istio_given_ca_refusal(hostvars, names):
    """The refusal of validate.yml, before any cluster changes, for a CA of the user's own (istio_ca_cert,
    istio_ca_key) that cannot sign the clusters' intermediates; an empty string when none is given or it can."""
    given = {}
    for name in names or []:
        cert = _get(hostvars[name], "istio_ca_cert")
        if cert in (_MISSING, None, ""):
            continue
        key = _get(hostvars[name], "istio_ca_key")
        given.setdefault((str(cert), "" if key in (_MISSING, None) else str(key)), []).append(name)
    problems = []
    for (cert, key), clusters in sorted(given.items(), key=lambda item: item[1]):
        cert_text, key_text = _pem_text(cert), _pem_text(key) if key else ""
        if cert_text is None or key_text is None:
            field = "istio_ca_cert" if cert_text is None else "istio_ca_key"
            problems.append(problem("ISTIO_CA_CERT_INVALID", "%s is not base64 of a PEM text." % field,
                                    "set it to the PEM file's content through b64encode, e.g. \"{{ lookup('file', "
                                    "'mesh-ca-chain.pem') | b64encode }}\"", clusters, None, field))
            continue
        problems.extend(given_ca_problems(cert_text, key_text, "istio_ca_cert", clusters))
    return refusal("Istio CA", problems) if problems else ""


def istio_ca_install_refusal(hostvars, hosts, signer_chain, signer_key, given, ca_dir):
    """The refusal to write the clusters' ``cacerts`` from ``signer_chain`` (PEM), or an empty string.

    ``given``: the chain is the user's (istio_ca_cert, with ``signer_key``), checked first; what each
    cluster runs comes from the istio role's read of its Secret (``__istio_ca_read``)."""
    members = {}
    for name in hosts or []:
        read = _get(hostvars[name], "__istio_ca_read")
        if isinstance(read, dict) and read.get("read"):
            found = read["read"][0]
            members[name] = {"cacerts": (found[0].get("data") or {}) if found else None}
    problems = given_ca_problems(signer_chain, signer_key, "istio_ca_cert", sorted(members)) if given else []
    if not problems:
        problems = install_problems(members, signer_chain, bool(given), ca_dir)
    return refusal("Istio CA", problems) if problems else ""


def istio_disable_refusal(joined, confirmation, expected):
    """The refusal to disable the interconnect feature, or an empty string when it may go ahead."""
    problems = disable_problems(joined or [], confirmation, expected)
    return refusal("Disabling the interconnect", problems) if problems else ""


class FilterModule:
    def filters(self):
        return {
            "istio_interconnect_clusters": istio_interconnect_clusters,
            "istio_istiod_values": istio_istiod_values,
            "istio_gateway_values": istio_gateway_values,
            "istio_gateway_rule": istio_gateway_rule,
            "istio_gateway_node_port_patch": istio_gateway_node_port_patch,
            "istio_cacerts_data": istio_cacerts_data,
            "istio_cacerts_digest": istio_cacerts_digest,
            "istio_ca_install_refusal": istio_ca_install_refusal,
            "istio_given_ca_refusal": istio_given_ca_refusal,
            "istio_disable_refusal": istio_disable_refusal,
        }
