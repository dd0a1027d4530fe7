"""The CA step (module ca_files) on the controller, as the cilium and istio roles run it.

A root and an intermediate signed by it: files and modes, the chain, a second run and check mode.
No cluster is needed: every task runs on localhost.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
import yaml

from site_helpers import changed, run_playbook  # pylint: disable=import-error

PLAY = [{
    "name": "A root and one intermediate, as the istio role makes them",
    "hosts": "localhost",
    "gather_facts": False,
    "tasks": [
        {"name": "Root", "multicloud.interconnect.ca_files": {
            "path": "{{ ca_root }}", "key_name": "root-key.pem", "cert_name": "root-cert.pem",
            "common_name": "Root CA test", "curve": "secp384r1"}},
        {"name": "Intermediate", "multicloud.interconnect.ca_files": {
            "path": "{{ ca_root }}/cluster01", "common_name": "Intermediate CA cluster01",
            "signer_cert": "{{ ca_root }}/root-cert.pem", "signer_key": "{{ ca_root }}/root-key.pem",
            "path_length": 0, "signer_planned": True}},
    ],
}]


@pytest.fixture(name="play")
def play_file(tmp_path):
    path = tmp_path / "ca.yml"
    path.write_text(yaml.safe_dump(PLAY), encoding="utf-8")
    return path


def run(play, root, *args):
    return run_playbook(play, "-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=%s" % sys.executable,
                        "-e", "ca_root=%s" % root, *args, inventories=(), timeout=300)


def openssl(*args):
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)


def test_check_mode_from_nothing_reports_and_writes_nothing(play, tmp_path):
    root = tmp_path / "ca"
    result = run(play, root, "--check")
    assert changed(result.stdout)["localhost"] == 2, result.stdout[-3000:]
    assert not root.exists()


def test_root_and_intermediate_are_created_once_with_private_modes(play, tmp_path):
    root = tmp_path / "ca"
    first = run(play, root)
    assert changed(first.stdout)["localhost"] == 2, first.stdout[-3000:]
    for directory in (root, root / "cluster01"):
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    for path in (root / "root-key.pem", root / "root-cert.pem", root / "cluster01" / "ca.key",
                 root / "cluster01" / "ca.crt"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    verified = openssl("verify", "-CAfile", str(root / "root-cert.pem"), str(root / "cluster01" / "ca.crt"))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    text = openssl("x509", "-in", str(root / "cluster01" / "ca.crt"), "-noout", "-text").stdout
    assert "CA:TRUE, pathlen:0" in text and "Intermediate CA cluster01" in text
    assert "CA:TRUE" in openssl("x509", "-in", str(root / "root-cert.pem"), "-noout", "-text").stdout
    before = {p: p.read_bytes() for p in root.rglob("*.pem")}

    again = run(play, root)
    assert changed(again.stdout)["localhost"] == 0, again.stdout[-3000:]
    assert run(play, root, "--check").stdout.count("changed=0") == 1
    assert {p: p.read_bytes() for p in root.rglob("*.pem")} == before


def test_a_new_root_reissues_the_intermediate(play, tmp_path):
    root = tmp_path / "ca"
    run(play, root)
    old = (root / "cluster01" / "ca.crt").read_bytes()
    for name in ("root-key.pem", "root-cert.pem"):
        (root / name).unlink()
    run(play, root)
    assert (root / "cluster01" / "ca.crt").read_bytes() != old
    verified = openssl("verify", "-CAfile", str(root / "root-cert.pem"), str(root / "cluster01" / "ca.crt"))
    assert verified.returncode == 0, verified.stdout + verified.stderr
