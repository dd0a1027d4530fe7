# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kosmos ClusterLink: which clusters join which host, and the objects that makes on each side.

Private to the multicloud.interconnect collection: other collections must not import it,
its interface may change without notice.

Pure and stdlib-only. ``plan_groups`` turns the inventory's model (``_topology.Topology``) into
one plan per network group whose ``cluster_cni`` is ``kosmos``; the other functions compute the objects ``kosmosctl join
cluster --enable-link`` would create (a ``clusters.kosmos.io`` object on the host, a namespace,
service accounts, RBAC and a control-plane secret on the member), compare them with what a
cluster has, and read the result back. The modules only do the API calls.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import ipaddress
import json
import typing as t

from ansible_collections.multicloud.interconnect.plugins.module_utils._inventory import as_list
from ansible_collections.multicloud.interconnect.plugins.module_utils._problems import from_dict, problem, refusal

GROUP = "kosmos.io"
VERSION = "v1alpha1"
CLUSTER_PLURAL = "clusters"
CLUSTERNODE_PLURAL = "clusternodes"
NODECONFIG_PLURAL = "nodeconfigs"

DEFAULT_NAMESPACE = "kosmos-system"
DEFAULT_IMAGE_REPOSITORY = "ghcr.io/kosmos-io"
NETWORK_TYPES = ("p2p", "gateway")
IP_FAMILIES = ("ipv4", "ipv6", "all")
# kosmosctl join writes these tunnel ranges into every Cluster it creates (pkg/kosmosctl/join);
# every cluster of a group must use the same ones, so they are group settings here.
DEFAULT_BRIDGE_CIDRS = {"ip": "220.0.0.0/8", "ip6": "9480::/16"}
DEFAULT_LOCAL_CIDRS = {"ip": "210.0.0.0/8", "ip6": "9470::/16"}

# Names kosmosctl uses, so that kosmosctl get/unjoin and the Kosmos controllers find the objects.
CONTROL_SA = "kosmos-control"
OPERATOR_SA = "clusterlink-operator"
CLUSTER_ROLE = "kosmos"
CONTROLPANEL_SECRET = "controlpanel-config"
# Our own: a long-lived token for kosmos-control, from which the member kubeconfig is built, so
# the host never stores a user's admin credentials (or an exec plugin that cannot run in a Pod).
TOKEN_SECRET = "kosmos-control-token"
ROOT_ANNOTATION = "kosmos.io/cluster-role"
ROOT_VALUE = "root"
EXCLUDE_LABEL = "kosmos.io/exclude"

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "multicloud.interconnect"
HOST_LABEL = "interconnect.multicloud.io/kosmos-host"
GROUP_LABEL = "interconnect.multicloud.io/network-group"

MASK = "********"
NOT_OBSERVED = "not observed (controller-created; needs real clusters)"

# Per-cluster role inputs read from inventory host variables (role defaults fill the gaps).
MEMBER_VARS = (
    "kosmos_network_type",
    "kosmos_host_cluster",
    "kosmos_cni",
    "kosmos_default_nic",
    "kosmos_ip_family",
    "kosmos_api_server",
    "kosmos_nic_node_names",
    "kosmos_autodetection_method",
    "kosmos_bridge_cidrs",
    "kosmos_local_cidrs",
)
# Settings every cluster of one group must share.
GROUP_SETTINGS = ("kosmos_network_type", "kosmos_host_cluster", "kosmos_bridge_cidrs", "kosmos_local_cidrs")


# Options of kosmos_link and kosmos_link_info: one network group, its host and its members.
GROUP_SPEC: t.Dict[str, t.Dict[str, t.Any]] = {
    "group": {"type": "str", "required": True},
    "host": {"type": "str", "required": True},
    "members": {"type": "list", "elements": "dict", "required": True, "options": {
        "name": {"type": "str", "required": True},
        "inventory_name": {"type": "str"},
        "kubeconfig": {"type": "raw"},
        "context": {"type": "str"},
        "api_server": {"type": "str"},
        "root": {"type": "bool", "default": False},
        "cluster_link_options": {"type": "dict", "required": True},
    }},
    "namespace": {"type": "str", "default": DEFAULT_NAMESPACE},
}


class KosmosError(Exception):
    """Bad input or an unexpected object; the message names the clusters and the fix."""


# ---- plan: inventory -> groups ----------------------------------------------------------------

def _problem(code: str, field: str, clusters: t.Iterable[str], message: str, fix: str,
             group: t.Optional[str] = None) -> t.Dict[str, t.Any]:
    return problem(code, message, fix, clusters, group, field).as_dict()


def _families(cidrs: t.Iterable[t.Any]) -> t.Set[int]:
    found = set()
    for cidr in cidrs or []:
        try:
            found.add(ipaddress.ip_network(str(cidr), strict=False).version)
        except ValueError:
            continue  # the topology validation reports unparsable CIDRs
    return found


def derive_ip_family(pod_cidrs: t.Iterable[t.Any]) -> str:
    """``ipv4``, ``ipv6`` or ``all`` (dual stack) from a cluster's Pod CIDRs."""
    families = _families(pod_cidrs)
    if families == {4, 6}:
        return "all"
    if families == {6}:
        return "ipv6"
    return "ipv4"


def _setting(cluster: t.Any, defaults: t.Mapping[str, t.Any], name: str) -> t.Any:
    """A Kosmos setting of one cluster (a ``_topology.Cluster``): the inventory's, else the role default."""
    value = cluster.settings.get(name)
    return defaults.get(name) if value is None else value


def _cidr_pair(value: t.Any) -> t.Dict[str, str]:
    spec = dict(value or {})
    return {"ip": str(spec.get("ip", "")), "ip6": str(spec.get("ip6", ""))}


def cluster_link_options(cluster: t.Any, defaults: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    """``spec.clusterLinkOptions`` of one cluster (a ``_topology.Cluster``), as ``kosmosctl join --enable-link`` fills it."""
    ip_family = _setting(cluster, defaults, "kosmos_ip_family") or "auto"
    if ip_family == "auto":
        ip_family = derive_ip_family(cluster.pod_cidrs)
    options: t.Dict[str, t.Any] = {
        "enable": True,
        "cni": str(_setting(cluster, defaults, "kosmos_cni") or "calico"),
        "networkType": str(_setting(cluster, defaults, "kosmos_network_type") or "gateway"),
        "ipFamily": str(ip_family),
        "useIPPool": False,
        "defaultNICName": str(_setting(cluster, defaults, "kosmos_default_nic") or "*"),
        "bridgeCIDRs": _cidr_pair(_setting(cluster, defaults, "kosmos_bridge_cidrs") or DEFAULT_BRIDGE_CIDRS),
        "localCIDRs": _cidr_pair(_setting(cluster, defaults, "kosmos_local_cidrs") or DEFAULT_LOCAL_CIDRS),
    }
    global_cidrs = cluster.global_cidrs or {}
    if isinstance(global_cidrs, dict) and global_cidrs:
        options["globalCIDRsMap"] = {str(k): str(v) for k, v in sorted(global_cidrs.items())}
    nic_node_names = _setting(cluster, defaults, "kosmos_nic_node_names") or []
    if nic_node_names:
        options["nicNodeNames"] = [
            {"interfaceName": str(entry.get("interface_name", entry.get("interfaceName", ""))),
             "nodeName": [str(n) for n in as_list(entry.get("node_names", entry.get("nodeName")))]}
            for entry in nic_node_names
        ]
    method = _setting(cluster, defaults, "kosmos_autodetection_method")
    if method:
        options["autodetectionMethod"] = str(method)
    return options


def plan_groups(topology: t.Any, defaults: t.Optional[t.Mapping[str, t.Any]] = None) -> t.Dict[str, t.Any]:
    """One plan per Kosmos network group of ``topology`` (a ``_topology.Topology``), and the problems
    that forbid acting on it.

    The topology's clusters are in inventory order: the first cluster of a group is its host unless
    ``kosmos_host_cluster`` names another. ``defaults`` are the role defaults.
    """
    defaults = dict(defaults or {})
    problems: t.List[t.Dict[str, t.Any]] = []
    groups: t.Dict[str, t.Any] = {}
    clusters: t.Dict[str, t.Any] = {}
    for group, members_of_group in topology.members(cni="kosmos").items():
        cluster_names = [c.name for c in members_of_group]
        settings = {}
        for setting in GROUP_SETTINGS:
            values: t.Dict[str, t.List[str]] = {}
            for cluster in members_of_group:
                value = _setting(cluster, defaults, setting)
                values.setdefault(json.dumps(value, sort_keys=True), []).append(cluster.name)
            if len(values) > 1:
                detail = "; ".join("%s: %s" % (value, ", ".join(who)) for value, who in sorted(values.items()))
                problems.append(_problem(
                    "KOSMOS_GROUP_SETTING_MISMATCH", setting, cluster_names,
                    "network group %s is one Kosmos ClusterLink, but its clusters disagree on %s (%s)."
                    % (group, setting, detail),
                    "set %s once for the whole group (group_vars), or on every cluster of %s alike" % (setting, group),
                    group))
            settings[setting] = json.loads(next(iter(values)))
        network_type = settings["kosmos_network_type"] or "gateway"
        if network_type not in NETWORK_TYPES:
            problems.append(_problem(
                "KOSMOS_NETWORK_TYPE_INVALID", "kosmos_network_type", cluster_names,
                "network group %s has kosmos_network_type %r." % (group, network_type),
                "use p2p (every node tunnels to every node: fastest, large route/FDB tables) or gateway "
                "(one elected node per cluster carries the traffic: fewer rules, longer path)", group))
        host = settings["kosmos_host_cluster"] or cluster_names[0]
        if host not in cluster_names:
            problems.append(_problem(
                "KOSMOS_HOST_NOT_IN_GROUP", "kosmos_host_cluster", cluster_names,
                "kosmos_host_cluster of network group %s is %r, which is not one of its clusters (%s)."
                % (group, host, ", ".join(cluster_names)),
                "name a cluster of %s, or leave kosmos_host_cluster unset to use %s" % (group, cluster_names[0]),
                group))
            host = cluster_names[0]
        host_inventory = members_of_group[cluster_names.index(host)].inventory_name
        members = []
        for cluster in members_of_group:
            options = cluster_link_options(cluster, defaults)
            if options["ipFamily"] not in IP_FAMILIES:
                problems.append(_problem(
                    "KOSMOS_IP_FAMILY_INVALID", "kosmos_ip_family", [cluster.name],
                    "cluster %s has kosmos_ip_family %r." % (cluster.name, options["ipFamily"]),
                    "use auto (from cluster_pod_cidrs), ipv4, ipv6 or all", group))
            else:
                have = _families(cluster.pod_cidrs)
                need = {"ipv4": {4}, "ipv6": {6}, "all": {4, 6}}[options["ipFamily"]]
                if have and not need <= have:
                    problems.append(_problem(
                        "KOSMOS_IP_FAMILY_UNSUPPORTED", "kosmos_ip_family", [cluster.name],
                        "cluster %s asks for ClusterLink ipFamily %s but its Pod CIDRs are IPv%s only."
                        % (cluster.name, options["ipFamily"], "/IPv".join(str(f) for f in sorted(have))),
                        "set kosmos_ip_family to auto, or add the missing Pod CIDR family", group))
            members.append({
                "name": cluster.name,
                "inventory_name": cluster.inventory_name,
                "kubeconfig": cluster.kubeconfig,
                "context": cluster.context,
                "api_server": _setting(cluster, defaults, "kosmos_api_server"),
                "root": cluster.name == host,
                "cluster_link_options": options,
            })
            clusters[cluster.inventory_name] = {"name": cluster.name, "group": group, "host": host,
                                                "host_inventory": host_inventory, "is_host": cluster.name == host}
        groups[group] = {"name": group, "host": host, "host_inventory": host_inventory,
                         "network_type": network_type, "members": members}
    known = {c.name: {"kubeconfig": c.kubeconfig, "context": c.context} for c in topology.clusters.values()}
    return {"ok": not problems, "errors": problems, "groups": groups, "clusters": clusters, "known_clusters": known}


def failure_message(problems: t.Iterable[t.Mapping[str, t.Any]]) -> str:
    """The refusal of a plan's ``errors``, rendered as every refusal of the collection is."""
    return refusal("Kosmos ClusterLink plan", [from_dict(p) for p in problems])


# ---- desired objects ----------------------------------------------------------------------------

def managed_labels(group: str, host: str) -> t.Dict[str, str]:
    return {MANAGED_BY_LABEL: MANAGED_BY, GROUP_LABEL: group, HOST_LABEL: host}


def build_kubeconfig(cluster: str, server: str, ca_pem: bytes, token: str) -> bytes:
    """A one-context kubeconfig for a service account token; byte-for-byte stable for the same inputs."""
    if not server or not token:
        raise KosmosError("cluster %s: cannot build its kubeconfig without a server URL and a token" % cluster)
    cluster_entry: t.Dict[str, t.Any] = {"server": server}
    if ca_pem:
        cluster_entry["certificate-authority-data"] = base64.b64encode(ca_pem).decode("ascii")
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": cluster_entry}],
        "users": [{"name": CONTROL_SA, "user": {"token": token}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": CONTROL_SA}}],
        "current-context": cluster,
        "preferences": {},
    }
    # JSON is YAML: clientcmd (Kosmos) and the Python client both read it.
    return json.dumps(config, sort_keys=True, indent=2).encode("utf-8")


def member_objects(namespace: str, labels: t.Mapping[str, str], is_host: bool) -> t.List[t.Dict[str, t.Any]]:
    """What ``kosmosctl join cluster --enable-link`` creates in the member, plus our token secret."""
    meta = {"labels": dict(labels)}
    objects: t.List[t.Dict[str, t.Any]] = []
    if not is_host:
        # The host's namespace belongs to the install (role tasks); a member's only to its join.
        objects.append({"apiVersion": "v1", "kind": "Namespace", "metadata": dict(meta, name=namespace)})
    for sa in (CONTROL_SA, OPERATOR_SA):
        objects.append({"apiVersion": "v1", "kind": "ServiceAccount",
                        "metadata": dict(copy.deepcopy(meta), name=sa, namespace=namespace)})
    objects.append({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": dict(copy.deepcopy(meta), name=CLUSTER_ROLE),
        # Kosmos's own role: its controllers program nodes and manage objects in every API group.
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                  {"nonResourceURLs": ["*"], "verbs": ["*"]}],
    })
    objects.append({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": dict(copy.deepcopy(meta), name=CLUSTER_ROLE),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": CLUSTER_ROLE},
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": namespace}
                     for sa in (CONTROL_SA, "clusterlink-controller-manager", OPERATOR_SA)],
    })
    objects.append({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
        "metadata": dict(copy.deepcopy(meta), name=TOKEN_SECRET, namespace=namespace,
                         annotations={"kubernetes.io/service-account.name": CONTROL_SA}),
    })
    return objects


def controlpanel_secret(namespace: str, labels: t.Mapping[str, str], host_kubeconfig: bytes) -> t.Dict[str, t.Any]:
    """The secret through which Kosmos components in a member reach the host (``controlpanel-config``)."""
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": CONTROLPANEL_SECRET, "namespace": namespace, "labels": dict(labels)},
        "data": {"kubeconfig": base64.b64encode(host_kubeconfig).decode("ascii")},
    }


def cluster_object(member: t.Mapping[str, t.Any], namespace: str, image_repository: str,
                   labels: t.Mapping[str, str], kubeconfig: t.Optional[bytes]) -> t.Dict[str, t.Any]:
    """The ``clusters.kosmos.io`` object of one member, on the host."""
    metadata: t.Dict[str, t.Any] = {"name": member["name"], "labels": dict(labels)}
    if member.get("root"):
        metadata["annotations"] = {ROOT_ANNOTATION: ROOT_VALUE}
    spec: t.Dict[str, t.Any] = {
        "namespace": namespace,
        "imageRepository": image_repository,
        "clusterLinkOptions": copy.deepcopy(dict(member["cluster_link_options"])),
        "clusterTreeOptions": {"enable": False},
    }
    if kubeconfig is not None:
        spec["kubeconfig"] = base64.b64encode(kubeconfig).decode("ascii")
    return {"apiVersion": "%s/%s" % (GROUP, VERSION), "kind": "Cluster", "metadata": metadata, "spec": spec}


# ---- desired vs observed -------------------------------------------------------------------------

def _subset_differences(desired: t.Any, observed: t.Any, path: str) -> t.List[str]:
    """Paths where ``observed`` does not carry ``desired``; extra observed keys are the server's business."""
    if isinstance(desired, dict):
        if not isinstance(observed, dict):
            return [path]
        found = []
        for key, value in desired.items():
            found.extend(_subset_differences(value, observed.get(key), "%s.%s" % (path, key) if path else key))
        return found
    return [] if desired == observed else [path]


# Keys of clusterLinkOptions whose absence from the desired object must remove them from the cluster.
_OPTIONAL_LINK_KEYS = ("globalCIDRsMap", "nicNodeNames", "autodetectionMethod")


def object_changes(desired: t.Mapping[str, t.Any], observed: t.Optional[t.Mapping[str, t.Any]]) -> t.List[str]:
    """The fields to change so ``observed`` matches ``desired``; ``['(create)']`` when it is absent."""
    if not observed or observed.get("metadata", {}).get("deletionTimestamp"):
        return ["(create)"]
    changes = []
    for key in ("labels", "annotations"):
        changes.extend(_subset_differences(desired.get("metadata", {}).get(key) or {},
                                           observed.get("metadata", {}).get(key) or {}, "metadata." + key))
    for key, value in desired.items():
        if key in ("apiVersion", "kind", "metadata"):
            continue
        changes.extend(_subset_differences(value, observed.get(key), key))
    if desired.get("kind") == "Cluster":
        want = desired.get("spec", {}).get("clusterLinkOptions", {})
        have = (observed.get("spec") or {}).get("clusterLinkOptions") or {}
        for key in _OPTIONAL_LINK_KEYS:
            if key not in want and have.get(key):
                changes.append("spec.clusterLinkOptions." + key)
        if "kubeconfig" not in desired.get("spec", {}):
            changes.append("spec.kubeconfig")  # not known yet (check mode before the token exists)
    return sorted(set(changes))


def merged_for_replace(desired: t.Mapping[str, t.Any], observed: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    """``observed`` with ``desired`` laid over it, keeping what others own (finalizers, status, extra labels)."""
    result = copy.deepcopy(dict(observed))
    metadata = result.setdefault("metadata", {})
    for key in ("labels", "annotations"):
        merged = dict(metadata.get(key) or {})
        merged.update(desired.get("metadata", {}).get(key) or {})
        if merged:
            metadata[key] = merged
    for key, value in desired.items():
        if key in ("apiVersion", "kind", "metadata"):
            continue
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _deep_merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    if desired.get("kind") == "Cluster":
        have = result.get("spec", {}).get("clusterLinkOptions") or {}
        want = desired.get("spec", {}).get("clusterLinkOptions", {})
        for key in _OPTIONAL_LINK_KEYS:
            if key not in want:
                have.pop(key, None)
        if "globalCIDRsMap" in want:
            have["globalCIDRsMap"] = copy.deepcopy(want["globalCIDRsMap"])  # a map is replaced, not merged
    return result


def _deep_merge(base: t.Mapping[str, t.Any], over: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    result = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _deep_merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def fingerprint(data: t.Union[str, bytes, None]) -> t.Optional[str]:
    """A short digest that says whether a secret value changed without showing it."""
    if data is None:
        return None
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return "sha256:" + hashlib.sha256(raw).hexdigest()[:12]


def masked(obj: t.Optional[t.Mapping[str, t.Any]]) -> t.Optional[t.Dict[str, t.Any]]:
    """A copy fit for diff output: kubeconfigs and secret data replaced by a digest, server noise removed."""
    if obj is None:
        return None
    result = copy.deepcopy(dict(obj))
    metadata = result.get("metadata") or {}
    for key in ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation"):
        metadata.pop(key, None)
    spec = result.get("spec")
    if isinstance(spec, dict) and spec.get("kubeconfig"):
        spec["kubeconfig"] = "%s (%s)" % (MASK, fingerprint(spec["kubeconfig"]))
    for key in ("data", "stringData"):
        if isinstance(result.get(key), dict):
            result[key] = {k: "%s (%s)" % (MASK, fingerprint(v)) for k, v in result[key].items()}
    result.pop("status", None)
    return result


def stale_clusters(observed: t.Iterable[t.Mapping[str, t.Any]], desired_names: t.Iterable[str],
                   host: str) -> t.List[str]:
    """Cluster objects this host's join created earlier whose cluster has left the group."""
    keep = set(desired_names)
    stale = []
    for obj in observed:
        labels = obj.get("metadata", {}).get("labels") or {}
        if labels.get(MANAGED_BY_LABEL) != MANAGED_BY or labels.get(HOST_LABEL) != host:
            continue  # joined by someone else (kosmosctl, another group): not ours to remove
        name = obj.get("metadata", {}).get("name")
        if name not in keep:
            stale.append(name)
    return sorted(stale)


def is_managed(obj: t.Optional[t.Mapping[str, t.Any]]) -> bool:
    labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
    return labels.get(MANAGED_BY_LABEL) == MANAGED_BY


# ---- read back -----------------------------------------------------------------------------------

def readback(members: t.Iterable[t.Mapping[str, t.Any]], observed_clusters: t.Mapping[str, t.Mapping[str, t.Any]],
             cluster_nodes: t.Optional[t.Iterable[t.Mapping[str, t.Any]]],
             node_configs: t.Optional[t.Iterable[t.Mapping[str, t.Any]]],
             member_side: t.Optional[t.Mapping[str, t.Mapping[str, bool]]] = None,
             stale: t.Iterable[str] = ()) -> t.Dict[str, t.Any]:
    """Per member: is its Cluster object there and equal to the inventory, and what the controllers made.

    ``cluster_nodes`` / ``node_configs`` are the host's ``clusternodes`` / ``nodeconfigs`` (None when
    the API was not asked); when a joined cluster has none, Kosmos's controllers have not run, as on
    a lab with simulated Pods, and the report says so instead of claiming success or failure.
    """
    nodes_by_cluster: t.Dict[str, t.List[t.Mapping[str, t.Any]]] = {}
    for node in cluster_nodes or []:
        nodes_by_cluster.setdefault((node.get("spec") or {}).get("clusterName", ""), []).append(node)
    config_names = {(c.get("metadata") or {}).get("name") for c in node_configs or []}
    report: t.Dict[str, t.Any] = {}
    all_ok = True
    for member in members:
        name = member["name"]
        obj = observed_clusters.get(name)
        desired = cluster_object(member, (obj or {}).get("spec", {}).get("namespace", DEFAULT_NAMESPACE), "", {}, None)
        entry: t.Dict[str, t.Any] = {"joined": obj is not None}
        if obj is None:
            entry.update(matches_inventory=False, mismatches=["clusters.kosmos.io/%s is missing" % name])
        else:
            options = (obj.get("spec") or {}).get("clusterLinkOptions") or {}
            want = desired["spec"]["clusterLinkOptions"]
            mismatches = ["spec.clusterLinkOptions." + p for p in _subset_differences(want, options, "")]
            for key in _OPTIONAL_LINK_KEYS:
                if key not in want and options.get(key):
                    mismatches.append("spec.clusterLinkOptions." + key)
            if not (obj.get("spec") or {}).get("kubeconfig"):
                mismatches.append("spec.kubeconfig is empty")
            entry.update(
                network_type=options.get("networkType"), ip_family=options.get("ipFamily"), cni=options.get("cni"),
                default_nic=options.get("defaultNICName"), global_cidrs=options.get("globalCIDRsMap") or {},
                link_enabled=bool(options.get("enable")),
                root=((obj.get("metadata") or {}).get("annotations") or {}).get(ROOT_ANNOTATION) == ROOT_VALUE,
                kubeconfig=fingerprint((obj.get("spec") or {}).get("kubeconfig")),
                status_pod_cidrs=((obj.get("status") or {}).get("clusterLinkStatus") or {}).get("podCIDRs") or [],
                matches_inventory=not mismatches, mismatches=sorted(mismatches))
        if member_side is not None:
            side = dict(member_side.get(name) or {})
            entry["member_side"] = side
            missing = sorted(k for k, present in side.items() if not present)
            if missing:
                entry["matches_inventory"] = False
                entry.setdefault("mismatches", []).extend("member %s is missing" % m for m in missing)
        nodes = nodes_by_cluster.get(name, [])
        if cluster_nodes is None:
            entry["cluster_nodes"] = "not read"
        elif nodes:
            entry["cluster_nodes"] = sorted((n.get("metadata") or {}).get("name") for n in nodes)
            entry["gateway_nodes"] = sorted((n.get("metadata") or {}).get("name") for n in nodes
                                            if "gateway" in ((n.get("spec") or {}).get("roles") or []))
            entry["node_configs"] = sorted(n for n in entry["cluster_nodes"] if n in config_names)
        else:
            entry["cluster_nodes"] = NOT_OBSERVED
            entry["gateway_nodes"] = NOT_OBSERVED
            entry["node_configs"] = NOT_OBSERVED
        all_ok = all_ok and entry["matches_inventory"]
        report[name] = entry
    return {"ok": all_ok, "clusters": report, "stale": sorted(stale)}


def render_readback(group: str, network_type: str, host: str, report: t.Mapping[str, t.Any]) -> t.List[str]:
    """The read-back as lines, like ``kubectl get clusters.kosmos.io`` plus what the controllers made."""
    lines = ["Kosmos ClusterLink %s: host %s, network type %s: %s"
             % (group, host, network_type, "matches the inventory" if report["ok"] else "DOES NOT match the inventory")]
    rows = [("NAME", "NETWORK_TYPE", "IP_FAMILY", "GLOBAL CIDRS", "CLUSTERNODES", "GATEWAY")]
    for name, entry in sorted(report["clusters"].items()):
        nodes = entry.get("cluster_nodes")
        gateways = entry.get("gateway_nodes")
        rows.append((
            name + (" (host)" if entry.get("root") else ""),
            str(entry.get("network_type") or "-"),
            str(entry.get("ip_family") or "-"),
            ",".join("%s=>%s" % kv for kv in sorted((entry.get("global_cidrs") or {}).items())) or "-",
            str(len(nodes)) if isinstance(nodes, list) else "not observed",
            ",".join(gateways) if isinstance(gateways, list) and gateways else
            ("-" if isinstance(gateways, list) or entry.get("network_type") != "gateway" else "not observed"),
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines.extend("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows)
    for name, entry in sorted(report["clusters"].items()):
        for mismatch in entry.get("mismatches") or []:
            lines.append("MISMATCH %s: %s" % (name, mismatch))
        if entry.get("cluster_nodes") == NOT_OBSERVED:
            lines.append("NOTE %s: clusternodes/nodeconfigs %s" % (name, NOT_OBSERVED))
    for name in report.get("stale") or []:
        lines.append("STALE %s: joined by this host but no longer in the group" % name)
    return lines


# ---- diagnosis -----------------------------------------------------------------------------------

def diagnosis_pairs(clusters: t.Mapping[str, t.Mapping[str, t.Any]]) -> t.List[t.Dict[str, t.Any]]:
    """Every ordered node pair across clusters, as ``kosmosctl check`` probes them.

    ``clusters`` maps a cluster name to ``{"nodes": [{"name", "ip", "pod_ip"}]}``; ``pod_ip`` is
    the address of the probe Pod on that node, if one runs. Each pair carries the host-network and
    the Pod-network target.
    """
    pairs = []
    names = sorted(clusters)
    for src in names:
        for dst in names:
            if src == dst:
                continue
            for src_node in clusters[src].get("nodes") or []:
                for dst_node in clusters[dst].get("nodes") or []:
                    pairs.append({"src_cluster": src, "dst_cluster": dst,
                                  "src_node": src_node.get("name"), "dst_node": dst_node.get("name"),
                                  "host_target": dst_node.get("ip"), "pod_target": dst_node.get("pod_ip")})
    return pairs


def control_plane_checks(group: str, network_type: str, report: t.Mapping[str, t.Any],
                         node_counts: t.Mapping[str, int]) -> t.Dict[str, t.Dict[str, str]]:
    """The half of a cluster-pair check the API can answer: both joined, same mode, nodes known."""
    names = sorted(report["clusters"])
    matrix: t.Dict[str, t.Dict[str, str]] = {}
    for src in names:
        row = {}
        for dst in names:
            if src == dst:
                row[dst] = "-"
                continue
            problems = []
            for name in (src, dst):
                entry = report["clusters"][name]
                if not entry.get("joined"):
                    problems.append("%s not joined" % name)
                elif entry.get("network_type") != network_type:
                    problems.append("%s in %s mode, group %s is %s" % (name, entry.get("network_type"), group,
                                                                       network_type))
                elif entry.get("mismatches"):
                    problems.append("%s differs from the inventory" % name)
                if not node_counts.get(name):
                    problems.append("%s has no nodes" % name)
            row[dst] = "ok" if not problems else "FAIL: " + "; ".join(sorted(set(problems)))
        matrix[src] = row
    return matrix


def data_plane_matrix(pairs: t.Iterable[t.Mapping[str, t.Any]],
                      results: t.Optional[t.Mapping[str, bool]]) -> t.Dict[str, t.Dict[str, str]]:
    """Cluster-by-cluster summary of node-pair probes; ``results`` maps ``src_node>dst_target`` to success."""
    matrix: t.Dict[str, t.Dict[str, t.Any]] = {}
    for pair in pairs:
        row = matrix.setdefault(pair["src_cluster"], {})
        cell = row.setdefault(pair["dst_cluster"], {"ok": 0, "failed": [], "total": 0})
        for kind in ("host", "pod"):
            target = pair.get(kind + "_target")
            if not target:
                continue
            cell["total"] += 1
            key = "%s>%s" % (pair["src_node"], target)
            if results is not None and results.get(key):
                cell["ok"] += 1
            elif results is not None:
                cell["failed"].append("%s %s->%s" % (kind, pair["src_node"], pair["dst_node"]))
    rendered: t.Dict[str, t.Dict[str, str]] = {}
    for src, row in matrix.items():
        for dst, cell in row.items():
            if results is None:
                text = "not run (%d probes; the data plane needs real clusters)" % cell["total"]
            elif cell["failed"]:
                text = "FAIL %d/%d: %s" % (cell["ok"], cell["total"], ", ".join(cell["failed"][:5]))
            else:
                text = "ok %d/%d" % (cell["ok"], cell["total"])
            rendered.setdefault(src, {})[dst] = text
    return rendered


def _matrix_lines(title: str, matrix: t.Mapping[str, t.Mapping[str, str]]) -> t.List[str]:
    names = sorted(set(matrix) | {dst for row in matrix.values() for dst in row})
    rows = [["FROM \\ TO"] + names]
    for src in names:
        rows.append([src] + [str((matrix.get(src) or {}).get(dst, "-")) for dst in names])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [title] + ["  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]


def render_diagnosis(diagnosis: t.Mapping[str, t.Any]) -> t.List[str]:
    """A diagnosis (read-back, control-plane and data-plane matrices) as lines for a terminal or a file."""
    lines = render_readback(diagnosis["group"], diagnosis["network_type"], diagnosis["host"], diagnosis["readback"])
    lines += _matrix_lines("Control plane (joined, same mode, matches the inventory, nodes known):",
                           diagnosis.get("control_plane") or {})
    lines += _matrix_lines("Data plane (node pairs, host and Pod network, like kosmosctl check):",
                           diagnosis.get("data_plane") or {})
    return lines
