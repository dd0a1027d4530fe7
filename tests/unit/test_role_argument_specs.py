"""Every role documents exactly the inputs its defaults declare, and keeps internals out of defaults."""

from __future__ import annotations

import pathlib

import pytest
import yaml

ROLES = pathlib.Path(__file__).resolve().parents[2] / "roles"
ROLE_DIRS = sorted(p for p in ROLES.iterdir() if (p / "tasks").is_dir()) if ROLES.is_dir() else []


def _load(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


@pytest.mark.parametrize("role", ROLE_DIRS, ids=[p.name for p in ROLE_DIRS])
def test_argument_specs_match_defaults(role):
    specs = _load(role / "meta" / "argument_specs.yml")["argument_specs"]
    defaults_file = role / "defaults" / "main.yml"
    defaults = _load(defaults_file) if defaults_file.exists() else {}
    documented = set()
    for entry in specs.values():
        documented |= set((entry.get("options") or {}))
    assert set(defaults) <= documented, "undocumented defaults: %s" % sorted(set(defaults) - documented)
    required = {name for entry in specs.values() for name, opt in (entry.get("options") or {}).items()
                if opt.get("required")}
    assert documented - required <= set(defaults), (
        "optional inputs without a default: %s" % sorted(documented - required - set(defaults)))


@pytest.mark.parametrize("role", ROLE_DIRS, ids=[p.name for p in ROLE_DIRS])
def test_inputs_are_prefixed_and_internals_stay_out_of_defaults(role):
    defaults_file = role / "defaults" / "main.yml"
    defaults = _load(defaults_file) if defaults_file.exists() else {}
    for name in defaults:
        assert not name.startswith("__"), "internal %s belongs in vars/ or set_fact" % name
        assert name.startswith(role.name + "_"), "%s is not prefixed with the role name" % name


@pytest.mark.parametrize("role", ROLE_DIRS, ids=[p.name for p in ROLE_DIRS])
def test_no_role_dependencies(role):
    meta = role / "meta" / "main.yml"
    if meta.exists():
        assert not _load(meta).get("dependencies"), "roles are composed in playbooks, not through meta dependencies"
