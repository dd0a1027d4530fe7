# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters over Helm's release Secrets (plugins/module_utils/_helm.py).

helm_release_values(secrets)
    the values the latest revision of a release runs with, from the Secrets
    ``sh.helm.release.v1.<name>.v<revision>`` of that release (read with label ``owner=helm,name=<name>``);
    ``{}`` when there is none. A role that reads them with its other objects needs no ``helm_info`` call.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.multicloud.interconnect.plugins.module_utils import _helm


def helm_release_values(secrets):
    try:
        observed = _helm.observed_release(secrets or [])
    except (ValueError, TypeError) as err:
        raise AnsibleFilterError("helm_release_values: a release Secret cannot be decoded: %s" % err) from err
    return (observed or {}).get("values") or {}


class FilterModule:
    def filters(self):
        return {"helm_release_values": helm_release_values}
