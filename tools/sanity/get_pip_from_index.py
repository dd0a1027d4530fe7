"""Stand-in for the pip bootstrap script that ansible-test downloads for its sanity venvs.

ansible-test creates each sanity venv without pip and runs a bootstrap script, normally fetched
from ci-files.testing.ansible.com. Machines that reach only a package index cannot fetch it, so
this script does the same job from what they have: the interpreter's bundled pip (ensurepip),
then `pip install` of the exact versions ansible-test asked for, from the configured index.
"""

import ensurepip
import os
import subprocess
import sys

# Options only the upstream bootstrap script understands.
_BOOTSTRAP_ONLY = {"--no-setuptools", "--no-wheel", "--no-pip"}


def main():
    # Taken before ensurepip, which points PIP_CONFIG_FILE at /dev/null for its own run and would
    # hide the machine's pip configuration (index, CA bundle) from the install below.
    env = dict(os.environ)
    env.pop("GET_PIP", None)
    ensurepip.bootstrap(upgrade=False, default_pip=True)
    args = [arg for arg in sys.argv[1:] if arg not in _BOOTSTRAP_ONLY]
    sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "--quiet"] + args, env=env))


if __name__ == "__main__":
    main()
