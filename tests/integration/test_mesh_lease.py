"""Two changing runs at once on the lab (site.yml, then apiserver_expose.yml while it runs): the first holds the mesh lease, the second stops before any
change naming it; check mode takes none; a lease left by a run that ended is taken over, one held
elsewhere is refused until broken; after the first run the second converges."""

from __future__ import annotations

import datetime
import os
import socket
import subprocess
import sys
import time

import pytest
from site_helpers import BIN, REPO, ansible_env, changed, run_playbook  # pylint: disable=import-error

pytestmark = pytest.mark.lab
LEASE = ("coordination.k8s.io", "v1", "kube-system", "leases", "multicloud-interconnect")
CLUSTERS = ("cluster01", "cluster02", "cluster03", "cluster04")
CHANGING = "playbooks/apiserver_expose.yml"
# The first run: long enough (every stage) for the second to reach the lease while it is held.
FIRST = "playbooks/site.yml"


def lease_of(lab, cluster):
    from kubernetes import client  # pylint: disable=import-outside-toplevel
    try:
        return client.CustomObjectsApi(lab.clusters[cluster].api_client()).get_namespaced_custom_object(
            LEASE[0], LEASE[1], LEASE[2], LEASE[3], LEASE[4])
    except client.exceptions.ApiException as err:
        if err.status == 404:
            return None
        raise


def put_lease(lab, cluster, holder):
    """A Lease as another run would hold it, renewed now."""
    from kubernetes import client  # pylint: disable=import-outside-toplevel
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": LEASE[4], "namespace": LEASE[2]},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 900, "acquireTime": now, "renewTime": now}}
    api = client.CustomObjectsApi(lab.clusters[cluster].api_client())
    drop_lease(lab, cluster)
    api.create_namespaced_custom_object(LEASE[0], LEASE[1], LEASE[2], LEASE[3], body)


def drop_lease(lab, cluster):
    from kubernetes import client  # pylint: disable=import-outside-toplevel
    try:
        client.CustomObjectsApi(lab.clusters[cluster].api_client()).delete_namespaced_custom_object(
            LEASE[0], LEASE[1], LEASE[2], LEASE[3], LEASE[4])
    except client.exceptions.ApiException as err:
        if err.status != 404:
            raise


def flat(run):
    return " ".join((run.stdout + run.stderr).split())


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    """Where the runs write their kubeconfig and status report, instead of the user's."""
    path = tmp_path_factory.mktemp("lease")
    return ("-e", "apiserver_kubeconfig_path=%s" % (path / "kubeconfig"), "-e", "status_output_dir=%s" % path)


@pytest.fixture(scope="module")
def two_runs(lab, out):
    for cluster in CLUSTERS:
        drop_lease(lab, cluster)
    first_command = [str(BIN / "ansible-playbook"), "-i", str(REPO / "inventories/lab"), str(REPO / FIRST), *out]
    first = subprocess.Popen(first_command, cwd=REPO, env=ansible_env(), stdout=subprocess.PIPE,  # pylint: disable=consider-using-with
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        held = None
        while time.monotonic() < deadline and held is None and first.poll() is None:
            held = lease_of(lab, "cluster01")
            time.sleep(0.2)
        assert held is not None, "the first run never took the lease"
        holder = held["spec"]["holderIdentity"]
        during = {c: (lease_of(lab, c) or {}).get("spec", {}).get("holderIdentity") for c in CLUSTERS}
        second = run_playbook(CHANGING, *out, expect=None)
        check = run_playbook(CHANGING, "--check", *out, expect=None)
        first_out, first_err = first.communicate(timeout=900)
    finally:
        if first.poll() is None:
            first.kill()
    after = {c: lease_of(lab, c) for c in CLUSTERS}
    again = run_playbook(CHANGING, *out, expect=None)
    return {"holder": holder, "during": during, "second": second, "check": check, "after": after, "again": again,
            "first": subprocess.CompletedProcess(first_command, first.returncode, first_out, first_err)}


def test_the_first_run_holds_the_lease_in_every_cluster_and_gives_it_back(two_runs):
    first = two_runs["first"]
    assert first.returncode == 0, (first.stdout + first.stderr)[-6000:]
    holder = two_runs["holder"]
    assert holder.startswith("%s@%s pid " % (os.environ.get("USER") or "unknown", socket.gethostname())), holder
    assert two_runs["during"] == {c: holder for c in CLUSTERS}
    assert two_runs["after"] == {c: None for c in CLUSTERS}


def test_a_second_changing_run_stops_before_any_change_naming_the_holder(two_runs):
    second = two_runs["second"]
    text = flat(second)
    assert second.returncode == 2, text[-6000:]
    assert "Mesh lease refused (4 problems); nothing was changed." in text
    assert "MESH_LEASE_HELD [cluster01] cluster cluster01 is being changed by another run: %s" % two_runs["holder"] in text
    assert "its lease expires at" in text and "-e mesh_lease_break=true" in text
    # stopped at the lease: no stage task ran, nothing changed
    assert "Expose the API server through a NodePort Service" not in second.stdout
    assert all(count == 0 for count in changed(second.stdout).values())


def test_check_mode_takes_no_lease_and_is_not_stopped(two_runs):
    check = two_runs["check"]
    assert check.returncode == 0, flat(check)[-6000:]
    assert "MESH_LEASE" not in check.stdout


def test_after_the_first_run_the_second_converges(two_runs):
    again = two_runs["again"]
    assert again.returncode == 0, flat(again)[-6000:]
    assert all(count == 0 for count in changed(again.stdout).values()), changed(again.stdout)


def test_a_lease_left_by_an_ended_run_is_taken_a_live_one_elsewhere_only_when_broken(lab, out):
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    ended = "%s@%s pid %s run deadbeef" % (os.environ.get("USER") or "unknown", socket.gethostname(), done.stdout.strip())
    put_lease(lab, "cluster02", ended)
    taken = run_playbook(CHANGING, *out, expect=None)
    assert taken.returncode == 0, flat(taken)[-6000:]
    assert lease_of(lab, "cluster02") is None

    elsewhere = "bob@ctl-2 job 12 pid 77 run cafe0001"
    put_lease(lab, "cluster03", elsewhere)
    try:
        refused = run_playbook(CHANGING, *out, expect=None)
        assert refused.returncode == 2, flat(refused)[-6000:]
        assert "MESH_LEASE_HELD [cluster03] cluster cluster03 is being changed by another run: %s" % elsewhere in flat(refused)
        assert lease_of(lab, "cluster03")["spec"]["holderIdentity"] == elsewhere
        assert lease_of(lab, "cluster01") is None  # the refused run took none
        broken = run_playbook(CHANGING, "-e", "mesh_lease_break=true", *out, expect=None)
        assert broken.returncode == 0, flat(broken)[-6000:]
        assert lease_of(lab, "cluster03") is None
    finally:
        drop_lease(lab, "cluster03")
