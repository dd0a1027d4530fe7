# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Descriptions of the attributes every module of this collection declares; each module sets `support`.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check mode and return the changed status it would have had, without changing anything.
  diff_mode:
    description: Returns details on what changed (or would change in check mode), with secrets masked.
  idempotent:
    description: A second run with the same arguments reports no change.
"""
