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

from ansible_collections.multicloud.interconnect.plugins.module_utils import _kosmos as kosmos
from ansible_collections.multicloud.interconnect.plugins.module_utils._k8s import (
    ApiException,
    ClusterError,
    api_client,
    describe_api_exception,
)

try:
    from kubernetes import client as k8s_client
    from kubernetes.dynamic import DynamicClient
    from kubernetes.dynamic.exceptions import ResourceNotFoundError
except ImportError:  # pragma: no cover - the modules report the missing library through _k8s
    DynamicClient = None
    ResourceNotFoundError = Exception  # type: ignore[assignment,misc]

CLUSTER_CRD = "clusters.kosmos.io"
# Plural of each Kosmos kind: these go through CustomObjectsApi, which needs no discovery, so a
# CRD installed or removed a moment ago is seen as it is (the dynamic client caches discovery).
KOSMOS_PLURALS = {"Cluster": kosmos.CLUSTER_PLURAL, "ClusterNode": kosmos.CLUSTERNODE_PLURAL,
                  "NodeConfig": kosmos.NODECONFIG_PLURAL}
KOSMOS_API_VERSION = "%s/%s" % (kosmos.GROUP, kosmos.VERSION)


class Cluster:
    """One cluster's API, with the few verbs the Kosmos modules need."""

    def __init__(self, name: str, kubeconfig: t.Any = None, context: t.Optional[str] = None) -> None:
        self.name = name
        self.api = api_client(name, kubeconfig, context)
        try:
            self.dynamic = DynamicClient(self.api)
        except Exception as err:  # discovery failures surface here: unreachable, unauthorised ...
            raise ClusterError(name, "API server unreachable or refused discovery: %s" % _short(err)) from err

    # -- connection facts --------------------------------------------------------------------
    def server(self) -> str:
        return str(self.api.configuration.host)

    def kubeconfig_ca(self) -> t.Optional[bytes]:
        path = self.api.configuration.ssl_ca_cert
        if path and os.path.exists(path):
            with open(path, "rb") as handle:
                return handle.read()
        return None

    # -- generic verbs ------------------------------------------------------------------------
    def _resource(self, api_version: str, kind: str) -> t.Any:
        try:
            return self.dynamic.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError as err:
            raise ClusterError(self.name, "the API has no %s %s; %s" % (
                api_version, kind, "install Kosmos on it first (role multicloud.interconnect.kosmos)"
                if api_version.startswith(kosmos.GROUP) else "")) from err

    def _custom(self) -> t.Any:
        return k8s_client.CustomObjectsApi(self.api)

    def get(self, api_version: str, kind: str, name: str, namespace: t.Optional[str] = None) -> t.Optional[dict]:
        try:
            if api_version == KOSMOS_API_VERSION:
                return self._custom().get_cluster_custom_object(kosmos.GROUP, kosmos.VERSION, KOSMOS_PLURALS[kind], name)
            return self._resource(api_version, kind).get(name=name, namespace=namespace).to_dict()
        except ApiException as err:
            if getattr(err, "status", None) == 404:
                return None
            raise ClusterError(self.name, "reading %s %s: %s" % (kind, name, describe_api_exception(err))) from err

    def list(self, api_version: str, kind: str, label_selector: t.Optional[str] = None) -> t.List[dict]:
        try:
            if api_version == KOSMOS_API_VERSION:
                return self._custom().list_cluster_custom_object(kosmos.GROUP, kosmos.VERSION, KOSMOS_PLURALS[kind],
                                                                 label_selector=label_selector or "")["items"]
            found = self._resource(api_version, kind).get(label_selector=label_selector)
        except ApiException as err:
            raise ClusterError(self.name, "listing %s: %s" % (kind, describe_api_exception(err))) from err
        return [item.to_dict() for item in found.items]

    def has_kind(self, api_version: str, kind: str) -> bool:
        """Whether the Kosmos CRD of ``kind`` is installed and established."""
        if api_version != KOSMOS_API_VERSION:
            raise ValueError("has_kind answers for %s only" % KOSMOS_API_VERSION)
        name = "%s.%s" % (KOSMOS_PLURALS[kind], kosmos.GROUP)
        try:
            crd = k8s_client.ApiextensionsV1Api(self.api).read_custom_resource_definition(name)
        except ApiException as err:
            if getattr(err, "status", None) == 404:
                return False
            raise ClusterError(self.name, "reading CRD %s: %s" % (name, describe_api_exception(err))) from err
        if crd.metadata.deletion_timestamp:
            return False
        return any(c.type == "Established" and c.status == "True" for c in (crd.status.conditions or []))

    def create(self, obj: t.Mapping[str, t.Any]) -> dict:
        meta = obj["metadata"]
        try:
            if obj["apiVersion"] == KOSMOS_API_VERSION:
                return self._custom().create_cluster_custom_object(kosmos.GROUP, kosmos.VERSION,
                                                                   KOSMOS_PLURALS[obj["kind"]], dict(obj))
            return self._resource(obj["apiVersion"], obj["kind"]).create(
                body=dict(obj), namespace=meta.get("namespace")).to_dict()
        except ApiException as err:
            raise ClusterError(self.name, "creating %s %s: %s"
                               % (obj["kind"], meta["name"], describe_api_exception(err))) from err

    def replace(self, obj: t.Mapping[str, t.Any]) -> dict:
        meta = obj["metadata"]
        try:
            if obj["apiVersion"] == KOSMOS_API_VERSION:
                return self._custom().replace_cluster_custom_object(kosmos.GROUP, kosmos.VERSION,
                                                                    KOSMOS_PLURALS[obj["kind"]], meta["name"], dict(obj))
            return self._resource(obj["apiVersion"], obj["kind"]).replace(
                body=dict(obj), namespace=meta.get("namespace")).to_dict()
        except ApiException as err:
            raise ClusterError(self.name, "updating %s %s: %s"
                               % (obj["kind"], meta["name"], describe_api_exception(err))) from err

    def delete(self, api_version: str, kind: str, name: str, namespace: t.Optional[str] = None) -> None:
        try:
            if api_version == KOSMOS_API_VERSION:
                self._custom().delete_cluster_custom_object(kosmos.GROUP, kosmos.VERSION, KOSMOS_PLURALS[kind], name)
                return
            self._resource(api_version, kind).delete(name=name, namespace=namespace)
        except ApiException as err:
            if getattr(err, "status", None) == 404:
                return
            raise ClusterError(self.name, "deleting %s %s: %s" % (kind, name, describe_api_exception(err))) from err

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


def _short(err: BaseException) -> str:
    text = str(err)
    return text if len(text) < 300 else text[:297] + "..."
