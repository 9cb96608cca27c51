"""Packaging: setup.json mirrors pyproject.toml, entry points are prefixed, imports stay light."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("tensorflow", "torch", "keras", "jax", "sevenn", "chgnet")


def test_setup_json_mirrors_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    setup = json.loads((ROOT / "setup.json").read_text())
    assert setup["name"] == project["name"]
    assert setup["version"] == project["version"]
    assert setup["description"] == project["description"]
    assert setup["author"] == project["authors"][0]["name"]
    assert setup["author_email"] == project["authors"][0]["email"]
    assert setup["license"] == project["license"]
    assert setup["url"] == project["urls"]["Source"]
    assert setup["python_requires"] == project["requires-python"]
    assert setup["classifiers"] == project["classifiers"]
    assert setup["install_requires"] == project["dependencies"]
    assert setup["extras_require"] == project["optional-dependencies"]
    entry_points = {
        group: sorted(f"{name} = {target}" for name, target in points.items())
        for group, points in project["entry-points"].items()
    }
    entry_points["console_scripts"] = sorted(f"{name} = {target}" for name, target in project["scripts"].items())
    assert {group: sorted(points) for group, points in setup["entry_points"].items()} == entry_points


def test_registry_conventions():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "Framework :: AiiDA" in project["classifiers"]
    assert sum(c.startswith("Development Status") for c in project["classifiers"]) == 1
    for group, points in project["entry-points"].items():
        assert group.startswith("aiida.")
        assert all(name.startswith("ccdcgan.") for name in points), group


def _modules_after(code: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "code",
    [
        "import aiida_ccdcgan",
        "import aiida_ccdcgan.cli, aiida_ccdcgan.tools.datasets, aiida_ccdcgan.calculations.functions.split",
        "from aiida.cmdline.commands.cmd_verdi import verdi\n"
        "try:\n    verdi.main(['plugin', 'list', 'aiida.calculations', 'ccdcgan.split_dataset'], standalone_mode=False)\n"
        "except SystemExit:\n    pass",
    ],
    ids=["package", "aiida-layer", "verdi-plugin-list"],
)
def test_imports_do_not_load_tensorflow_or_torch(code):
    modules = _modules_after(code)
    assert "aiida_ccdcgan" in modules or "aiida" in modules
    loaded = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert not loaded, loaded


def test_pure_layers_know_nothing_of_aiida():
    modules = _modules_after("import aiida_ccdcgan.dataset, aiida_ccdcgan.representation.roundtrip")
    assert "aiida_ccdcgan.representation.decode" in modules
    assert not sorted(m for m in modules if m.split(".")[0] in ("aiida", *HEAVY))


LAYERS = (
    ("errors", "dataset", "representation", "dependencies", "resources"),
    ("relaxation", "thermodynamics", "plotting"),
    ("evaluation",),
    ("models",),
    ("jobs",),
    ("common", "data"),
    ("calculations", "parsers"),
    ("workflows",),
    ("tools",),
    ("cli",),
)
"""The package's rooms from the bottom up, as README's layout lists them: each imports only from its own layer or
those below it."""


def _package_imports():
    """(importing module, imported module) for every import of one aiida_ccdcgan module by another."""
    root = Path(__file__).resolve().parents[2] / "aiida_ccdcgan"
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join([*base, *([node.module] if node.module else [])])
                names = [f"{target}.{alias.name}" for alias in node.names]
                yield from ((module, name) for name in [target, *names] if name.startswith("aiida_ccdcgan."))
            elif isinstance(node, ast.Import):
                yield from ((module, a.name) for a in node.names if a.name.startswith("aiida_ccdcgan."))


def test_data_flows_one_way_through_the_layers():
    """No room imports from a room above it; the AiiDA layer knows the compute-node jobs only by their contract;
    workflows/ uses none of the helpers meant for people."""
    rank = {room: level for level, rooms in enumerate(LAYERS) for room in rooms}
    rooms = {module.split(".")[1] for module, _ in _package_imports()}
    assert rooms - {"__init__", "__version__"} <= set(rank), rooms - set(rank)
    upward, contract, helpers = [], [], []
    for module, target in _package_imports():
        source, imported = module.split(".")[1], target.split(".")[1]
        if imported in rank and source in rank and rank[imported] > rank[source]:
            upward.append((module, target))
        if rank.get(source, 0) > rank["jobs"] and target.startswith("aiida_ccdcgan.jobs."):
            if not target.startswith("aiida_ccdcgan.jobs.contract"):
                contract.append((module, target))
        if source == "workflows" and imported in ("tools", "cli"):
            helpers.append((module, target))
    assert not upward, upward
    assert not contract, contract
    assert not helpers, helpers


def test_verdi_lists_the_entry_points():
    output = subprocess.run(
        [Path(sys.executable).with_name("verdi"), "plugin", "list", "aiida.calculations"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "ccdcgan.split_dataset" in output
