"""The mesh lease's decisions: take, renew, refuse naming the holder, take over a stale one, release."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.multicloud.interconnect.plugins.module_utils import _lease

NOW = datetime.datetime(2026, 12, 3, 12, 0, 0, tzinfo=datetime.timezone.utc)


def held(holder, renewed_seconds_ago, duration=900, acquired="2026-12-03T11:00:00.000000Z"):
    renewed = NOW - datetime.timedelta(seconds=renewed_seconds_ago)
    return {"metadata": {"resourceVersion": "7"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration, "acquireTime": acquired,
                     "renewTime": _lease.micro_time(renewed)}}


@pytest.mark.parametrize("lease, action", [
    (None, "create"),
    (held("me", 10), "renew"),
    (held("me", 5000), "renew"),                     # ours, even stale
    (held("", 10), "take"),                          # released
    (held("bob", 901), "take"),                      # stale: its controller died
    ({"metadata": {}, "spec": {"holderIdentity": "bob"}}, "take"),  # no times at all
])
def test_decide(lease, action):
    assert _lease.decide("cluster01", lease, "me", NOW)["action"] == action


def test_a_lease_another_run_renewed_recently_is_refused_naming_holder_and_expiry():
    decision = _lease.decide("cluster02", held("bob@ctl-2 job 12", 100), "me", NOW)
    assert (decision["action"], decision["holder"], decision["expires"]) == (
        "refuse", "bob@ctl-2 job 12", "2026-12-03T12:13:20.000000Z")
    problem = decision["problem"]
    assert (problem.code, problem.clusters, problem.field) == ("MESH_LEASE_HELD", ("cluster02",), "mesh_lease_break")
    assert problem.message == ("cluster cluster02 is being changed by another run: bob@ctl-2 job 12 (since "
                               "2026-12-03T11:00:00.000000Z); its lease expires at 2026-12-03T12:13:20.000000Z unless "
                               "renewed (in 800 s).")
    assert "-e mesh_lease_break=true" in problem.fix


def test_break_takes_a_held_lease_and_says_so():
    decision = _lease.decide("cluster02", held("bob", 100), "me", NOW, break_held=True)
    assert (decision["action"], decision["previous"], decision["why"]) == ("take", "bob", "broken by mesh_lease_break")


def test_the_body_renews_with_the_read_version_and_keeps_the_first_acquisition():
    body = _lease.body("me", 600, NOW, acquired="2026-12-03T11:00:00.000000Z", resource_version="7", transitions=2)
    assert body["metadata"]["resourceVersion"] == "7"
    assert body["spec"] == {"holderIdentity": "me", "leaseDurationSeconds": 600,
                            "acquireTime": "2026-12-03T11:00:00.000000Z", "renewTime": "2026-12-03T12:00:00.000000Z",
                            "leaseTransitions": 2}
    assert "resourceVersion" not in _lease.body("me", 600, NOW)["metadata"]


def test_expiry_reads_micro_and_plain_times():
    assert _lease.expiry(held("x", 0, duration=60)) == NOW + datetime.timedelta(seconds=60)
    plain = {"spec": {"acquireTime": "2026-12-03T12:00:00Z", "leaseDurationSeconds": 30}}
    assert _lease.expiry(plain) == NOW + datetime.timedelta(seconds=30)
    assert _lease.parse_time("yesterday") is None


@pytest.mark.parametrize("lease, action", [
    (None, "none"), (held("me", 1), "delete"), (held("bob", 1), "keep")])
def test_release_deletes_only_our_own(lease, action):
    assert _lease.release_action(lease, "me") == action


def test_a_held_lease_whose_run_ended_on_this_controller_is_taken_at_once():
    decision = _lease.decide("cluster01", held("bob@ctl pid 1 run x", 10), "me", NOW, alive=False)
    assert (decision["action"], decision["why"]) == ("take", "its run on this controller has ended")
    assert _lease.decide("cluster01", held("bob@ctl pid 1 run x", 10), "me", NOW, alive=None)["action"] == "refuse"


def test_holder_identity_and_liveness_of_runs_of_this_controller(tmp_path):
    import os
    import subprocess
    import sys
    me = _lease.holder_identity("alice", os.getpid(), job=4711, host="ctl-1", run="3f2a9c1d")
    assert me == "alice@ctl-1 job 4711 pid %d run 3f2a9c1d" % os.getpid()
    # a process that has ended, on this controller
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    gone = _lease.holder_identity("alice", int(done.stdout), host="ctl-1")
    assert _lease.holder_alive(gone, host="ctl-1") is False
    # another controller, or no process to look at: unknown
    assert _lease.holder_alive(gone, host="ctl-2") is None
    assert _lease.holder_alive("bob@ctl-1 job 12 run x", host="ctl-1") is None
    assert _lease.holder_alive("free text", host="ctl-1") is None
