"""environment.yml (conda) must install what pyproject.toml declares: same packages, same pins.

pyproject's ``dependencies`` plus the ``browser`` extra are compared with the ``pip:`` list of
environment.yml, after normalising names ("PyYAML" == "pyyaml") and specifier order.
"""

from __future__ import annotations

import tomllib

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from course_utils.paths import PROJECT_ROOT

PYPROJECT = PROJECT_ROOT / "pyproject.toml"
ENVIRONMENT = PROJECT_ROOT / "environment.yml"


def pyproject() -> dict:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))


def environment() -> dict:
    return yaml.safe_load(ENVIRONMENT.read_text(encoding="utf-8"))


def pip_entries() -> list[str]:
    """The strings under ``- pip:`` in environment.yml."""
    lists = [item["pip"] for item in environment()["dependencies"] if isinstance(item, dict)]
    assert len(lists) == 1, "environment.yml needs exactly one `- pip:` list"
    return lists[0]


def conda_entries() -> list[str]:
    """The conda (non-pip) dependencies, e.g. "python=3.11"."""
    return [item for item in environment()["dependencies"] if isinstance(item, str)]


def requirement_key(text: str) -> tuple[str, str]:
    """(normalised name, normalised pin) of one requirement string."""
    req = Requirement(text)
    pin = str(SpecifierSet(str(req.specifier)))  # sorted specifiers: ">=1,<2" == "<2,>=1"
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    marker = f"; {req.marker}" if req.marker else ""
    return canonicalize_name(req.name), extras + pin + marker


def as_dict(requirements: list[str], where: str) -> dict[str, str]:
    keys = [requirement_key(text) for text in requirements]
    names = [name for name, _ in keys]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    assert not duplicates, f"{where} lists these more than once: {duplicates}"
    return dict(keys)


def test_environment_yml_has_the_same_packages_and_pins_as_pyproject() -> None:
    project = pyproject()["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["browser"]
    wanted = as_dict(declared, "pyproject.toml")
    listed = as_dict([e for e in pip_entries() if not e.startswith("-")], "environment.yml")
    missing = {name: pin for name, pin in wanted.items() if name not in listed}
    extra = {name: pin for name, pin in listed.items() if name not in wanted}
    different = {name: (wanted[name], listed[name]) for name in wanted.keys() & listed.keys()
                 if wanted[name] != listed[name]}
    assert not missing, f"in pyproject.toml but not environment.yml's pip list: {missing}"
    assert not extra, f"in environment.yml's pip list but not pyproject.toml: {extra}"
    assert not different, f"pins differ (pyproject.toml, environment.yml): {different}"


def test_environment_yml_installs_the_project_itself() -> None:
    assert "-e ." in pip_entries(), "environment.yml's pip list needs `-e .` (course_utils)"


def test_conda_python_satisfies_requires_python() -> None:
    pythons = [e for e in conda_entries() if e.startswith("python")]
    assert len(pythons) == 1, f"environment.yml should pin python once, found {pythons}"
    version = pythons[0].split("=", 1)[1].lstrip("=")  # "python=3.11" -> "3.11"
    requires = SpecifierSet(pyproject()["project"]["requires-python"])
    assert requires.contains(f"{version}.0"), \
        f"environment.yml's {pythons[0]} is outside requires-python {requires}"
    assert "pip" in conda_entries(), "environment.yml needs `pip` to install its pip list"
