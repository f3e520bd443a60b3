"""The project's own files: dependencies agree, notebooks are stored clean."""
import glob
import os
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


def _code_lines(cell):
    return [ln for ln in "".join(cell["source"]).splitlines() if ln.strip() and not ln.strip().startswith("#")]


def test_notebook_code_cells_are_short():
    """A code cell shows an algorithm or a call: at most 7 lines on average per notebook, none over 30."""
    for p in sorted(glob.glob(str(ROOT / "notebooks" / "[0-9]*.ipynb"))):
        lens = [len(_code_lines(c)) for c in json.loads(pathlib.Path(p).read_text())["cells"]
                if c["cell_type"] == "code"]
        assert sum(lens) / len(lens) <= 7, (p, sum(lens) / len(lens))
        assert max(lens) <= 30, (p, max(lens))


def test_no_module_imports_another_modules_private_name():
    import ast

    for path in sorted((ROOT / "course_utils").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.relative_to(ROOT)} imports {private} from .{node.module}"
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                base = node.value
                # self._x and cls._x are the module's own; a module alias (st._x) is another module's private
                assert not (isinstance(base, ast.Name) and base.id not in ("self", "cls", "ctx")
                            and base.id.islower() and len(base.id) <= 12 and base.id in _module_aliases(tree)), \
                    f"{path.relative_to(ROOT)}: {base.id}.{node.attr}"


def _module_aliases(tree):
    import ast

    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level > 0 and node.module is None:
            names |= {a.asname or a.name for a in node.names}
        if isinstance(node, ast.Import):
            names |= {a.asname or a.name.split(".")[0] for a in node.names if a.name.startswith("course_utils")}
    return names


# DESIGN.md's tree, floor by floor: an import may go to its own floor or a lower one, never up.
FLOORS = {0: {"images", "style_images", "labels", "models", "efficientnet_lite", "layers", "seeding", "plots", "testing",
              "claims"},
          1: {"optimize", "backprop"}, 3: {"panels"}, 4: {"grading"}}  # every other module: a lesson, floor 2


def _floor(module):
    top = module.split(".")[1] if "." in module else ""
    return next((f for f, names in FLOORS.items() if top in names), 0 if not top else 2)


def test_imports_go_down_the_floors_of_design_md():
    import ast

    package = ROOT / "course_utils"
    up = []
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        here = ".".join(parts[:-1]) if parts[-1] == "__init__" else ".".join(parts[:-1])
        me = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = here.split(".")[:len(here.split(".")) - (node.level - 1)]
                targets = [".".join(base + [node.module])] if node.module else [".".join(base + [a.name]) for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("course_utils.")]
            else:
                continue
            up += [f"{me} -> {t}" for t in targets if _floor(t) > _floor(me)]
    assert not up, up


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test\n" in ci and "make test-browser" in ci
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme


def test_a_wheel_holds_the_exercises_and_the_trained_styles(tmp_path):
    """A non-editable install (a course server, a Docker image, pip install git+...) has what the notebooks use."""
    import subprocess
    import sys
    import zipfile

    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist")], check=True, capture_output=True, timeout=600)
    (wheel,) = (tmp_path / "dist").glob("course_utils-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {"course_utils/grading/per_notebook/nb00_start_here.py", "course_utils/grading/cli.py"} <= set(names)
    assert {f"course_utils/data/fast_style/{s}.pt" for s in ("strokes", "embers", "kandinsky")} <= set(names)
    assert "course_utils/data/fast_style/multi/paintings.pt" in names
    assert "course_utils/data/masks/photos.json" in names  # the outlines that score segmentation on photos (03)
    assert "course_utils/grading/slurm.example.yaml" in names  # README, 'A large class': copied from the install
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(tmp_path / "site"),
                    str(wheel)], check=True, capture_output=True, timeout=600)
    code = ("import course_utils, sys; from course_utils import fast_style, grading\n"
            "assert course_utils.__file__.startswith(sys.argv[1]), course_utils.__file__\n"
            "print(len(grading.exercises()), fast_style.load_stylizer('paintings').styles and "
            "sorted(fast_style.pretrained_styles()))")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "site")], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    n, styles = out.stdout.split(" ", 1)
    assert int(n) >= 22 and styles.strip() == "['embers', 'kandinsky', 'strokes']"
