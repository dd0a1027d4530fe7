"""The collection builds, and the AWX execution environment definition is valid for ansible-builder."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(sys.executable).parent


def run(*args, cwd):
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False,
                          env=dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg")))


def test_collection_builds_and_ee_context_is_created(tmp_path):
    build = run(BIN / "ansible-galaxy", "collection", "build", "--output-path", tmp_path, REPO, cwd=tmp_path)
    assert build.returncode == 0, build.stdout + build.stderr
    tarballs = list(tmp_path.glob("multicloud-interconnect-*.tar.gz"))
    assert len(tarballs) == 1
    listing = subprocess.run(["tar", "-tzf", str(tarballs[0])], capture_output=True, text=True, check=True).stdout
    assert "plugins/modules/validate_topology.py" in listing
    assert ".venv/" not in listing and ".collections/" not in listing  # build_ignore works

    workdir = tmp_path / "ee"
    workdir.mkdir()
    for name in ("execution-environment.yml", "requirements.txt", "requirements.yml"):
        (workdir / name).write_text((REPO / name).read_text())
    (workdir / tarballs[0].name).write_bytes(tarballs[0].read_bytes())
    create = run(BIN / "ansible-builder", "create", "-f", "execution-environment.yml", "-c", "context",
                 "--output-filename", "Containerfile", cwd=workdir)
    assert create.returncode == 0, create.stdout + create.stderr
    containerfile = (workdir / "context" / "Containerfile").read_text()
    assert "ansible-galaxy collection install --offline /build/collections/multicloud-interconnect-" in containerfile
    assert (workdir / "context" / "_build" / "collections" / tarballs[0].name).exists()
    assert "kubernetes" in (workdir / "context" / "_build" / "requirements.txt").read_text()


def test_awx_credential_type_injects_one_kubeconfig_file():
    spec = yaml.safe_load((REPO / "awx" / "credential_type.yml").read_text())
    fields = {f["id"]: f for f in spec["inputs"]["fields"]}
    assert fields["kubeconfig"]["secret"] is True and fields["kubeconfig"]["multiline"] is True
    assert spec["inputs"]["required"] == ["kubeconfig"]
    assert spec["injectors"]["file"] == {"template.kubeconfig": "{{ kubeconfig }}"}
    # The variable kubernetes.core and this collection's modules read when no kubeconfig is given.
    assert spec["injectors"]["env"] == {"K8S_AUTH_KUBECONFIG": "{{ tower.filename.kubeconfig }}"}
