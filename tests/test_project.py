"""The project's own files: dependencies agree, notebooks are stored clean."""
import glob
import json
import pathlib
import re
import tomllib

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _name(req):
    return re.split(r"[<>=!~\[; ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_names_the_same_packages_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_names = {_name(r) for r in project["dependencies"]} | {_name(r) for r in project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda_names = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            conda_names |= {_name(r) for r in dep["pip"] if not r.startswith("-e")}
        elif not dep.startswith(("python", "pip")):
            conda_names.add(_name(dep))
    assert conda_names == pip_names
    # the pins agree too
    assert "torch==2.14.1" in project["dependencies"] and "torchvision==0.29.1" in project["dependencies"]
    pip_section = next(d for d in env["dependencies"] if isinstance(d, dict))["pip"]
    assert "torch==2.14.1" in pip_section and "torchvision==0.29.1" in pip_section


def test_notebooks_are_stored_without_outputs():
    paths = sorted(glob.glob(str(ROOT / "notebooks" / "*.ipynb")))
    assert paths, "no notebooks found"
    for p in paths:
        nb = json.loads(pathlib.Path(p).read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert not cell.get("outputs"), f"{p} is stored with outputs"
                assert cell.get("execution_count") is None, f"{p} is stored with execution counts"


def test_notebooks_name_the_project_kernel():
    for p in sorted(glob.glob(str(ROOT / "notebooks" / "*.ipynb"))):
        nb = json.loads(pathlib.Path(p).read_text())
        assert nb["metadata"].get("kernelspec", {}).get("name") == "python3", p


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test\n" in ci and "make test-browser" in ci
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
