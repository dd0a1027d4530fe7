# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the apiserver_nodeport role, over the pure functions of the kubeconfig module.

apiserver_nodeport_urls(nodes, service, port, address_type, cluster)
    ``https://<address>:<nodePort>`` for every node (k8s_info resources), ready workers first.
apiserver_ca_data(configmaps, cluster)
    base64 of ``ca.crt`` from the ``kube-root-ca.crt`` ConfigMap (k8s_info resources).
apiserver_reader_reference(enabled, namespace, name, token_secret, cluster_role)
    the ``apiserver_reader_service_account`` fact, or None when the reader is disabled.
apiserver_kubeconfig_cluster(name, url, tls_server_name, ca_data, user, kubeconfig, context, reader, reader_suffix)
    one item of the kubeconfig module's ``clusters`` option.
apiserver_kubeconfig_clusters(hostvars, hosts, fact)
    the items of every host in ``hosts`` that published ``fact``.
apiserver_kubeconfig_keep(hostvars, all_hosts, play_hosts, fact)
    cluster names of the inventory (its model) that this run does not write (so they are not pruned).
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.multicloud.interconnect.plugins.module_utils._kubeconfig import (
    KubeconfigError,
    ca_data_from_configmap,
    cluster_entry_spec,
    collect_entries,
    keep_names,
    node_urls,
    reader_reference,
    service_node_port,
)
from ansible_collections.multicloud.interconnect.plugins.module_utils._topology import topology_from_hostvars


def _wrap(function):
    def call(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except (KubeconfigError, KeyError, TypeError, ValueError) as err:
            raise AnsibleFilterError("%s: %s" % (call.__name__, err)) from err
    call.__doc__ = function.__doc__
    return call


def apiserver_nodeport_urls(nodes, service, port=6443, address_type="InternalIP", cluster=""):
    """URLs of the API server on every node's NodePort; ``service`` is the Service as the API returns it."""
    return node_urls(nodes, service_node_port(service, int(port)), address_type, cluster)


def apiserver_kubeconfig_keep(hostvars, all_hosts, play_hosts, fact):
    """Cluster names of the inventory that this run does not write (``--limit``, failed hosts), so they stay."""
    names = [c.name for c in topology_from_hostvars(hostvars, all_hosts or []).clusters.values()]
    return keep_names(names, [e["name"] for e in collect_entries(hostvars, play_hosts, fact)])


def _named(name, function):
    wrapped = _wrap(function)
    wrapped.__name__ = name
    return wrapped


class FilterModule:
    def filters(self):
        return {
            "apiserver_nodeport_urls": _named("apiserver_nodeport_urls", apiserver_nodeport_urls),
            "apiserver_ca_data": _named("apiserver_ca_data", ca_data_from_configmap),
            "apiserver_reader_reference": _named("apiserver_reader_reference", reader_reference),
            "apiserver_kubeconfig_cluster": _named("apiserver_kubeconfig_cluster", cluster_entry_spec),
            "apiserver_kubeconfig_clusters": _named("apiserver_kubeconfig_clusters", collect_entries),
            "apiserver_kubeconfig_keep": _named("apiserver_kubeconfig_keep", apiserver_kubeconfig_keep),
        }
