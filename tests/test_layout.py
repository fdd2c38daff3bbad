"""The tree reads the way the data flows: transforms/ has the spine on top and one
package per layer, named as sql/ names its folders; dev tools stay off the
product path; every import names a module that exists; the README's layout
table lists exactly the packages there are."""
from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import pytest

from transforms.paths import REPO_ROOT, SQL_DIR

TRANSFORMS = REPO_ROOT / "transforms"
SPINE = {"__init__", "pipeline", "cli", "settings", "warehouse", "contract", "paths", "airflow_tasks",
         "run_lock", "privacy", "errors"}
# package -> the sql/ folders its SQL lives in (ingest loads raw and builds staging)
LAYERS = {"ingest": {"raw", "staging"}, "quality": {"quality"}, "core": {"core"}, "billing": {"billing"},
          "marts": {"marts"}}
TOOLS = "devtools"
DATA_FOLDERS = {"rules", "config"}   # files the product reads, not code


def packages() -> set[str]:
    return {p.parent.name for p in TRANSFORMS.glob("*/__init__.py")}


def python_files(*roots: Path) -> list[Path]:
    return sorted(p for root in roots for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            # `from transforms.billing import delivery` imports a module too
            names |= {f"{node.module}.{a.name}" for a in node.names
                      if importlib.util.find_spec(node.module) is not None
                      and importlib.util.find_spec(node.module).submodule_search_locations is not None
                      and (Path(importlib.util.find_spec(node.module).submodule_search_locations[0])
                           / f"{a.name}.py").exists()}
    return {n for n in names if n == "transforms" or n.startswith("transforms.")}


def test_top_level_modules_are_the_spine_and_the_rest_sit_in_layer_packages():
    assert {p.stem for p in TRANSFORMS.glob("*.py")} == SPINE
    assert packages() == set(LAYERS) | {TOOLS}
    for folder in TRANSFORMS.iterdir():
        if folder.is_dir() and folder.name not in DATA_FOLDERS and not folder.name.startswith((".", "_")):
            assert (folder / "__init__.py").exists(), f"{folder} is neither a package nor a data folder"


def test_each_layer_package_is_named_for_its_sql_folders_and_together_they_cover_sql():
    sql_folders = {p.name for p in SQL_DIR.iterdir() if p.is_dir()}
    assert set().union(*LAYERS.values()) == sql_folders
    for package, folders in LAYERS.items():
        assert package in folders or package == "ingest", package


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_a_layer_reads_only_its_own_sql_folders_and_the_layers_before_it(package):
    """A layer's Python runs SQL from its own folders; marts may bind its sources'
    schemas (their _schema.sql files) so its views always compile."""
    order = ["ingest", "quality", "core", "billing", "marts"]
    allowed = set().union(*(LAYERS[p] for p in order[: order.index(package) + 1]))
    for path in python_files(TRANSFORMS / package):
        for folder in re.findall(r"""["'](raw|staging|core|quality|billing|marts)/[\w./{}]+\.sql["']""",
                                 path.read_text(encoding="utf-8")):
            assert folder in allowed, f"{path.relative_to(REPO_ROOT)} runs sql/{folder}/ of a later layer"


def test_no_stage_imports_the_dev_tools():
    for path in python_files(TRANSFORMS, REPO_ROOT / "dags"):
        if TOOLS in path.parts or path.name == "cli.py":   # `ccm generate` is a dev tool the CLI offers
            continue
        tools = {m for m in imported_modules(path) if m.startswith(f"transforms.{TOOLS}")}
        assert not tools, f"{path.relative_to(REPO_ROOT)} imports {sorted(tools)}"


def test_every_import_of_ours_names_a_module_that_exists():
    for path in python_files(TRANSFORMS, REPO_ROOT / "dags", REPO_ROOT / "tests"):
        for module in imported_modules(path):
            assert importlib.util.find_spec(module) is not None, f"{path.relative_to(REPO_ROOT)}: {module}"


def test_python_m_commands_in_the_makefile_and_readme_name_modules_that_exist():
    text = (REPO_ROOT / "Makefile").read_text(encoding="utf-8") + (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    modules = set(re.findall(r"-m (transforms(?:\.\w+)+)", text))
    assert modules
    for module in modules:
        assert importlib.util.find_spec(module) is not None, module


def test_readme_layout_table_lists_exactly_the_packages_and_data_folders():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme[readme.index("## Layout"):readme.index("\n## ", readme.index("## Layout") + 1)]
    listed = set(re.findall(r"^\| `transforms/(\w+)/` \|", layout, flags=re.M))
    assert listed == packages() | DATA_FOLDERS
    sql_listed = set(re.findall(r"^\| `sql/(\w+)/` \|", layout, flags=re.M))
    assert sql_listed == {p.name for p in SQL_DIR.iterdir() if p.is_dir()}
    tests_listed = {p.name for p in (REPO_ROOT / "tests").iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert tests_listed <= packages() | {"reliability"}, "tests/ mirrors transforms/"
