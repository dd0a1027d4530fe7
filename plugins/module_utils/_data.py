# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Copies of plain data (values trees, manifests) that filters and modules may change freely."""

from __future__ import annotations

import typing as t
from collections.abc import Mapping


def copied(value: t.Any) -> t.Any:
    """A deep copy of JSON-like data: mappings become dicts, lists and tuples lists, anything else is shared
    (strings and numbers cannot change).

    Unlike ``copy.deepcopy`` it reads a mapping through its items. A filter is given inventory values as
    Ansible's lazily templated containers, and deep-copying one of those copies the whole variable context
    it renders from: 0.6 s of CPU for a two-key dict of istiod values, in every worker that rendered them.
    """
    if isinstance(value, Mapping):
        return {key: copied(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [copied(item) for item in value]
    return value
