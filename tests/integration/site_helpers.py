"""Running the playbooks on the lab as a user does, for every lab-backed suite."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = pathlib.Path(sys.executable).parent / "ansible-playbook"


def run_site(out_dir, *extra, inventories=("inventories/lab",), playbook="playbooks/site.yml", expect=0):
    """ansible-playbook as a user runs it; returns stdout (and stderr when the exit code is not expected)."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    args = [str(ANSIBLE_PLAYBOOK)]
    for inventory in inventories:
        args += ["-i", str(REPO / inventory)]
    args += [str(REPO / playbook), "-e", "status_output_dir=%s" % out_dir, *extra]
    run = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800, check=False)
    assert run.returncode == expect, run.stdout[-6000:] + run.stderr[-3000:]
    return run.stdout
