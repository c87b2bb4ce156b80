"""pyproject.toml lists every package folder, so a non-editable install ships all of Ember."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROOTS = {"frontend": "ember", "compiler": "ember.compiler", "codegen": "ember.codegen", "runtime": "ember.runtime"}


def test_every_package_folder_is_listed_in_pyproject():
    listed = set(re.findall(r'"(ember[a-z_.]*)"', (REPO / "pyproject.toml").read_text().split("packages = [")[1].split("]")[0]))
    found = set()
    for folder, package in ROOTS.items():
        for init in (REPO / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(REPO / folder).parts
            found.add(".".join((package, *parts)))
    assert found - listed == set()
