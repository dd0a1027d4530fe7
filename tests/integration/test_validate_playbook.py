"""ansible-playbook playbooks/validate.yml, as a user runs it."""

from __future__ import annotations

import json

import yaml

from site_helpers import REPO, run_playbook  # pylint: disable=import-error


def test_broken_inventory_reports_every_error_in_one_run():
    run = run_playbook("playbooks/validate.yml", inventories=("tests/integration/inventories/broken",), timeout=300,
                       expect=2)
    output = run.output
    for code in ("ID_DUPLICATE", "CIDR_OVERLAP_IN_GROUP", "CIDR_HOST_BITS", "NAME_INVALID", "GROUP_MIXED_CNI",
                 "INTERCONNECT_NO_GATEWAY", "INTERCONNECT_UNKNOWN_GROUP"):
        assert code in output, code
    assert "ID_BREAKS_ENI" in output  # the warning is shown too, without blocking on its own
    assert "10.97.0.0/16" in output  # the corrected network for the host-bits error
    assert "nothing was changed" in output


def test_example_inventory_passes_in_check_mode():
    run = run_playbook("playbooks/validate.yml", "--check", inventories=("inventories/example",), timeout=300)
    assert "Result: OK" in run.stdout
    assert "changed=0" in run.stdout


def test_an_awx_job_slice_is_refused_before_any_change(tmp_path):
    """AWX runs slice N of M with the inventory cut to every M-th host (sorted by name) and its own
    meta variables; the inventory's variables (mesh_clusters) stay whole."""
    inventory = yaml.safe_load((REPO / "inventories/example/hosts.yml").read_text(encoding="utf-8"))
    hosts = inventory["all"]["children"]["clusters"]["hosts"]
    for name in sorted(hosts)[1::2]:  # slice 1 of 2 keeps cluster01 and cluster03
        del hosts[name]
    path = tmp_path / "slice1of2.yml"
    path.write_text(yaml.safe_dump(inventory), encoding="utf-8")
    awx_vars = {"awx_job_id": 42, "awx_job_launch_type": "workflow", "awx_workflow_job_id": 41,
                "awx_workflow_job_name": "Multicloud: site (converge everything)", "awx_inventory_name": "mesh"}
    run = run_playbook("playbooks/site.yml", "-e", json.dumps(awx_vars), inventories=(str(path),), timeout=300,
                       expect=2)
    assert "MESH_CLUSTERS_MISSING" in run.output and "cluster02, cluster04" in run.output
    assert "job_slice_count" in run.output and "nothing was changed" in run.output
    # The play that would reach the clusters never started.
    assert "Check that every cluster is reachable" not in run.stdout


def test_a_ca_of_your_own_that_cannot_sign_intermediates_is_refused_by_validation(tmp_path):
    """istio_ca_cert is checked with the topology, before any stage talks to a cluster: here an intermediate
    whose path length forbids the clusters' intermediates, given without the root it chains to."""
    import base64  # pylint: disable=import-outside-toplevel

    from cryptography.hazmat.primitives import serialization  # pylint: disable=import-outside-toplevel

    from ansible_collections.multicloud.interconnect.tests.unit.plugins.module_utils.test_ca import (  # pylint: disable=import-error,import-outside-toplevel
        corporate_chain)

    _chain, key, signer = corporate_chain(path_length=0)
    given = {"istio_ca_cert": base64.b64encode(signer.public_bytes(serialization.Encoding.PEM)).decode(),
             "istio_ca_key": base64.b64encode(key.encode()).decode()}
    path = tmp_path / "ca.json"
    path.write_text(json.dumps(given), encoding="utf-8")
    run = run_playbook("playbooks/validate.yml", "-e", "@%s" % path, inventories=("inventories/example",), timeout=300,
                       expect=2)
    assert "ISTIO_CA_CERT_INVALID" in run.output and "pathlen:0" in run.output
    assert "field: istio_ca_cert" in run.output and "nothing was changed" in run.output
    chain, key, _signer = corporate_chain()
    ok = {"istio_ca_cert": base64.b64encode(chain.encode()).decode(), "istio_ca_key": base64.b64encode(key.encode()).decode()}
    path.write_text(json.dumps(ok), encoding="utf-8")
    assert "Result: OK" in run_playbook("playbooks/validate.yml", "-e", "@%s" % path, inventories=("inventories/example",),
                                        timeout=300, expect=0).stdout


def test_role_variables_are_checked_for_every_cluster_before_the_first_stage(tmp_path):
    """The playbooks import the roles with rolespec_validate: false; validate.yml checks the roles' argument
    specs instead, so a wrong Istio variable stops site.yml before the preflight, not after the Cilium stage."""
    inventory = yaml.safe_load((REPO / "inventories/example/hosts.yml").read_text(encoding="utf-8"))
    inventory["all"]["children"]["clusters"]["hosts"]["cluster03"]["istio_state"] = "installed"
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory), encoding="utf-8")
    run = run_playbook("playbooks/site.yml", "-e", "apiserver_nodeport_port=six", inventories=(str(path),), timeout=300,
                       expect=2)
    assert "Role variables refused (2 problems); nothing was changed." in run.output
    assert "ROLE_ARGUMENT_INVALID [cluster03] value of istio_state must be one of: present, absent, got: installed" \
        in run.output
    assert "field: istio_state; fix: give istio_state one of present, absent" in run.output
    every = ", ".join(sorted(inventory["all"]["children"]["clusters"]["hosts"]))
    assert "ROLE_ARGUMENT_INVALID [%s] argument 'apiserver_nodeport_port'" % every in run.output
    # The play that would reach the clusters never started, and no role checks its arguments again.
    assert "Check that every cluster is reachable" not in run.stdout
    assert "Validating arguments against arg spec" not in run.stdout
