# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # How every module that talks to clusters reaches them; the argument spec is
    # module_utils._k8s.ACCESS_ARGS, and the modules form the action group
    # multicloud.interconnect.k8s, so `module_defaults` sets these once per play.
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to a kubeconfig file, or its content as a mapping, used for every cluster whose own entry names none.
      - Without it, C(K8S_AUTH_KUBECONFIG) (what an AWX credential injects), then C(KUBECONFIG) or C(~/.kube/config).
      - The module never returns a kubeconfig; keep one given as content in a vault.
    type: raw
  context:
    description:
      - Context of the kubeconfig, for every cluster whose own entry names none.
      - Without it, C(K8S_AUTH_CONTEXT), then the kubeconfig's current context.
    type: str
"""
