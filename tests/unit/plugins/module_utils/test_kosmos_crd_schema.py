"""The lab's stand-in Kosmos CRDs: structural schemas, and the Cluster objects the collection builds fit them.

No cluster: a small walker stands in for the API server's validation (unknown field, wrong type,
enum value, missing required field), so a field the collection writes wrong fails here before
the lab prunes or rejects it.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime
import pathlib
import typing as t

import pytest
import yaml

from ansible_collections.multicloud.interconnect.plugins.module_utils import _kosmos as kosmos
from ansible_collections.multicloud.interconnect.plugins.module_utils._topology import topology_from_inventory

from .test_kosmos import DEFAULTS

REPO = pathlib.Path(__file__).resolve().parents[4]
STANDIN = REPO / "tools" / "lab" / "standin" / "kosmos" / "crds.yaml"


def load_crds() -> t.Dict[str, t.Dict[str, t.Any]]:
    with STANDIN.open(encoding="utf-8") as handle:
        docs = [d for d in yaml.safe_load_all(handle) if d]
    return {d["spec"]["names"]["kind"]: d for d in docs}


CRDS = load_crds()


def schema_of(kind: str) -> t.Dict[str, t.Any]:
    (version,) = CRDS[kind]["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]


# ---- a structural-schema walker ------------------------------------------------------------------

def structural_problems(node: t.Any, path: str = "") -> t.List[str]:
    """What makes a schema non-structural (or open where it must not be), as paths."""
    if not isinstance(node, dict):
        return ["%s: not a schema" % (path or "<root>")]
    found = []
    for forbidden in ("$ref", "definitions", "dependencies", "id", "patternProperties", "additionalItems"):
        if forbidden in node:
            found.append("%s: %s is not allowed" % (path or "<root>", forbidden))
    if node.get("x-kubernetes-int-or-string"):
        if "type" in node:
            found.append("%s: int-or-string must not have a type" % path)
    elif "type" not in node:
        found.append("%s: no type" % (path or "<root>"))
    if "properties" in node and "additionalProperties" in node:
        found.append("%s: properties and additionalProperties together" % path)
    for name, child in (node.get("properties") or {}).items():
        found.extend(structural_problems(child, "%s.%s" % (path, name) if path else name))
    if isinstance(node.get("additionalProperties"), dict):
        found.extend(structural_problems(node["additionalProperties"], path + "{}"))
    if node.get("type") == "array":
        if "items" not in node:
            found.append("%s: array without items" % path)
        else:
            found.extend(structural_problems(node["items"], path + "[]"))
    for name in node.get("required") or []:
        if name not in (node.get("properties") or {}):
            found.append("%s: required %s is not a property" % (path, name))
    if "default" in node:
        found.extend("%s: default: %s" % (path, p) for p in validate(node["default"], node, path))
    return found


def _is_date_time(value: str) -> bool:
    try:
        datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_base64(value: str) -> bool:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
}
_FORMATS = {"date-time": _is_date_time, "byte": _is_base64}


def validate(value: t.Any, schema: t.Mapping[str, t.Any], path: str = "") -> t.List[str]:
    """The problems of ``value`` against ``schema``: unknown field, wrong type, enum, required, format."""
    where = path or "<root>"
    if schema.get("x-kubernetes-int-or-string"):
        if not (isinstance(value, str) or _TYPES["integer"](value)):
            return ["%s: %r is neither an integer nor a string" % (where, value)]
        return []
    kind = schema.get("type")
    if kind and not _TYPES[kind](value):
        return ["%s: %r is not of type %s" % (where, value, kind)]
    found = []
    if "enum" in schema and value not in schema["enum"]:
        found.append("%s: %r is not one of %s" % (where, value, ", ".join(map(str, schema["enum"]))))
    if kind == "string" and schema.get("format") in _FORMATS and not _FORMATS[schema["format"]](value):
        found.append("%s: %r is not a %s" % (where, value, schema["format"]))
    if kind == "array":
        for index, item in enumerate(value):
            found.extend(validate(item, schema["items"], "%s[%d]" % (path, index)))
    if kind == "object":
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for name, item in value.items():
            child = "%s.%s" % (path, name) if path else name
            if name in properties:
                found.extend(validate(item, properties[name], child))
            elif isinstance(extra, dict):
                found.extend(validate(item, extra, child))
            elif not (schema.get("x-kubernetes-preserve-unknown-fields") or extra is True
                      or (path == "metadata" or path.startswith("metadata."))):
                found.append("%s: unknown field" % child)
        for name in schema.get("required") or []:
            if name not in value:
                found.append("%s: required field missing" % ("%s.%s" % (path, name) if path else name))
    return found


# ---- the stand-in CRDs ---------------------------------------------------------------------------

def test_standin_declares_the_three_clusterlink_kinds():
    assert sorted(CRDS) == ["Cluster", "ClusterNode", "NodeConfig"]
    for kind, crd in CRDS.items():
        assert crd["metadata"]["labels"] == {"multicloud.interconnect/lab-standin": "true"}
        assert crd["spec"]["group"] == kosmos.GROUP and crd["spec"]["scope"] == "Cluster"
        assert [v["name"] for v in crd["spec"]["versions"]] == [kosmos.VERSION]


@pytest.mark.parametrize("kind", ["Cluster", "ClusterNode", "NodeConfig"])
def test_schemas_are_structural_and_spec_is_closed(kind):
    schema = schema_of(kind)
    assert structural_problems(schema) == []

    def open_nodes(node, path):
        if node.get("x-kubernetes-preserve-unknown-fields"):
            yield path
        for name, child in (node.get("properties") or {}).items():
            yield from open_nodes(child, path + "." + name)
        if isinstance(node.get("items"), dict):
            yield from open_nodes(node["items"], path + "[]")
    assert list(open_nodes(schema, "")) == []


def test_walker_rejects_a_non_structural_schema():
    assert structural_problems({"type": "object", "properties": {"spec": {"properties": {}}}}) == ["spec: no type"]
    assert structural_problems({"type": "object", "properties": {"x": {"$ref": "#/y", "type": "string"}}}) == [
        "x: $ref is not allowed"]


# ---- what the collection writes ------------------------------------------------------------------

def inventory_cluster(**extra):
    values = {"cluster_network_group": "net-b", "cluster_cni": "kosmos", "cluster_pod_cidrs": ["10.244.0.0/16"],
              "cluster_kubeconfig": "/k/net-b.yaml"}
    values.update(extra)
    return values


def built_clusters(**extra):
    inventory = {"cluster03": inventory_cluster(**extra),
                 "cluster04": inventory_cluster(cluster_pod_cidrs=["10.245.0.0/16", "fd00:245::/56"], **extra)}
    plan = kosmos.plan_groups(topology_from_inventory(inventory), DEFAULTS)
    assert plan["ok"], plan["errors"]
    group = plan["groups"]["net-b"]
    labels = kosmos.managed_labels("net-b", group["host"])
    kubeconfig = kosmos.build_kubeconfig("cluster04", "https://10.0.0.4:6443", b"CA", "token")
    return [kosmos.cluster_object(m, kosmos.DEFAULT_NAMESPACE, kosmos.DEFAULT_IMAGE_REPOSITORY, labels, kubeconfig)
            for m in group["members"]]


@pytest.mark.parametrize("extra", [
    {},
    {"kosmos_network_type": "p2p", "kosmos_ip_family": "ipv4"},
    {"kosmos_nic_node_names": [{"interface_name": "eth1", "node_names": ["node-a", "node-b"]}],
     "kosmos_autodetection_method": "can-reach=10.0.0.1",
     "cluster_global_cidrs": {"10.244.0.0/16": "10.144.0.0/16"}},
], ids=["gateway", "p2p-ipv4", "optional-fields"])
def test_cluster_objects_the_collection_builds_fit_the_schema(extra):
    for obj in built_clusters(**extra):
        assert validate(obj, schema_of("Cluster")) == [], obj["metadata"]["name"]


def test_check_mode_cluster_without_kubeconfig_fits_the_schema():
    member = {"name": "cluster04", "root": False,
              "cluster_link_options": kosmos.cluster_link_options(
                  topology_from_inventory({"cluster04": inventory_cluster()}).clusters["cluster04"], DEFAULTS)}
    assert validate(kosmos.cluster_object(member, "kosmos-system", "", {}, None), schema_of("Cluster")) == []


def test_replaced_object_with_server_and_controller_fields_fits_the_schema():
    desired = built_clusters()[1]
    observed = copy.deepcopy(desired)
    observed["metadata"].update(resourceVersion="7", finalizers=["kosmos.io/operator-controller"],
                                creationTimestamp="2026-01-01T00:00:00Z")
    observed["status"] = {"clusterLinkStatus": {"podCIDRs": ["10.245.0.0/16"], "serviceCIDRs": ["10.96.0.0/16"]}}
    assert validate(kosmos.merged_for_replace(desired, observed), schema_of("Cluster")) == []


def test_controller_shaped_clusternode_and_nodeconfig_fit_the_schema():
    # What the read-back reads (spec.clusterName, spec.roles); the collection never writes these kinds.
    node = {"apiVersion": "kosmos.io/v1alpha1", "kind": "ClusterNode", "metadata": {"name": "cluster04-node-a"},
            "spec": {"clusterName": "cluster04", "nodeName": "node-a", "podCIDRs": ["10.245.0.0/24"],
                     "ip": "10.0.0.4", "roles": ["gateway"], "interfaceName": "eth0"}}
    config = {"apiVersion": "kosmos.io/v1alpha1", "kind": "NodeConfig", "metadata": {"name": "cluster04-node-a"},
              "spec": {"devices": [{"type": "vxlan", "name": "vx-bridge", "addr": "220.0.0.4/8", "mac": "aa:bb:cc:dd:ee:ff",
                                    "bindDev": "eth0", "id": 54, "port": 4877}],
                       "routes": [{"cidr": "10.244.0.0/24", "gw": "220.0.0.3", "dev": "vx-bridge"}]},
              "status": {"lastSyncTime": "2026-01-01T00:00:00Z"}}
    assert validate(node, schema_of("ClusterNode")) == []
    assert validate(config, schema_of("NodeConfig")) == []


# ---- what the schema must refuse ------------------------------------------------------------------

def test_misspelled_field_is_reported():
    obj = built_clusters()[0]
    obj["spec"]["clusterLinkOptions"]["networkTyp"] = obj["spec"]["clusterLinkOptions"].pop("networkType")
    assert validate(obj, schema_of("Cluster")) == ["spec.clusterLinkOptions.networkTyp: unknown field"]


def test_bad_enum_is_reported():
    obj = built_clusters()[0]
    obj["spec"]["clusterLinkOptions"]["networkType"] = "vxlan"
    assert validate(obj, schema_of("Cluster")) == [
        "spec.clusterLinkOptions.networkType: 'vxlan' is not one of p2p, gateway"]


@pytest.mark.parametrize("mutate, problem", [
    (lambda s: s["clusterLinkOptions"].update(enable="true"),
     "spec.clusterLinkOptions.enable: 'true' is not of type boolean"),
    (lambda s: s["clusterLinkOptions"]["bridgeCIDRs"].pop("ip6"),
     "spec.clusterLinkOptions.bridgeCIDRs.ip6: required field missing"),
    (lambda s: s["clusterLinkOptions"].update(nicNodeNames=[{"interfaceName": "eth1", "nodeName": "node-a"}]),
     "spec.clusterLinkOptions.nicNodeNames[0].nodeName: 'node-a' is not of type array"),
    (lambda s: s.update(kubeconfig="not base64!"), "spec.kubeconfig: 'not base64!' is not a byte"),
    (lambda s: s["clusterTreeOptions"].update(leafModel=[]), "spec.clusterTreeOptions.leafModel: unknown field"),
], ids=["type", "required", "array", "byte", "unknown-nested"])
def test_other_mistakes_are_reported(mutate, problem):
    obj = built_clusters()[0]
    mutate(obj["spec"])
    assert validate(obj, schema_of("Cluster")) == [problem]


def test_clusternode_and_nodeconfig_mistakes_are_reported():
    assert validate({"spec": {"role": ["gateway"]}}, schema_of("ClusterNode")) == ["spec.role: unknown field"]
    assert validate({"spec": {"devices": [{"type": "vxlan", "name": "vx", "addr": "a", "mac": "m", "bindDev": "d",
                                           "id": "54", "port": 4877}]}}, schema_of("NodeConfig")) == [
        "spec.devices[0].id: '54' is not of type integer"]
    assert validate({"metadata": {"name": "x"}}, schema_of("NodeConfig")) == ["spec: required field missing"]
