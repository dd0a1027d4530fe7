# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for the kosmos role and playbooks, over the pure functions of ``_kosmos``.

``kosmos_plan`` is the entry point: ``hostvars | multicloud.interconnect.kosmos_plan(groups['clusters'],
defaults)`` returns ``ok``, ``errors``, ``groups`` (per Kosmos network group: ``host``,
``host_inventory``, ``network_type``, ``members`` with their ``cluster_link_options``),
``clusters`` (per inventory host: its group and host) and ``known_clusters``.
"""

from __future__ import annotations

import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.multicloud.interconnect.plugins.module_utils import _kosmos as kosmos
from ansible_collections.multicloud.interconnect.plugins.module_utils._topology import topology_from_hostvars

_CRD_NAMES = ("clusters.kosmos.io", "clusternodes.kosmos.io", "nodeconfigs.kosmos.io")


def kosmos_plan(hostvars, names, defaults=None):
    """The per-group plan of ``_kosmos.plan_groups`` for the model of the hosts ``names`` (inventory order)."""
    try:
        return kosmos.plan_groups(topology_from_hostvars(hostvars, names or []), dict(defaults or {}))
    except (TypeError, ValueError, AttributeError) as err:
        raise AnsibleFilterError("kosmos_plan: %s" % err) from err


def kosmos_plan_message(plan):
    """One paragraph naming every problem of a plan and its fix."""
    return kosmos.failure_message(plan.get("errors") or [])


def _documents(items):
    for item in items or []:
        if isinstance(item, str):
            try:
                yield from yaml.safe_load_all(item)
            except yaml.YAMLError as err:
                raise AnsibleFilterError("kosmos_crds: a manifest file is not YAML: %s" % err) from err
        else:
            yield item


def kosmos_crds(documents, required=_CRD_NAMES):
    """The CustomResourceDefinitions named ``required`` among manifests (file contents or parsed documents).

    Fails naming the missing ones, so a manifest source without them is refused before any change.
    """
    found = {}
    for doc in _documents(documents):
        if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
            name = (doc.get("metadata") or {}).get("name")
            if name in required:
                found[name] = doc
    missing = [name for name in required if name not in found]
    if missing:
        raise AnsibleFilterError("kosmos_crds: the manifest source has no CustomResourceDefinition %s; point "
                                 "kosmos_manifest_source at the Kosmos %s of the pinned version"
                                 % (", ".join(missing), "deploy/crds directory"))
    # Generated CRDs carry "creationTimestamp: null" and an empty status, which only the server sets.
    result = []
    for name in required:
        doc = {k: v for k, v in found[name].items() if k != "status"}
        doc["metadata"] = {k: v for k, v in (doc.get("metadata") or {}).items() if k != "creationTimestamp"}
        result.append(doc)
    return result


def kosmos_data_plane(pairs, probe_results=None):
    """Cluster-by-cluster data-plane matrix from node-pair probes; ``None`` says they were not run.

    ``probe_results`` is the registered loop of the probe task: each result has the probe as
    ``item`` (with its ``key``) and the command's ``rc``; a result without ``rc`` did not run.
    """
    results = None
    if probe_results is not None:
        results = {}
        for result in probe_results:
            item = result.get("item") or {}
            if item.get("key"):
                results[item["key"]] = result.get("rc") == 0
    return kosmos.data_plane_matrix(pairs or [], results)


def kosmos_probe_targets(pairs, probe_pods, members=None):
    """One probe per (source probe Pod, target IP): ``{key, kind, src_cluster, src_node, pod, namespace, target,
    kubeconfig, context}``.

    ``probe_pods`` maps a cluster to ``{"pod": {node: {name, namespace}}, "host": {...}}``: the probe
    Pods on the Pod network and on the host network of each node, as ``kosmosctl check`` runs them;
    ``members`` (the plan's) say how to reach each source cluster.
    """
    reach = {m["name"]: m for m in members or []}
    probes = {}
    for pair in pairs or []:
        for kind in ("host", "pod"):
            target = pair.get(kind + "_target")
            pod = (((probe_pods or {}).get(pair["src_cluster"]) or {}).get(kind) or {}).get(pair["src_node"])
            if not target or not pod:
                continue
            key = "%s>%s" % (pair["src_node"], target)
            source = reach.get(pair["src_cluster"]) or {}
            probes[key] = {"key": key, "kind": kind, "src_cluster": pair["src_cluster"], "src_node": pair["src_node"],
                           "pod": pod["name"], "namespace": pod["namespace"], "target": target,
                           "kubeconfig": source.get("kubeconfig"), "context": source.get("context")}
    return [probes[k] for k in sorted(probes)]


def kosmos_probe_pods(info_results):
    """``{cluster: {"pod"|"host": {node: {name, namespace}}}}`` from the registered loop of a Pod listing.

    Each result has the member as ``item`` (with its ``name``) and the probe Pods as ``resources``.
    """
    result = {}
    for listing in info_results or []:
        entry = {"pod": {}, "host": {}}
        for pod in listing.get("resources") or []:
            spec = pod.get("spec") or {}
            if (pod.get("status") or {}).get("phase") != "Running" or not spec.get("nodeName"):
                continue
            kind = "host" if spec.get("hostNetwork") else "pod"
            entry[kind][spec["nodeName"]] = {"name": pod["metadata"]["name"], "namespace": pod["metadata"]["namespace"]}
        result[(listing.get("item") or {}).get("name")] = entry
    return result


def kosmos_diagnosis_text(diagnosis):
    """The diagnosis of one group as lines."""
    return kosmos.render_diagnosis(diagnosis)


class FilterModule:
    def filters(self):
        return {
            "kosmos_plan": kosmos_plan,
            "kosmos_plan_message": kosmos_plan_message,
            "kosmos_crds": kosmos_crds,
            "kosmos_data_plane": kosmos_data_plane,
            "kosmos_probe_targets": kosmos_probe_targets,
            "kosmos_probe_pods": kosmos_probe_pods,
            "kosmos_diagnosis_text": kosmos_diagnosis_text,
        }
