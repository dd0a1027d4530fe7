"""copied(): a deep copy of values trees that reads mappings through their items, never through __deepcopy__
(Ansible's lazily templated containers copy their whole variable context that way)."""

from __future__ import annotations

from collections.abc import Mapping

from ansible_collections.multicloud.interconnect.plugins.module_utils._data import copied


class ContextHeavyMapping(Mapping):
    """Stands in for a lazily templated container: its items are the data, its own state must not be copied."""

    def __init__(self, data):
        self._data = data

    def __getitem__(self, key):
        return self._data[key]

    def __iter__(self):
        return iter(self._data)

    def __len__(self):
        return len(self._data)

    def __deepcopy__(self, memo):
        raise AssertionError("the container's own state was copied")


def test_a_copy_is_independent_of_the_original():
    original = {"global": {"meshID": "mesh1", "networks": [{"cidr": "10.0.0.0/16"}]}}
    copy = copied(original)
    copy["global"]["networks"][0]["cidr"] = "changed"
    copy["global"]["meshID"] = "changed"
    assert original == {"global": {"meshID": "mesh1", "networks": [{"cidr": "10.0.0.0/16"}]}}


def test_mappings_are_read_through_their_items_and_become_dicts():
    lazy = ContextHeavyMapping({"global": ContextHeavyMapping({"configValidation": False}), "ports": (1, 2)})
    assert copied(lazy) == {"global": {"configValidation": False}, "ports": [1, 2]}
    assert isinstance(copied(lazy)["global"], dict)  # the stand-in is no dict: this is a new one


def test_the_filters_merge_values_given_as_lazy_containers():
    from ansible_collections.multicloud.interconnect.plugins.filter.istio import istio_istiod_values
    from ansible_collections.multicloud.interconnect.plugins.module_utils._cilium import mask_values, merge_extra

    extra = ContextHeavyMapping({"global": ContextHeavyMapping({"configValidation": False})})
    values = istio_istiod_values(extra, "cluster01", "net-a", "mesh1")
    assert values["global"]["configValidation"] is False and values["global"]["network"] == "net-a"
    merged, conflicts = merge_extra({"cluster": {"name": "cluster01"}}, ContextHeavyMapping({"debug": {"enabled": True}}))
    assert merged == {"cluster": {"name": "cluster01"}, "debug": {"enabled": True}} and conflicts == []
    before, after = mask_values({"a": 1}, {"a": 2})
    assert (before, after) == ({"a": 1}, {"a": 2})
