"""The filters wrap the pure functions; errors become AnsibleFilterError naming the filter."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.multicloud.interconnect.plugins.filter.topology import FilterModule

FILTERS = FilterModule().filters()


def test_cidr_filters():
    assert FILTERS["cidr_valid"]("10.0.0.0/8") is True
    assert FILTERS["cidr_valid"]("10.0.0.1/8") is False
    assert FILTERS["cidr_canonical"]("10.0.0.1/8") == "10.0.0.0/8"
    assert FILTERS["cidr_overlaps"]("10.0.0.0/8", "10.9.0.0/16") is True
    assert FILTERS["cidr_overlaps"]("10.0.0.0/8", "fd00::/8") is False
    pairs = FILTERS["cidr_overlapping_pairs"](["10.0.0.0/8", "10.1.0.0/16", "11.0.0.0/8"])
    assert pairs == [["10.0.0.0/8", "10.1.0.0/16"]]


def test_filter_errors_name_the_filter():
    with pytest.raises(AnsibleFilterError, match="cidrs_overlap"):
        FILTERS["cidr_overlaps"]("10.0.0.1/8", "10.0.0.0/8")


def test_cluster_inventory_keeps_only_contract_variables():
    hostvars = {
        "c1": {"cluster_id": 1, "cluster_pod_cidrs": ["10.0.0.0/16"], "ansible_host": "x", "secret_token": "t"},
        "c2": {"cluster_id": 2},
        "other": {"cluster_id": 9},
    }
    assert FILTERS["cluster_inventory"](hostvars, ["c1", "c2"]) == {
        "c1": {"cluster_id": 1, "cluster_pod_cidrs": ["10.0.0.0/16"]},
        "c2": {"cluster_id": 2},
    }
