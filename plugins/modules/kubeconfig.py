#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: kubeconfig
short_description: Write cluster, context and user entries for several clusters into one kubeconfig file
version_added: 0.1.0
description:
  - Writes one cluster entry per item of O(clusters), and one context and one user entry per item of its
    C(contexts), each named after the cluster or context, into the kubeconfig file O(path).
  - Merges into an existing file; entries with other names are left as they are. The file is always mode V(0600).
  - Each cluster entry carries the server URL (for example the API server's NodePort URL), the cluster CA and a
    C(tls-server-name) that the API server certificate names, so that a URL whose address is not in the
    certificate (a worker node's IP) still verifies.
  - "Credentials of a context come from one of: the user of a context in an existing kubeconfig (the admin
    credentials of the inventory), the token of a service-account-token Secret read from the cluster, or an
    explicit token."
  - Every entry written carries an extension naming this collection and the cluster. With O(prune=true), the
    entries so marked for clusters that are neither in O(clusters) nor in O(keep) are removed; entries without
    the mark are never removed.
  - Check mode reports the real plan; the diff and the result never show a credential.
author:
  - multicloud.interconnect maintainers (@multicloud)
extends_documentation_fragment:
  - multicloud.interconnect.attributes
  - multicloud.interconnect.cluster_access
options:
  path:
    description:
      - The kubeconfig file to write. Missing parent directories are created with mode V(0700).
    type: path
    required: true
  clusters:
    description:
      - The clusters whose entries the file must hold.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description:
          - Name of the cluster entry, and the value of C(cluster) in its contexts.
        type: str
        required: true
      server:
        description:
          - The API server URL, C(https://<address>:<port>).
        type: str
        required: true
      tls_server_name:
        description:
          - Name to verify the API server certificate against instead of the host of O(clusters[].server).
        type: str
      certificate_authority_data:
        description:
          - Base64 of the PEM CA bundle that signs the API server certificate.
        type: str
      contexts:
        description:
          - The contexts of this cluster; each gets a user entry of the same name.
        type: list
        elements: dict
        required: true
        suboptions:
          name:
            description:
              - Name of the context and of its user entry.
            type: str
            required: true
          namespace:
            description:
              - Default namespace of the context.
            type: str
          credentials:
            description:
              - V(kubeconfig) copies the user of O(clusters[].contexts[].context) in O(clusters[].contexts[].kubeconfig).
              - V(service_account_token) reads the token of the Secret O(clusters[].contexts[].secret_name) in
                O(clusters[].contexts[].secret_namespace) through that kubeconfig and context, waiting up to
                O(wait_timeout) seconds for the token controller to fill it.
              - V(token) uses O(clusters[].contexts[].token).
            type: str
            choices: [kubeconfig, service_account_token, token]
            default: kubeconfig
          kubeconfig:
            description:
              - Kubeconfig that reaches this cluster today (a path or a mapping); defaults to O(kubeconfig), then
                E(K8S_AUTH_KUBECONFIG), E(KUBECONFIG) (its first file) and C(~/.kube/config).
            type: raw
          context:
            description:
              - Context in that kubeconfig; defaults to O(context), then E(K8S_AUTH_CONTEXT), then its current context.
            type: str
          secret_namespace:
            description:
              - Namespace of the service-account-token Secret.
            type: str
            default: kube-system
          secret_name:
            description:
              - Name of the service-account-token Secret; required with V(service_account_token).
            type: str
          token:
            description:
              - A bearer token; required with V(token).
            type: str
  keep:
    description:
      - Names of clusters whose entries are left as they are even though they are not in O(clusters), for example
        clusters outside C(--limit) or whose run failed.
    type: list
    elements: str
    default: []
  prune:
    description:
      - Remove the entries this collection wrote for clusters that are in neither O(clusters) nor O(keep).
    type: bool
    default: true
  current_context:
    description:
      - Set C(current-context) to this context. Left as it is when not given, unless it names a removed context.
    type: str
  backup:
    description:
      - Keep a timestamped copy of the file before changing it.
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds to wait for a service-account-token Secret to receive its token.
    type: int
    default: 60
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
notes:
  - Comments and formatting of an existing file are not kept when it changes; its entries and fields are.
  - A Secret token is read through the Kubernetes API with the collection's own client; the kubernetes Python
    library is used only for kubeconfig features that client leaves to it (auth provider plugins).
requirements:
  - PyYAML
seealso:
  - module: kubernetes.core.k8s_info
"""

EXAMPLES = r"""
- name: Write cluster01 and cluster02 through their NodePort URLs, with the admin credentials of the inventory
  multicloud.interconnect.kubeconfig:
    path: ~/.kube/multicloud-interconnect.yaml
    clusters:
      - name: cluster01
        server: https://172.30.1.11:31643
        tls_server_name: kubernetes
        certificate_authority_data: "{{ cluster01_ca_b64 }}"
        contexts:
          - name: cluster01
            kubeconfig: ~/.kube/cluster01.yaml
      - name: cluster02
        server: https://172.30.2.11:30611
        tls_server_name: kubernetes
        certificate_authority_data: "{{ cluster02_ca_b64 }}"
        contexts:
          - name: cluster02
            kubeconfig: ~/.kube/cluster02.yaml
          - name: cluster02-reader
            credentials: service_account_token
            kubeconfig: ~/.kube/cluster02.yaml
            secret_namespace: kube-system
            secret_name: multicloud-interconnect-reader-token
    backup: true

- name: Remove every entry this collection wrote (no clusters, prune on)
  multicloud.interconnect.kubeconfig:
    path: ~/.kube/multicloud-interconnect.yaml
    clusters: []
"""

RETURN = r"""
path:
  description: The kubeconfig file.
  returned: always
  type: str
  sample: /root/.kube/multicloud-interconnect.yaml
contexts:
  description: The contexts the file holds for O(clusters), in order.
  returned: always
  type: list
  elements: str
  sample: [cluster01, cluster02, cluster02-reader]
added:
  description: Entries added, as C(<section>/<name>).
  returned: always
  type: list
  elements: str
  sample: [clusters/cluster02, contexts/cluster02, users/cluster02]
updated:
  description: Entries whose content changes.
  returned: always
  type: list
  elements: str
  sample: [clusters/cluster01]
removed:
  description: Entries removed because their cluster left O(clusters) and is not in O(keep).
  returned: always
  type: list
  elements: str
  sample: [clusters/cluster04, contexts/cluster04, users/cluster04]
unchanged:
  description: Entries already as wanted.
  returned: always
  type: list
  elements: str
mode_fixed:
  description: Whether the file mode was (or would be) set to V(0600).
  returned: always
  type: bool
backup_file:
  description: The copy made with O(backup=true).
  returned: when a backup was made
  type: str
  sample: /root/.kube/multicloud-interconnect.yaml.12345.2026-01-01@10:00:00~
"""

import os
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    import yaml

    HAS_YAML = True
    YAML_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - PyYAML ships with ansible-core
    HAS_YAML = False
    YAML_IMPORT_ERROR = traceback.format_exc()

from ansible_collections.multicloud.interconnect.plugins.module_utils import _k8s
from ansible_collections.multicloud.interconnect.plugins.module_utils._k8s import ACCESS_ARGS
from ansible_collections.multicloud.interconnect.plugins.module_utils._kubeconfig import (
    KubeconfigError,
    check_config,
    diff,
    merge,
)
from ansible_collections.multicloud.interconnect.plugins.module_utils._kubeconfig_io import (
    Credentials,
    read_yaml_file,
    write_file,
)

CONTEXT_SPEC = dict(
    name=dict(type="str", required=True),
    namespace=dict(type="str"),
    credentials=dict(type="str", choices=["kubeconfig", "service_account_token", "token"], default="kubeconfig"),
    kubeconfig=dict(type="raw", no_log=False),
    context=dict(type="str"),
    secret_namespace=dict(type="str", default="kube-system", no_log=False),
    secret_name=dict(type="str", no_log=False),
    token=dict(type="str", no_log=True),
)

CLUSTER_SPEC = dict(
    name=dict(type="str", required=True),
    server=dict(type="str", required=True),
    tls_server_name=dict(type="str"),
    certificate_authority_data=dict(type="str"),
    contexts=dict(type="list", elements="dict", required=True, options=CONTEXT_SPEC),
)

ARGUMENT_SPEC = dict(
    path=dict(type="path", required=True),
    clusters=dict(type="list", elements="dict", default=[], options=CLUSTER_SPEC),
    keep=dict(type="list", elements="str", default=[]),
    prune=dict(type="bool", default=True),
    current_context=dict(type="str"),
    backup=dict(type="bool", default=False),
    wait_timeout=dict(type="int", default=60),
    # Defaults for clusters[].contexts[].kubeconfig / context.
    **ACCESS_ARGS,
)


def dump(config):
    return yaml.safe_dump(config, default_flow_style=False, sort_keys=False)


def run(module):
    params = module.params
    path = os.path.abspath(params["path"])
    existing = read_yaml_file(path)
    exists = os.path.exists(path)
    before = check_config(existing, path)
    credentials = Credentials(params, module.check_mode)
    users = {}
    for cluster in params["clusters"]:
        for context in cluster["contexts"]:
            users[context["name"]] = credentials.user(cluster["name"], context)
    after, summary = merge(before, params["clusters"], users, keep=params["keep"], prune=params["prune"],
                           current_context=params["current_context"])
    content_changed = (not exists) or after != existing
    mode_fixed = exists and (os.stat(path).st_mode & 0o777) != 0o600
    result = dict(changed=bool(content_changed or mode_fixed), path=path, mode_fixed=bool(mode_fixed),
                  contexts=[c["name"] for cluster in params["clusters"] for c in cluster["contexts"]], **summary)
    if credentials.pending:
        module.warn("the token of %s is not minted yet; in check mode the plan shows it as changed"
                    % ", ".join(credentials.pending))
    if module._diff:
        masked_before, masked_after = diff(before if exists else {}, after)
        result["diff"] = dict(before_header=path, after_header=path,
                              before=dump(masked_before) if exists else "", after=dump(masked_after))
    if module.check_mode or not result["changed"]:
        return result
    if exists and params["backup"] and content_changed:
        result["backup_file"] = module.backup_local(path)
        os.chmod(result["backup_file"], 0o600)  # the copy holds the same credentials
    if content_changed:
        write_file(path, dump(after))
    else:
        os.chmod(path, 0o600)
    return result


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    if not HAS_YAML:
        module.fail_json(msg=missing_required_lib("PyYAML"), exception=YAML_IMPORT_ERROR)
    try:
        result = run(module)
    except (KubeconfigError, _k8s.ClusterError) as err:
        module.fail_json(msg=str(err))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
