"""main() of the kubeconfig module on real files: merge, mode 0600, check mode, diff, backup, no secret in output."""

from __future__ import annotations

import json
import os
import stat

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from ansible_collections.multicloud.interconnect.plugins.module_utils._kubeconfig import MANAGED_BY
from ansible_collections.multicloud.interconnect.plugins.modules import kubeconfig

ADMIN_KEY = "QURNSU4tS0VZLURBVEE="
READER_TOKEN = "eyJhbGciOi.reader-token.sig"


@pytest.fixture(name="source")
def fixture_source(tmp_path):
    """An admin kubeconfig as the inventory's cluster_kubeconfig points at it."""
    path = tmp_path / "cluster01-admin.yaml"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "admin@cluster01",
        "clusters": [{"name": "cluster01", "cluster": {"server": "https://172.30.1.10:6443"}}],
        "contexts": [{"name": "admin@cluster01", "context": {"cluster": "cluster01", "user": "admin"}}],
        "users": [{"name": "admin", "user": {"client-certificate-data": "Q0VSVA==", "client-key-data": ADMIN_KEY}}],
    }))
    return str(path)


def args(path, source, **extra):
    base = {
        "path": str(path),
        "clusters": [
            {"name": "cluster01", "server": "https://172.30.1.11:31643", "tls_server_name": "kubernetes",
             "certificate_authority_data": "Q0E=",
             "contexts": [{"name": "cluster01", "kubeconfig": source},
                          {"name": "cluster01-reader", "credentials": "token", "token": READER_TOKEN}]},
        ],
    }
    base.update(extra)
    return base


def run(module_args, capsys):
    with patch_module_args(module_args):
        with pytest.raises(SystemExit) as exit_info:
            kubeconfig.main()
    out = capsys.readouterr().out
    return exit_info.value.code, json.loads(out), out


def load(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def test_creates_the_file_0600_with_the_admin_user_copied(tmp_path, source, capsys):
    path = tmp_path / "out" / "kubeconfig"
    code, result, _summary = run(args(path, source), capsys)
    assert code == 0 and result["changed"] is True
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    config = load(path)
    assert [c["name"] for c in config["contexts"]] == ["cluster01", "cluster01-reader"]
    cluster = config["clusters"][0]["cluster"]
    assert (cluster["server"], cluster["tls-server-name"], cluster["certificate-authority-data"]) == (
        "https://172.30.1.11:31643", "kubernetes", "Q0E=")
    users = {u["name"]: u["user"] for u in config["users"]}
    assert users["cluster01"]["client-key-data"] == ADMIN_KEY
    assert users["cluster01-reader"]["token"] == READER_TOKEN
    assert result["contexts"] == ["cluster01", "cluster01-reader"]
    assert result["added"] == ["clusters/cluster01", "contexts/cluster01", "contexts/cluster01-reader",
                               "users/cluster01", "users/cluster01-reader"]


def test_second_run_and_check_mode_change_nothing(tmp_path, source, capsys):
    path = tmp_path / "kubeconfig"
    run(args(path, source), capsys)
    before = path.read_bytes()
    code, result, _summary = run(args(path, source), capsys)
    assert code == 0 and result["changed"] is False
    code, result, _summary = run(dict(args(path, source), _ansible_check_mode=True, _ansible_diff=True), capsys)
    assert result["changed"] is False
    assert result["diff"]["before"] == result["diff"]["after"]
    assert path.read_bytes() == before


def test_check_mode_plans_without_writing_and_diff_hides_secrets(tmp_path, source, capsys):
    path = tmp_path / "kubeconfig"
    code, result, out = run(dict(args(path, source), _ansible_check_mode=True, _ansible_diff=True), capsys)
    assert code == 0 and result["changed"] is True
    assert not path.exists()
    assert "https://172.30.1.11:31643" in result["diff"]["after"]
    assert ADMIN_KEY not in out and READER_TOKEN not in out
    assert "<hidden>" in result["diff"]["after"]


def test_merge_keeps_unrelated_entries_and_fixes_the_mode(tmp_path, source, capsys):
    path = tmp_path / "kubeconfig"
    mine = {"apiVersion": "v1", "kind": "Config", "current-context": "mine",
            "clusters": [{"name": "mine", "cluster": {"server": "https://10.0.0.1:6443"}}],
            "contexts": [{"name": "mine", "context": {"cluster": "mine", "user": "me"}}],
            "users": [{"name": "me", "user": {"token": "my-own"}}]}
    path.write_text(yaml.safe_dump(mine))
    os.chmod(path, 0o644)
    code, result, _summary = run(args(path, source, backup=True), capsys)
    assert code == 0 and result["changed"] is True
    config = load(path)
    assert config["clusters"][0] == mine["clusters"][0] and config["users"][0] == mine["users"][0]
    assert config["current-context"] == "mine"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load(result["backup_file"]) == mine
    assert stat.S_IMODE(os.stat(result["backup_file"]).st_mode) == 0o600


def test_mode_alone_is_a_change(tmp_path, source, capsys):
    path = tmp_path / "kubeconfig"
    run(args(path, source), capsys)
    os.chmod(path, 0o644)
    code, result, _summary = run(args(path, source), capsys)
    assert result["changed"] is True and result["mode_fixed"] is True
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_prune_removes_only_marked_entries_of_clusters_that_left(tmp_path, source, capsys):
    path = tmp_path / "kubeconfig"
    two = args(path, source)
    two["clusters"].append({"name": "cluster02", "server": "https://172.30.2.11:30000", "contexts": [
        {"name": "cluster02", "credentials": "token", "token": "t2"}]})
    run(two, capsys)
    code, result, _summary = run(args(path, source, keep=[]), capsys)
    assert result["removed"] == ["clusters/cluster02", "contexts/cluster02", "users/cluster02"]
    assert [c["name"] for c in load(path)["clusters"]] == ["cluster01"]
    for entry in load(path)["clusters"]:
        assert entry["cluster"]["extensions"][0]["extension"]["managed-by"] == MANAGED_BY


def test_source_kubeconfig_missing_fails_naming_it(tmp_path, capsys):
    code, result, _summary = run(args(tmp_path / "kubeconfig", str(tmp_path / "nope.yaml")), capsys)
    assert code == 1
    assert "nope.yaml does not exist" in result["msg"]
    assert not (tmp_path / "kubeconfig").exists()


def test_refuses_to_overwrite_a_file_that_is_not_a_kubeconfig(tmp_path, source, capsys):
    path = tmp_path / "kubeconfig"
    path.write_text("- just\n- a list\n")
    code, result, _summary = run(args(path, source), capsys)
    assert code == 1 and "not a mapping" in result["msg"]
    assert path.read_text() == "- just\n- a list\n"


def test_token_credentials_need_a_token(tmp_path, source, capsys):
    bad = args(tmp_path / "kubeconfig", source)
    bad["clusters"][0]["contexts"][1].pop("token")
    code, result, _summary = run(bad, capsys)
    assert code == 1 and "credentials=token needs token" in result["msg"]
