# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kosmos ClusterLink through the Kubernetes API: observe, apply and remove the planned objects.

Private to the multicloud.interconnect collection: other collections must not import it,
its interface may change without notice.

The decisions (what each cluster must have, what differs, what is masked) are the pure
functions of ``_kosmos``; this file only reads and writes objects, one cluster at a time, and
raises ``ClusterError`` naming the cluster when the API refuses.
"""

from __future__ import annotations

import base64
import os
import time
import typing as t
import urllib.parse

from ansible_collections.multicloud.interconnect.plugins.module_utils import _kosmos as kosmos
from ansible_collections.multicloud.interconnect.plugins.module_utils._k8s import ClusterError, api_client, describe_api_exception
from ansible_collections.multicloud.interconnect.plugins.module_utils._kube_api import (
    Access, ApiError, Unsupported, connect, env_fallback_value, load_kubeconfig)

CLUSTER_CRD = "clusters.kosmos.io"
# Plural of each Kosmos kind: their paths are built without discovery, so a CRD installed or
# removed a moment ago is seen as it is.
KOSMOS_PLURALS = {"Cluster": kosmos.CLUSTER_PLURAL, "ClusterNode": kosmos.CLUSTERNODE_PLURAL,
                  "NodeConfig": kosmos.NODECONFIG_PLURAL}
KOSMOS_API_VERSION = "%s/%s" % (kosmos.GROUP, kosmos.VERSION)
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


class Cluster:
    """One cluster's API, with the few verbs the Kosmos modules need."""

    def __init__(self, name: str, kubeconfig: t.Any = None, context: t.Optional[str] = None) -> None:
        self.name = name
        self.kubeconfig, self.context = kubeconfig, context
        self.api = connect(name, kubeconfig, context)

    # -- connection facts --------------------------------------------------------------------
    def _server_and_ca(self) -> t.Tuple[str, t.Optional[bytes]]:
        try:
            config, origin, _source = load_kubeconfig(self.kubeconfig)
            access = Access(config, self.context or env_fallback_value("K8S_AUTH_CONTEXT"), origin)
        except Unsupported:  # what the small client leaves to the library: ask the library
            configuration = api_client(self.name, self.kubeconfig, self.context).configuration
            return str(configuration.host), _read_file(configuration.ssl_ca_cert)
        except (OSError, KeyError, TypeError, ValueError) as err:
            raise ClusterError(self.name, "cannot load kubeconfig: %s" % err) from err
        ca_file, ca_pem = access.ca()
        return access.server, ca_pem.encode() if ca_pem else _read_file(ca_file)

    def server(self) -> str:
        return self._server_and_ca()[0]

    def kubeconfig_ca(self) -> t.Optional[bytes]:
        return self._server_and_ca()[1]

    # -- generic verbs ------------------------------------------------------------------------
    def _path(self, api_version: str, kind: str, name: t.Optional[str] = None, namespace: t.Optional[str] = None) -> str:
        if api_version == KOSMOS_API_VERSION:
            return "/apis/%s/%s%s" % (api_version, KOSMOS_PLURALS[kind], "/" + urllib.parse.quote(name, safe="") if name else "")
        return self.api.path(api_version, kind, namespace, name)

    def _call(self, doing: str, method: str, path: str, **kwargs: t.Any) -> t.Any:
        try:
            return self.api.request(doing, method, path, **kwargs)
        except ApiError as err:
            raise ClusterError(self.name, "%s: %s" % (doing, describe_api_exception(err)), err.status) from err

    def get(self, api_version: str, kind: str, name: str, namespace: t.Optional[str] = None) -> t.Optional[dict]:
        try:
            return self._call("reading %s %s" % (kind, name), "GET", self._path(api_version, kind, name, namespace))
        except ClusterError as err:
            if err.status == 404:
                return None
            raise

    def list(self, api_version: str, kind: str, label_selector: t.Optional[str] = None) -> t.List[dict]:
        query = [("labelSelector", label_selector)] if label_selector else []
        found = self._call("listing %s" % kind, "GET", self._path(api_version, kind), query=query) or {}
        return list(found.get("items") or [])

    def has_kind(self, api_version: str, kind: str) -> bool:
        """Whether the Kosmos CRD of ``kind`` is installed and established."""
        if api_version != KOSMOS_API_VERSION:
            raise ValueError("has_kind answers for %s only" % KOSMOS_API_VERSION)
        name = "%s.%s" % (KOSMOS_PLURALS[kind], kosmos.GROUP)
        try:
            crd = self._call("reading CRD %s" % name, "GET", "%s/%s" % (CRDS, name)) or {}
        except ClusterError as err:
            if err.status == 404:
                return False
            raise
        if (crd.get("metadata") or {}).get("deletionTimestamp"):
            return False
        return any(c.get("type") == "Established" and c.get("status") == "True"
                   for c in (crd.get("status") or {}).get("conditions") or [])

    def create(self, obj: t.Mapping[str, t.Any]) -> dict:
        meta = obj["metadata"]
        return self._call("creating %s %s" % (obj["kind"], meta["name"]), "POST",
                          self._path(obj["apiVersion"], obj["kind"], namespace=meta.get("namespace")), body=dict(obj))

    def replace(self, obj: t.Mapping[str, t.Any]) -> dict:
        meta = obj["metadata"]
        return self._call("updating %s %s" % (obj["kind"], meta["name"]), "PUT",
                          self._path(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace")), body=dict(obj))

    def delete(self, api_version: str, kind: str, name: str, namespace: t.Optional[str] = None) -> None:
        try:
            self._call("deleting %s %s" % (kind, name), "DELETE", self._path(api_version, kind, name, namespace))
        except ClusterError as err:
            if err.status != 404:
                raise

    def wait_gone(self, api_version: str, kind: str, name: str, namespace: t.Optional[str], timeout: float,
                  why: str) -> None:
        deadline = time.monotonic() + timeout
        while self.get(api_version, kind, name, namespace) is not None:
            if time.monotonic() > deadline:
                raise ClusterError(self.name, "%s %s still exists after %ds: %s" % (kind, name, timeout, why))
            time.sleep(1)

    def wait_token(self, namespace: str, timeout: float) -> t.Tuple[str, bytes]:
        """The token and CA the token controller writes into the kosmos-control token secret."""
        deadline = time.monotonic() + timeout
        while True:
            secret = self.get("v1", "Secret", kosmos.TOKEN_SECRET, namespace) or {}
            data = secret.get("data") or {}
            if data.get("token"):
                return (base64.b64decode(data["token"]).decode("utf-8"),
                        base64.b64decode(data.get("ca.crt") or ""))
            if time.monotonic() > deadline:
                raise ClusterError(self.name, "secret %s/%s got no token within %ds; is the token controller of "
                                   "kube-controller-manager running (--service-account-private-key-file)?"
                                   % (namespace, kosmos.TOKEN_SECRET, timeout))
            time.sleep(1)


def observe_token(cluster: Cluster, namespace: str) -> t.Optional[t.Tuple[str, bytes]]:
    secret = cluster.get("v1", "Secret", kosmos.TOKEN_SECRET, namespace) or {}
    data = secret.get("data") or {}
    if not data.get("token"):
        return None
    return base64.b64decode(data["token"]).decode("utf-8"), base64.b64decode(data.get("ca.crt") or "")


def kubeconfig_for(cluster: Cluster, token: t.Tuple[str, bytes], api_server: t.Optional[str]) -> bytes:
    """The kubeconfig Kosmos components use to reach ``cluster``.

    The server is ``api_server`` when given (an address reachable from inside the other clusters),
    else the one the inventory kubeconfig uses; the CA is that kubeconfig's when the server is
    the same, else the cluster CA from the token secret.
    """
    value, cluster_ca = token
    if api_server:
        return kosmos.build_kubeconfig(cluster.name, api_server, cluster_ca, value)
    return kosmos.build_kubeconfig(cluster.name, cluster.server(), cluster.kubeconfig_ca() or cluster_ca, value)


Applied = t.Tuple[str, t.List[str], t.Optional[dict]]


def apply(cluster: Cluster, desired: t.Mapping[str, t.Any], check_mode: bool) -> Applied:
    """Create or update one object; returns (action, changed fields, observed before)."""
    meta = desired["metadata"]
    observed = cluster.get(desired["apiVersion"], desired["kind"], meta["name"], meta.get("namespace"))
    changes = kosmos.object_changes(desired, observed)
    if not changes:
        return "unchanged", [], observed
    if observed is not None and (observed.get("metadata") or {}).get("deletionTimestamp"):
        if not check_mode:
            cluster.wait_gone(desired["apiVersion"], desired["kind"], meta["name"], meta.get("namespace"), 120,
                              "it is being deleted; wait for that to finish, then run again")
        observed = None
    if observed is None:
        if not check_mode:
            cluster.create(desired)
        return "create", changes, None
    if not check_mode:
        cluster.replace(kosmos.merged_for_replace(desired, observed))
    return "update", changes, observed


def remove(cluster: Cluster, api_version: str, kind: str, name: str, namespace: t.Optional[str],
           check_mode: bool) -> t.Tuple[str, t.Optional[dict]]:
    """Delete one object if this collection created it; returns (action, observed before)."""
    observed = cluster.get(api_version, kind, name, namespace)
    if observed is None or (observed.get("metadata") or {}).get("deletionTimestamp"):
        return "absent", None
    if not kosmos.is_managed(observed):
        return "kept (not created by multicloud.interconnect)", observed
    if not check_mode:
        cluster.delete(api_version, kind, name, namespace)
    return "delete", observed


def member_side_presence(cluster: Cluster, namespace: str, is_host: bool) -> t.Dict[str, bool]:
    """Which of the member-side objects of a join exist in ``cluster``."""
    present = {}
    for obj in kosmos.member_objects(namespace, {}, is_host) + [kosmos.controlpanel_secret(namespace, {}, b"")]:
        meta = obj["metadata"]
        key = "%s/%s" % (obj["kind"], meta["name"])
        found = cluster.get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
        present[key] = found is not None and not (found.get("metadata") or {}).get("deletionTimestamp")
    return present


def list_kosmos(cluster: Cluster, plural_kind: str) -> t.Optional[t.List[dict]]:
    """clusters / clusternodes / nodeconfigs of the host, or None when the CRD is not installed."""
    api_version = "%s/%s" % (kosmos.GROUP, kosmos.VERSION)
    if not cluster.has_kind(api_version, plural_kind):
        return None
    return cluster.list(api_version, plural_kind)


def _read_file(path: t.Optional[str]) -> t.Optional[bytes]:
    if path and os.path.exists(path):
        with open(path, "rb") as handle:
            return handle.read()
    return None
