# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters over the same pure CIDR and topology functions the modules use."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.multicloud.interconnect.plugins.module_utils._cidr import (
    CidrError,
    canonical_cidr,
    cidrs_overlap,
    is_valid_cidr,
    overlapping_pairs,
)
from ansible_collections.multicloud.interconnect.plugins.module_utils._inventory import cluster_cni, cluster_name, host_variables
from ansible_collections.multicloud.interconnect.plugins.module_utils._topology import INVENTORY_VARS


def cluster_inventory(hostvars, names):
    """``{host: {contract variable: value}}`` for the hosts in ``names``; undefined variables are left out."""
    return host_variables(hostvars, names, INVENTORY_VARS)


def inventory_cluster_name(inventory_name, hostvars):
    """The cluster name of inventory host ``inventory_name``: ``cluster_name``, else the host name."""
    return cluster_name(inventory_name, hostvars[inventory_name])


def inventory_cluster_cni(inventory_name, hostvars):
    """The technique of inventory host ``inventory_name`` inside its group: ``cluster_cni``, else Cilium."""
    return cluster_cni(hostvars[inventory_name])


def _wrap(function):
    def call(*args):
        try:
            return function(*args)
        except (CidrError, ValueError) as err:
            raise AnsibleFilterError("%s: %s" % (function.__name__, err)) from err
    call.__name__ = function.__name__
    call.__doc__ = function.__doc__
    return call


def cidr_overlapping_pairs(cidrs):
    return [list(pair) for pair in overlapping_pairs(cidrs)]


class FilterModule:
    def filters(self):
        return {
            "cluster_inventory": cluster_inventory,
            "cluster_name": inventory_cluster_name,
            "cluster_cni": inventory_cluster_cni,
            "cidr_valid": is_valid_cidr,
            "cidr_canonical": _wrap(canonical_cidr),
            "cidr_overlaps": _wrap(cidrs_overlap),
            "cidr_overlapping_pairs": _wrap(cidr_overlapping_pairs),
        }
