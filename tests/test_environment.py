"""environment.yml (conda users) and pyproject.toml (make setup) must pin the same stack."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _pyproject_pins():
    p = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = p["dependencies"] + [d for extra in p["optional-dependencies"].values() for d in extra]
    return dict(d.split("==") for d in deps)


def _conda_pins():
    text = (ROOT / "environment.yml").read_text()
    return dict(re.findall(r"^\s+- ([A-Za-z0-9_.-]+)==(\S+)\s*$", text, re.M))


def test_every_dependency_is_pinned_exactly():
    p = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for d in p["dependencies"]:
        assert "==" in d, f"{d} is not pinned"


def test_environment_yml_matches_pyproject():
    assert _conda_pins() == _pyproject_pins()
