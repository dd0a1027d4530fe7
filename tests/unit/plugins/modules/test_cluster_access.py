"""Every module that talks to clusters takes the same access options, documented once, in one action group."""

from __future__ import annotations

import importlib
import json
import pathlib
import re

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from ansible_collections.multicloud.interconnect.plugins.module_utils._k8s import with_access_defaults

REPO = pathlib.Path(__file__).resolve().parents[4]
MODULES = REPO / "plugins" / "modules"
GROUP = yaml.safe_load((REPO / "meta" / "runtime.yml").read_text())["action_groups"]["k8s"]
MODULE_UTILS = REPO / "plugins" / "module_utils"
# A file reaches a cluster when it builds an API client; a module does when it, or any module_utils
# it imports (directly or through others), does.
_IMPORTED = re.compile(r"plugins\.module_utils(?:\.(_\w+)| import ([\w, ]+))")


def _imported_utils(text: str) -> set:
    names = set()
    for direct, listed in _IMPORTED.findall(text):
        names.update([direct] if direct else [n.strip().split(" as ")[0] for n in listed.split(",")])
    return {n for n in names if (MODULE_UTILS / (n + ".py")).exists()}


def talks_to_clusters(path: pathlib.Path, seen=None) -> bool:
    seen = set() if seen is None else seen
    text = path.read_text()
    if re.search(r"(?<!def )\bapi_client\(", text):
        return True
    for name in sorted(_imported_utils(text) - seen):
        seen.add(name)
        if talks_to_clusters(MODULE_UTILS / (name + ".py"), seen):
            return True
    return False


def documentation(name: str) -> dict:
    module = importlib.import_module("ansible_collections.multicloud.interconnect.plugins.modules." + name)
    return yaml.safe_load(module.DOCUMENTATION)


def test_the_action_group_is_every_module_that_talks_to_clusters():
    expected = sorted(p.stem for p in MODULES.glob("*.py") if talks_to_clusters(p))
    assert "validate_topology" not in expected
    assert sorted(GROUP) == expected


@pytest.mark.parametrize("name", GROUP)
def test_each_module_of_the_group_documents_the_access_options_by_the_shared_fragment(name):
    doc = documentation(name)
    assert "multicloud.interconnect.cluster_access" in doc["extends_documentation_fragment"]
    # Documented once: a module's own options must not redefine them.
    assert not {"kubeconfig", "context"} & set(doc["options"])


def test_module_values_fill_only_what_an_entry_leaves_out():
    params = {"kubeconfig": "/etc/mci/all.yaml", "context": None}
    filled = with_access_defaults({"a": {"kubeconfig": "/a.yaml"}, "b": {}, "c": None}, params)
    assert filled == {"a": {"kubeconfig": "/a.yaml"}, "b": {"kubeconfig": "/etc/mci/all.yaml"}, "c": None}
    contract = with_access_defaults([{"cluster_context": "x"}], {"kubeconfig": "/k", "context": "y"},
                                    "cluster_kubeconfig", "cluster_context")
    assert contract == [{"cluster_context": "x", "cluster_kubeconfig": "/k"}]


# One entry per multi-cluster module, with no kubeconfig of its own (the kubeconfig module's
# module-level default is covered by its own tests).
ENTRIES = {
    "cilium_mesh_info": {"clusters": {"cluster01": {"name": "cluster01", "id": 1, "group": "net-a", "peers": []}}},
    "interconnect": {"clusters": {"cluster01": {"network_group": "net-a", "eastwest_gateway": {"service_type": "NodePort"}}},
                     "groups": ["net-a"]},
    "interconnect_info": {"clusters": {"cluster01": {"network_group": "net-a",
                                                     "eastwest_gateway": {"service_type": "NodePort"}}}},
    "topology_status": {"clusters": {"cluster01": {"cluster_id": 1, "cluster_pod_cidrs": ["10.244.0.0/16"],
                                                   "cluster_service_cidrs": ["10.96.0.0/16"],
                                                   "cluster_network_group": "net-a"}}},
    "cluster_preflight": {"clusters": {"cluster01": {"cluster_context": "cluster01"}}},
    "mesh_lease": {"clusters": {"cluster01": {"cluster_context": "cluster01"}}, "holder": "me"},
    "kosmos_link": {"group": "net-b", "host": "cluster01", "members": [{"name": "cluster01", "cluster_link_options": {}}]},
    "kosmos_link_info": {"group": "net-b", "host": "cluster01",
                         "members": [{"name": "cluster01", "cluster_link_options": {}}]},
    "cluster_objects": {"cluster": "cluster01", "read": [{"api_version": "v1", "kind": "Node"}]},
    "helm_releases": {"cluster": "cluster01", "releases": [{"name": "istiod", "namespace": "istio-system",
                                                           "chart_ref": "istiod"}]},
}


def test_every_multi_cluster_module_is_covered():
    assert sorted(ENTRIES) == sorted(set(GROUP) - {"kubeconfig"})


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_a_module_default_kubeconfig_reaches_the_cluster_reader(name, tmp_path, capsys, monkeypatch):
    """The kubeconfig only at module level (as module_defaults sets it): the real loader opens that file."""
    monkeypatch.delenv("K8S_AUTH_KUBECONFIG", raising=False)
    missing = tmp_path / "from-module-defaults.yaml"
    module = importlib.import_module("ansible_collections.multicloud.interconnect.plugins.modules." + name)
    with patch_module_args(dict(ENTRIES[name], kubeconfig=str(missing))):
        with pytest.raises(SystemExit):
            module.main()
    result = json.loads(capsys.readouterr().out)
    result.pop("invocation", None)  # the arguments echoed back prove nothing
    said = result.get("msg") if result.get("failed") else json.dumps(result.get("status", {}).get("clusters"))
    assert "cannot load kubeconfig %s" % missing in said and "cluster01" in said, result


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_k8s_auth_kubeconfig_reaches_the_cluster_reader_when_nothing_names_one(name, tmp_path, capsys, monkeypatch):
    """What an AWX credential injects: the argument spec's fallback, as in kubernetes.core."""
    injected = tmp_path / "injected-by-a-credential.yaml"
    monkeypatch.setenv("K8S_AUTH_KUBECONFIG", str(injected))
    module = importlib.import_module("ansible_collections.multicloud.interconnect.plugins.modules." + name)
    with patch_module_args(dict(ENTRIES[name])):
        with pytest.raises(SystemExit):
            module.main()
    result = json.loads(capsys.readouterr().out)
    assert result["invocation"]["module_args"]["kubeconfig"] == str(injected)
    said = result.get("msg") if result.get("failed") else json.dumps(result.get("status", {}).get("clusters"))
    assert "cannot load kubeconfig %s" % injected in said and "cluster01" in said, result
