"""pyproject.toml as setuptools reads it when ``pip install -e .`` builds the project: no
deprecation or other warning, and the licence as an SPDX expression (PEP 639)."""
from __future__ import annotations

import warnings

from django.conf import settings


def test_setuptools_reads_pyproject_without_a_warning(monkeypatch):
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    monkeypatch.chdir(settings.BASE_DIR)  # as pip runs the build backend: in the project
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        distribution = apply_configuration(Distribution(), "pyproject.toml")
        packages = distribution.packages  # found as the build finds them

    assert [f"{w.category.__name__}: {w.message}" for w in caught] == []
    assert distribution.metadata.license_expression == "Apache-2.0"
    assert distribution.package_dir == {"": "."}
    assert {name.split(".")[0] for name in packages} == {"config", "feedback", "training"}
