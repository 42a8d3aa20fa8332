"""`mrdiff models list|download|info|push` through the real Typer entry point, without network."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mrdiff_cli.cli.main import app

from conftest_hub import COMMIT_MAIN, COMMIT_V1, bundle_config, hub_env, make_bundle  # noqa: F401  (fixtures)


@pytest.fixture
def cli(hub_env, tmp_path, monkeypatch):
    """Runner + a cache holding org/name (main, v1) and a bundled default; wide terminal for rich tables."""
    cache, weights = hub_env
    cache.add_bundle_repo("org/name", tmp=tmp_path, card="---\nlibrary_name: mrdiff\n---\n# Org name card\n")
    make_bundle(weights / "score-brain-128", bundle_config(tasks=["score", "vdm"]))
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(app, ["models", *args])

    return invoke


def test_models_help(cli):
    result = cli("--help")
    assert result.exit_code == 0
    for cmd in ("list", "download", "info", "push"):
        assert cmd in result.stdout


def test_list_json_shows_cached_and_bundled(cli):
    result = cli("list", "--json")
    assert result.exit_code == 0, result.output
    entries = json.loads(result.stdout)
    specs = {e["spec"]: e for e in entries}
    assert {"bundled:score-brain-128", "org/name", "org/name@v1"} <= set(specs)
    assert specs["org/name"]["commit"] == COMMIT_MAIN and specs["org/name"]["source"] == "hub"
    assert specs["bundled:score-brain-128"]["tasks"] == ["score", "vdm"]


def test_list_table(cli):
    result = cli("list")
    assert result.exit_code == 0, result.output
    for text in ("org/name", "org/name@v1", "bundled:score-brain-128", "128x128", COMMIT_V1[:10]):
        assert text in result.stdout


def test_info_offline_json(cli):
    result = cli("info", "org/name", "--offline", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["repo_id"] == "org/name" and info["commit"] == COMMIT_MAIN and info["revision"] == "main"
    assert info["tasks"] == ["score"] and info["resolution"] == [128, 128]
    assert "# Org name card" in info["card"] and info["config"]["mrdiff_bundle_version"] == 1


def test_info_human(cli):
    result = cli("info", "org/name@v1", "--offline")
    assert result.exit_code == 0, result.output
    assert COMMIT_V1 in result.stdout and "Org name card" in result.stdout and "model.safetensors" in result.stdout


def test_download_offline_prints_path(cli, hub_env):
    cache, _ = hub_env
    result = cli("download", "org/name@v1", "--offline")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(cache.root / "models--org--name" / "snapshots" / COMMIT_V1)


def test_errors_are_one_line_exit_2(cli):
    result = cli("info", "org/absent", "--offline")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mrdiff: error:") and "HF_HUB_OFFLINE" in lines[0]
    result = cli("download", "org/name@v9", "--offline")
    assert result.exit_code == 2 and "revision 'v9'" in result.stderr


def test_push_dry_run_prints_plan_and_card(cli, tmp_path, monkeypatch):
    import huggingface_hub

    class NoApi:
        def __init__(self, *a, **k):
            raise AssertionError("network client created during --dry-run")

    monkeypatch.setattr(huggingface_hub, "HfApi", NoApi)
    folder = make_bundle(tmp_path / "bundle")
    result = cli("push", str(folder), "me/tiny", "--dry-run")
    assert result.exit_code == 0, result.output
    for text in ("me/tiny@main", "config.json", "model.safetensors", "README.md", "library_name: mrdiff",
                 "Intended use and limitations"):
        assert text in result.stdout, text
    assert "nothing was uploaded" in result.stderr
    assert not (folder / "README.md").exists()

    result = cli("push", str(folder), "me/tiny", "--dry-run", "--json", "--revision", "v2", "--private")
    plan = json.loads(result.stdout)
    assert plan["dry_run"] and plan["revision"] == "v2" and plan["private"] is True
    assert "library_name: mrdiff" in plan["card"]


def test_push_refuses_pickles(cli, tmp_path):
    folder = make_bundle(tmp_path / "pkl", weights=False, extra_files={"pytorch_model.bin": b"\x80"})
    result = cli("push", str(folder), "me/tiny", "--dry-run")
    assert result.exit_code == 2 and "never loads pickled weights" in result.stderr


def test_list_marks_the_defaults_and_fully_convolutional_bundles(hub_env, monkeypatch):
    """The bundled defaults are marked with the commands that load them; a fully convolutional bundle's
    resolution reads as its training patch size, usable at any size; --json carries both."""
    _cache, weights = hub_env
    make_bundle(weights / "score-brain-128", bundle_config(tasks=["score", "vdm"]))
    make_bundle(weights / "score-brain-complex", {**bundle_config(), "resolution": [64, 64], "fully_convolutional": True})
    make_bundle(weights / "vdm-brain-128", bundle_config("vdm"))
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    entries = {e["name"]: e for e in json.loads(runner.invoke(app, ["models", "list", "--json"]).stdout)}
    assert entries["score-brain-complex"]["default_for"] == ["score"]
    assert entries["vdm-brain-128"]["default_for"] == ["vdm"] and entries["score-brain-128"]["default_for"] == []
    assert entries["score-brain-complex"]["fully_convolutional"] and not entries["score-brain-128"]["fully_convolutional"]
    out = runner.invoke(app, ["models", "list"]).stdout
    line = next(row for row in out.splitlines() if "score-brain-complex" in row)
    assert "(default: reconstruct, uncertainty)" in line and "64x64 patches, any size" in line, out
    assert "(default" not in next(row for row in out.splitlines() if "score-brain-128" in row), out
    assert "(default: superres)" in next(row for row in out.splitlines() if "vdm-brain-128" in row), out
