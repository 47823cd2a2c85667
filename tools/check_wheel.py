#!/usr/bin/env python3
"""Check an addon installed from its wheel, in the venv whose Python runs this script.

    VENV/bin/python tools/check_wheel.py --odoo-src ODOO_SRC --repo REPO ADDON

.ci/run builds the wheel with whool and installs it in a fresh venv beside Odoo's
requirements; this script then checks, against the repository and Odoo itself, that
what pip installed is the addon Odoo would load:

- the distribution odoo-addon-ADDON has the manifest's version and requires Odoo 18.0;
- the installed addon holds exactly the files git tracks in REPO/ADDON but whool's own
  pyproject.toml (nothing left out of the wheel, nothing extra);
- Odoo, with only its own addons on its addons path, finds the addon in the venv's
  odoo/addons (not in REPO), reads its manifest there, and every data, demo and asset
  file the manifest names exists there;
- the addon's Python imports against that Odoo.

Exits non-zero with one line per problem.
"""

import argparse
import ast
import glob
import importlib
import importlib.metadata
import os
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("addon")
    parser.add_argument("--odoo-src", required=True, type=Path)
    parser.add_argument("--repo", required=True, type=Path)
    args = parser.parse_args(argv)
    name, repo, odoo_src = args.addon, args.repo.resolve(), args.odoo_src.resolve()

    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    installed = site / "odoo" / "addons" / name
    if not (installed / "__manifest__.py").is_file():
        sys.exit(f"FAILED: no {installed}/__manifest__.py: the wheel did not install the addon")
    repo_manifest = ast.literal_eval((repo / name / "__manifest__.py").read_text("utf-8"))

    problems = []
    dist = check_metadata(name, repo_manifest, problems)
    found = check_files(name, repo, installed, problems)
    manifest = check_odoo_lookup(name, odoo_src, installed, repo_manifest, problems)
    check_import(name, installed, problems)

    for problem in problems:
        print(f"FAILED: {problem}")
    if problems:
        return 1
    print(
        f"{dist.metadata['Name']} {dist.version}: {len(found)} files in {installed}, as git "
        f"tracks them; Odoo loads it from there, with its {len(manifest.get('data', []))} "
        f"data and {len(manifest.get('demo', []))} demo files."
    )
    return 0


def check_metadata(name, repo_manifest, problems):
    """The distribution's metadata, as pip and other tools see it."""
    dist = importlib.metadata.distribution(f"odoo-addon-{name}")
    if not dist.version.startswith(repo_manifest["version"]):
        problems.append(f"wheel version {dist.version} is not manifest {repo_manifest['version']}")
    requires = dist.requires or []
    if requires != ["odoo==18.0.*"]:
        problems.append(f"wheel requires {requires}, expected only odoo==18.0.*")
    return dist


def check_files(name, repo, installed, problems):
    """The wheel holds what git tracks: a file left out would be missing in production."""
    tracked = subprocess.run(
        ["git", "-C", str(repo), "ls-files", "-z", "--", name],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\0")
    expected = {Path(p).relative_to(name).as_posix() for p in tracked if p}
    # whool's own build input, which it leaves out of the wheel on purpose.
    expected -= {"pyproject.toml", "PKG-INFO"}
    found = {
        p.relative_to(installed).as_posix()
        for p in installed.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    for path in sorted(expected - found):
        problems.append(f"tracked but not installed: {name}/{path}")
    for path in sorted(found - expected):
        problems.append(f"installed but not tracked: {name}/{path}")
    return found


def check_odoo_lookup(name, odoo_src, installed, repo_manifest, problems):
    """Odoo's own lookup, with an addons path that does not include the repository."""
    from odoo.modules import module as odoo_module
    from odoo.tools import config

    addons_paths = [str(odoo_src / "odoo" / "addons")]
    if (odoo_src / "addons").is_dir():
        addons_paths.append(str(odoo_src / "addons"))
    with tempfile.TemporaryDirectory() as data_dir:
        config.parse_config(["--addons-path", ",".join(addons_paths), "--data-dir", data_dir])
        odoo_module.initialize_sys_path()
        path = odoo_module.get_module_path(name, display_warning=False)
    if not path or Path(path).resolve() != installed:
        problems.append(f"Odoo finds {name} at {path}, not in the venv at {installed}")
    manifest = odoo_module.get_manifest(name) or {}
    if manifest.get("version") != repo_manifest["version"]:
        problems.append(f"Odoo reads version {manifest.get('version')} from the installed manifest")
    for key in ("data", "demo"):
        for rel in manifest.get(key, []):
            if not (installed / rel).is_file():
                problems.append(f"manifest {key} file missing: {name}/{rel}")
    for bundle, entries in manifest.get("assets", {}).items():
        for entry in entries:
            pattern = entry[-1] if isinstance(entry, tuple | list) else entry
            if not glob.glob(os.path.join(installed.parent, pattern), recursive=True):
                problems.append(f"asset of {bundle} matches no installed file: {pattern}")
    return manifest


def check_import(name, installed, problems):
    """Importing runs every module-level statement of the addon against this Odoo."""
    try:
        module = importlib.import_module(f"odoo.addons.{name}")
    except Exception as exc:  # any import error is a finding, reported with the rest
        problems.append(f"import odoo.addons.{name} failed: {exc!r}")
        return
    if Path(module.__file__).resolve().parent != installed:
        problems.append(f"odoo.addons.{name} imported from {module.__file__}")


if __name__ == "__main__":
    sys.exit(main())
