"""envs/*.yaml stay in step with pyproject.toml."""

from __future__ import annotations

import tomllib

import yaml
from conftest import REPO
from packaging.requirements import Requirement

#: Packages the Snakemake process itself needs; jobs' environments do not.
ENGINE_ONLY = {"snakemake", "snakemake-executor-plugin-slurm", "jsonschema", "pyyaml"}


def _pyproject() -> dict[str, str]:
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = map(Requirement, meta["dependencies"])
    return {r.name.lower(): str(r.specifier) for r in reqs}


def _env_requirements(path) -> dict[str, str]:
    deps = yaml.safe_load(path.read_text())["dependencies"]
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    reqs = map(Requirement, pip)
    return {r.name.lower(): str(r.specifier) for r in reqs}


def test_every_env_pins_what_pyproject_pins():
    project = _pyproject()
    envs = sorted((REPO / "envs").glob("*.yaml"))
    assert len(envs) >= 4
    for path in envs:
        for name, spec in _env_requirements(path).items():
            assert name in project, f"{path.name}: {name} is not a dependency in pyproject.toml"
            assert spec == project[name], f"{path.name}: {name}{spec} != pyproject {project[name]}"


def test_envs_cover_every_job_dependency():
    covered = set()
    for path in (REPO / "envs").glob("*.yaml"):
        covered |= set(_env_requirements(path))
    assert set(_pyproject()) - ENGINE_ONLY == covered


def test_every_rule_env_exists():
    for smk in (REPO / "rules").glob("*.smk"):
        for line in smk.read_text().splitlines():
            if line.strip().startswith('"../envs/'):
                assert (REPO / "rules" / line.strip().strip('"')).resolve().is_file(), line
