# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Many objects of one cluster in one module call: observe, compare, apply (server-side), read.

Private to the multicloud.interconnect collection: other collections must not import it,
its interface may change without notice.

A stage of a role used to spend one module call (and a Python start, the kubernetes library's
import and an API discovery) per object; ``cluster_objects`` takes the whole stage: the objects
to keep, the objects to remove and the objects to read, against one client.

- An object is compared with what the cluster holds before anything is sent: every field the
  manifest names must be there with the same value (what the server adds is its own business;
  lists of mappings are compared item by item). Equal objects are not written at all.
- A differing or missing object is written with server-side apply under one field manager, so the
  manifest is the whole intent of this collection for that object; in check mode the update is a
  server dry run, and the diff shows what the server would keep.
- Secret values never leave the module in a diff or a result: they are replaced by a digest.
"""

from __future__ import annotations

import copy
import hashlib
import time
import typing as t

from ansible_collections.multicloud.interconnect.plugins.module_utils._k8s import ClusterError, describe_api_exception
from ansible_collections.multicloud.interconnect.plugins.module_utils._kube_api import ApiError, connect

FIELD_MANAGER = "multicloud.interconnect"
# What the API server sets on every object; never part of a comparison or a diff.
SERVER_FIELDS = ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields", "selfLink")


# ---- pure: compare and describe ------------------------------------------------------------------

def differences(desired: t.Any, observed: t.Any, path: str = "") -> t.List[str]:
    """Paths where ``observed`` does not carry ``desired``; keys only the server sets do not count.

    Lists of mappings are compared item by item (a Service port gets its nodePort from the
    server); any other list must be equal.
    """
    if isinstance(desired, dict):
        if not isinstance(observed, dict):
            return [path or "."]
        found: t.List[str] = []
        for key, value in desired.items():
            found.extend(differences(value, observed.get(key), "%s.%s" % (path, key) if path else key))
        return found
    if isinstance(desired, list) and isinstance(observed, list) and len(desired) == len(observed) \
            and all(isinstance(item, dict) for item in desired):
        found = []
        for index, (want, have) in enumerate(zip(desired, observed)):
            found.extend(differences(want, have, "%s[%d]" % (path, index)))
        return found
    return [] if desired == observed else [path or "."]


def object_changes(desired: t.Mapping[str, t.Any], observed: t.Optional[t.Mapping[str, t.Any]]) -> t.List[str]:
    """Fields to change so that ``observed`` is ``desired``; ``['(create)']`` when it is absent or going."""
    if not observed or (observed.get("metadata") or {}).get("deletionTimestamp"):
        return ["(create)"]
    wanted = {key: value for key, value in desired.items() if key not in ("apiVersion", "kind")}
    meta = dict(wanted.pop("metadata", {}) or {})
    changes = differences({k: meta[k] for k in ("labels", "annotations") if meta.get(k)},
                          observed.get("metadata") or {}, "metadata")
    return sorted(set(changes + differences(wanted, observed)))


def reference(obj: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    meta = obj.get("metadata") or {}
    return {"api_version": obj.get("apiVersion"), "kind": obj.get("kind"), "name": meta.get("name"),
            "namespace": meta.get("namespace")}


def references(option: str, entries: t.Sequence[t.Mapping[str, t.Any]]) -> t.List[t.Dict[str, t.Any]]:
    """``entries`` as references: each a reference already, or a manifest as a stage keeps it (so a stage
    that is turned off passes the manifests it keeps otherwise). ValueError, naming ``option`` and the
    index, for one without api_version, kind and name."""
    refs = [reference(entry) if "apiVersion" in entry else dict(entry) for entry in entries]
    for index, ref in enumerate(refs):
        if not all(ref.get(key) for key in ("api_version", "kind", "name")):
            raise ValueError("%s[%d] needs api_version, kind and name (or a manifest)" % (option, index))
    return refs


def describe(ref: t.Mapping[str, t.Any]) -> str:
    where = "%s/" % ref["namespace"] if ref.get("namespace") else ""
    return "%s %s%s" % (ref["kind"], where, ref["name"])


def digest(value: t.Any) -> str:
    raw = value if isinstance(value, bytes) else str(value).encode("utf-8")
    return "sha256:" + hashlib.sha256(raw).hexdigest()[:12]


def masked(obj: t.Optional[t.Mapping[str, t.Any]]) -> t.Optional[t.Dict[str, t.Any]]:
    """A copy fit for a diff or a result: server bookkeeping dropped, Secret values replaced by a digest."""
    if obj is None:
        return None
    result = copy.deepcopy(dict(obj))
    meta = result.get("metadata")
    if isinstance(meta, dict):
        for key in SERVER_FIELDS:
            meta.pop(key, None)
        annotations = meta.get("annotations") or {}
        annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    if result.get("kind") == "Secret":
        for key in ("data", "stringData"):
            if isinstance(result.get(key), dict):
                result[key] = {name: digest(value) for name, value in result[key].items()}
    return result


def _condition(obj: t.Mapping[str, t.Any], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True"
               for c in ((obj.get("status") or {}).get("conditions") or []))


def not_ready(obj: t.Optional[t.Mapping[str, t.Any]]) -> t.Optional[str]:
    """Why a waited-for object is not ready yet, or None when it is.

    A CRD is Established; a Deployment, DaemonSet or StatefulSet has rolled out its current
    generation and every replica of it is available; any other kind is ready once it exists.
    """
    if obj is None:
        return "not found"
    status, spec = obj.get("status") or {}, obj.get("spec") or {}
    kind = obj.get("kind")
    if kind == "CustomResourceDefinition":
        return None if _condition(obj, "Established") else "not Established"
    if kind in ("Deployment", "DaemonSet", "StatefulSet") \
            and (status.get("observedGeneration") or 0) < ((obj.get("metadata") or {}).get("generation") or 0):
        return "its controller has not seen the current generation"
    if kind == "Deployment":
        want = spec.get("replicas", 1)
        if (status.get("updatedReplicas") or 0) < want or (status.get("availableReplicas") or 0) < want \
                or not _condition(obj, "Available"):
            return "%s of %s replicas updated and available" % (status.get("availableReplicas") or 0, want)
        return None
    if kind == "DaemonSet":
        want = status.get("desiredNumberScheduled") or 0
        have = min(status.get("updatedNumberScheduled") or 0, status.get("numberAvailable") or 0)
        return None if have >= want else "%s of %s Pods updated and available" % (have, want)
    if kind == "StatefulSet":
        want = spec.get("replicas", 1)
        have = min(status.get("updatedReplicas") or 0, status.get("readyReplicas") or 0)
        return None if have >= want else "%s of %s replicas updated and ready" % (have, want)
    return None


# The Accept header of a list whose items are wanted for their metadata only.
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"


# ---- the cluster ---------------------------------------------------------------------------------

class Objects:
    """One cluster's API: objects by reference, the kinds' resources found by discovery (see _kube_api)."""

    def __init__(self, name: str, kubeconfig: t.Any = None, context: t.Optional[str] = None,
                 library: bool = False) -> None:
        self.name = name
        self.api = connect(name, kubeconfig, context, library)

    def serves(self, ref: t.Mapping[str, t.Any]) -> bool:
        return self.api.resource(ref["api_version"], ref["kind"]) is not None

    def _call(self, what: str, method: str, ref: t.Mapping[str, t.Any], name: bool = True, **kwargs: t.Any) -> t.Any:
        path = self.api.path(ref["api_version"], ref["kind"], ref.get("namespace"), ref.get("name") if name else None)
        try:
            return self.api.request(what, method, path, **kwargs)
        except ApiError as err:
            raise ClusterError(self.name, "%s: %s" % (what, describe_api_exception(err)), err.status) from err

    def get(self, ref: t.Mapping[str, t.Any]) -> t.Optional[dict]:
        try:
            return self._call("reading %s" % describe(ref), "GET", ref)
        except ClusterError as err:
            if err.status == 404:
                return None
            raise

    def list(self, query: t.Mapping[str, t.Any], metadata_only: bool = False) -> t.List[dict]:
        selector = [("labelSelector", query["label_selector"])] if query.get("label_selector") else []
        found = self._call("listing %s" % query["kind"], "GET", query, name=False, query=selector,
                           **({"accept": METADATA_ONLY} if metadata_only else {}))
        # A list's items carry no apiVersion and kind; the objects read one by one do.
        return [dict(item, apiVersion=query["api_version"], kind=query["kind"]) for item in found.get("items") or []]

    def newest(self, query: t.Mapping[str, t.Any], label: str) -> t.List[dict]:
        """The object of ``query`` whose ``label`` is the highest number, as a list of one (none when
        nothing matches). Only the metadata of the others is read: Helm keeps each revision of a release,
        chart included, in a Secret of its own, and ten revisions of Cilium's weigh megabytes."""
        def number(item: t.Mapping[str, t.Any]) -> int:
            try:
                return int(((item.get("metadata") or {}).get("labels") or {}).get(label) or 0)
            except ValueError:
                return 0

        for head in sorted(self.list(query, metadata_only=True), key=number, reverse=True):
            found = self.get(dict(query, name=head["metadata"]["name"]))
            if found is not None:  # else deleted since the list: the next newest
                return [found]
        return []

    def apply(self, desired: t.Mapping[str, t.Any], dry_run: bool) -> dict:
        ref = reference(desired)
        query = [("fieldManager", FIELD_MANAGER), ("force", "true")] + ([("dryRun", "All")] if dry_run else [])
        # JSON is YAML: the apply content type takes it as it is.
        return self._call("applying %s" % describe(ref), "PATCH", ref, query=query, body=dict(desired),
                          content_type="application/apply-patch+yaml")

    def delete(self, ref: t.Mapping[str, t.Any]) -> None:
        try:
            self._call("deleting %s" % describe(ref), "DELETE", ref)
        except ClusterError as err:
            if err.status != 404:
                raise


# ---- one call: observe, compare, apply -----------------------------------------------------------

def keep(cluster: Objects, desired: t.Mapping[str, t.Any], check_mode: bool) -> t.Tuple[dict, t.Optional[dict], t.Optional[dict]]:
    """(entry, before, after) for one object the cluster must hold."""
    ref = reference(desired)
    if check_mode and not cluster.serves(ref):
        # Its CRD comes with an earlier step of the same run (a chart): planned as a create.
        return dict(ref, action="create", changes=["(create; the API serves this kind once its CRD is installed)"]), \
            None, copy.deepcopy(dict(desired))
    before = cluster.get(ref)
    changes = object_changes(desired, before)
    if not changes:
        return dict(ref, action="unchanged", changes=[]), before, before
    creating = changes == ["(create)"]
    try:
        after: t.Optional[dict] = cluster.apply(desired, dry_run=check_mode)
    except ClusterError as err:
        # In check mode, a create in a namespace that the same run creates first cannot be dry-run:
        # the manifest is the plan then.
        if not (creating and check_mode and err.status == 404):
            raise
        after = copy.deepcopy(dict(desired))
    return dict(ref, action="create" if creating else "update", changes=changes), before, after


def remove(cluster: Objects, ref: t.Mapping[str, t.Any], check_mode: bool) -> t.Tuple[dict, t.Optional[dict]]:
    # A kind the API does not serve (its CRD is gone) has no object left to delete.
    before = cluster.get(ref) if cluster.serves(ref) else None
    if before is None:
        return dict(ref, action="absent", changes=[]), None
    if not check_mode:
        cluster.delete(ref)
    return dict(ref, action="delete", changes=["(delete)"]), before


def with_secret_data(present: t.Sequence[t.Mapping[str, t.Any]],
                     secret_data: t.Mapping[str, t.Mapping[str, str]]) -> t.List[t.Dict[str, t.Any]]:
    """The manifests with each Secret's ``data`` taken from ``secret_data`` ("namespace/name" -> data).

    The values come in an option of their own so that Ansible hides exactly them (no_log) and
    nothing else of the manifests.
    """
    result = []
    for manifest in present:
        ref = reference(manifest)
        key = "%s/%s" % (ref.get("namespace") or "", ref["name"])
        if ref["kind"] == "Secret" and key in secret_data:
            manifest = dict(manifest, data=dict(secret_data[key]))
        result.append(dict(manifest))
    return result


def wait(cluster: Objects, refs: t.Sequence[t.Mapping[str, t.Any]], timeout: float,
         clock: t.Callable[[], float] = time.monotonic, sleep: t.Callable[[float], None] = time.sleep) -> None:
    """Until every object of ``refs`` is ready (see ``not_ready``); a ClusterError names those that are not."""
    deadline = clock() + timeout
    pending = list(refs)
    while True:
        waiting = [(ref, not_ready(cluster.get(ref))) for ref in pending]
        pending = [ref for ref, why in waiting if why]
        if not pending:
            return
        if clock() >= deadline:
            raise ClusterError(cluster.name, "not ready after %ds: %s" % (timeout, "; ".join(
                "%s (%s)" % (describe(ref), why) for ref, why in waiting if why)))
        sleep(2)


def run(cluster: Objects, present: t.Sequence[t.Mapping[str, t.Any]], absent: t.Sequence[t.Mapping[str, t.Any]],
        read: t.Sequence[t.Mapping[str, t.Any]], check_mode: bool, wait_for: t.Sequence[t.Mapping[str, t.Any]] = (),
        wait_timeout: float = 300) -> t.Dict[str, t.Any]:
    """The module's result: objects kept (in order), then removed, waited for (not in check mode), then read;
    Secrets masked in the diff."""
    entries, before_all, after_all, objects = [], {}, {}, []
    for desired in present:
        entry, before, after = keep(cluster, desired, check_mode)
        entries.append(entry)
        objects.append(masked(after))
        if entry["action"] != "unchanged":
            before_all[describe(entry)] = masked(before)
            after_all[describe(entry)] = masked(after)
    for ref in absent:
        entry, before = remove(cluster, ref, check_mode)
        entries.append(entry)
        if entry["action"] == "delete":
            before_all[describe(entry)] = masked(before)
            after_all[describe(entry)] = None
    if wait_for and not check_mode:
        wait(cluster, wait_for, wait_timeout)
    found = [[cluster.get(query)] if query.get("name")
             else cluster.newest(query, query["newest_by_label"]) if query.get("newest_by_label")
             else cluster.list(query) for query in read]
    return {
        "changed": any(e["action"] not in ("unchanged", "absent") for e in entries),
        "results": entries,
        "objects": objects,
        "read": [[item for item in items if item is not None] for items in found],
        "diff": {"before": before_all, "after": after_all},
    }
