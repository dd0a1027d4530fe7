"""mesh_lease against an API that keeps Lease objects as a server does (resourceVersion, 404, 409)."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.multicloud.interconnect.plugins.module_utils._kube_api import ApiError
from ansible_collections.multicloud.interconnect.plugins.modules import mesh_lease

ITEM = mesh_lease.ITEM


class Server:
    """One cluster's leases endpoint: create, get, put with a resourceVersion precondition, delete."""

    def __init__(self, name, lease=None, fail_put_with=None, fail_post_with=None):
        self.name, self.lease, self.version = name, lease, 1
        self.fail_put_with, self.fail_post_with = fail_put_with, fail_post_with
        self.writes = []

    def request(self, what, method, path, body=None, **_kwargs):  # pylint: disable=unused-argument
        if method == "GET":
            if self.lease is None:
                raise ApiError(404, "Not Found")
            return json.loads(json.dumps(self.lease))
        self.writes.append((method, path))
        if method == "POST":
            if self.fail_post_with or self.lease is not None:
                raise ApiError(409, "Conflict", "leases \"multicloud-interconnect\" already exists")
            self.lease = dict(body, metadata=dict(body["metadata"], resourceVersion=str(self.version)))
            return self.lease
        if method == "PUT":
            if self.fail_put_with or body["metadata"].get("resourceVersion") != self.lease["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", "the object has been modified")
            self.version += 1
            self.lease = dict(body, metadata=dict(body["metadata"], resourceVersion=str(self.version)))
            return self.lease
        if method == "DELETE":
            if body["preconditions"]["resourceVersion"] != self.lease["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", "precondition failed")
            self.lease = None
            return {}
        raise AssertionError(method)


def held_by(holder, seconds_ago=5):
    import datetime  # pylint: disable=import-outside-toplevel
    when = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds_ago)).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")
    return {"metadata": {"name": "multicloud-interconnect", "resourceVersion": "1"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 900, "acquireTime": when, "renewTime": when}}


def run(servers, capsys, monkeypatch, **params):
    monkeypatch.setattr(mesh_lease, "connect", lambda name, *_args: servers[name])
    args = {"clusters": {name: {} for name in servers}, "holder": "me@ctl pid 1 run a"}
    args.update(params)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            mesh_lease.main()
    return json.loads(capsys.readouterr().out)


def test_takes_every_lease_then_renews_then_gives_back(capsys, monkeypatch):
    servers = {"c1": Server("c1"), "c2": Server("c2")}
    first = run(servers, capsys, monkeypatch)
    assert first["changed"] and {n: r["action"] for n, r in first["clusters"].items()} == {"c1": "create", "c2": "create"}
    assert servers["c1"].lease["spec"]["holderIdentity"] == "me@ctl pid 1 run a"
    assert first["ansible_facts"]["mesh_lease_renewed"] > 0
    again = run(servers, capsys, monkeypatch)
    assert not again["changed"] and {r["action"] for r in again["clusters"].values()} == {"renew"}
    assert servers["c2"].lease["metadata"]["resourceVersion"] == "2"
    gone = run(servers, capsys, monkeypatch, state="absent")
    assert gone["changed"] and servers["c1"].lease is None and servers["c2"].lease is None


def test_a_lease_held_anywhere_stops_the_run_before_any_write(capsys, monkeypatch):
    servers = {"c1": Server("c1"), "c2": Server("c2", lease=held_by("bob@elsewhere job 9 pid 3 run b"))}
    result = run(servers, capsys, monkeypatch)
    assert result["failed"]
    assert "MESH_LEASE_HELD [c2] cluster c2 is being changed by another run: bob@elsewhere job 9 pid 3 run b" in result["msg"]
    assert servers["c1"].writes == [] and servers["c2"].writes == []
    assert result["clusters"]["c2"]["holder"] == "bob@elsewhere job 9 pid 3 run b"


def test_losing_a_race_gives_back_what_this_call_took(capsys, monkeypatch):
    # c1 is taken; c2 is created by another run between this run's read and its write
    servers = {"c1": Server("c1"), "c2": Server("c2", fail_post_with=409)}
    result = run(servers, capsys, monkeypatch)
    assert result["failed"] and "MESH_LEASE_RACE [c2]" in result["msg"]
    assert servers["c1"].writes == [("POST", mesh_lease.PATH), ("DELETE", ITEM)] and servers["c1"].lease is None


def test_release_keeps_a_lease_someone_else_holds(capsys, monkeypatch):
    servers = {"c1": Server("c1", lease=held_by("bob@elsewhere run b"))}
    result = run(servers, capsys, monkeypatch, state="absent")
    assert not result["changed"] and result["clusters"]["c1"] == {"action": "keep", "holder": "bob@elsewhere run b"}
    assert servers["c1"].lease is not None


def test_check_mode_writes_nothing(capsys, monkeypatch):
    servers = {"c1": Server("c1")}
    result = run(servers, capsys, monkeypatch, _ansible_check_mode=True)
    assert result["changed"] and servers["c1"].writes == [] and servers["c1"].lease is None
