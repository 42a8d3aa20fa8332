"""Fixtures for the model-hub tests: tiny mrdiff bundles and a Hugging Face cache laid out exactly as
huggingface_hub lays it out (``models--org--name/{blobs,snapshots,refs}``). Nothing here touches the network.

Imported by tests/test_priors_hub.py and tests/test_cli_models.py (not a conftest.py on purpose:
tests/conftest.py belongs to the shared fixtures)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
from safetensors.numpy import save_file

COMMIT_MAIN = "a" * 39 + "1"
COMMIT_V1 = "b" * 39 + "2"
DEAD_ENDPOINT = "http://127.0.0.1:9"  # discard port on loopback: nothing listens, connect is refused at once


def bundle_config(task: str = "score", *, resolution=(128, 128), version=1, tasks=None, **extra) -> dict:
    config = {
        "mrdiff_bundle_version": version,
        "task": task,
        "resolution": list(resolution),
        "architecture": {"type": "unet", "base_channels": 4, "channel_mults": [1, 2]},
        "training": {"dataset": "fastMRI brain (simulated)", "slices": 12, "steps": 10},
        "validation": {"psnr_4x": 31.2, "figures": ["figures/val.png"]},
        "description": f"tiny test {task} bundle",
    }
    if tasks is not None:
        config["tasks"] = list(tasks)
    config.update(extra)
    return config


def safetensors_bytes(tmp: Path, seed: int = 0) -> bytes:
    path = tmp / f".weights-{seed}.safetensors"
    rng = np.random.default_rng(seed)
    save_file({"conv.weight": rng.standard_normal((2, 1, 3, 3)).astype(np.float32)}, str(path))
    data = path.read_bytes()
    path.unlink()
    return data


def make_bundle(folder: Path, config: dict | None = None, *, weights: bool = True, seed: int = 0,
                extra_files: dict[str, bytes] | None = None) -> Path:
    """A bundle folder: config.json + model.safetensors (real, tiny) + any extra files."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config if config is not None else bundle_config()))
    if weights:
        (folder / "model.safetensors").write_bytes(safetensors_bytes(folder, seed))
    for name, data in (extra_files or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


@dataclass
class FakeHubCache:
    """Writes repos into ``root`` in huggingface_hub's cache layout."""

    root: Path
    repos: list[str] = field(default_factory=list)

    def add_repo(
        self,
        repo_id: str,
        revisions: dict[str, dict[str, bytes]],
        refs: dict[str, str],
        *,
        symlinks: bool = True,
    ) -> Path:
        """revisions: commit -> {path in repo: content}; refs: ref name -> commit."""
        storage = self.root / ("models--" + repo_id.replace("/", "--"))
        blobs = storage / "blobs"
        blobs.mkdir(parents=True, exist_ok=True)
        for commit, files in revisions.items():
            snap = storage / "snapshots" / commit
            for rel, data in files.items():
                target = snap / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                if symlinks:
                    blob = blobs / hashlib.sha256(data).hexdigest()
                    blob.write_bytes(data)
                    target.symlink_to(os.path.relpath(blob, target.parent))
                else:
                    target.write_bytes(data)
        for ref, commit in refs.items():
            ref_path = storage / "refs" / ref
            ref_path.parent.mkdir(parents=True, exist_ok=True)
            ref_path.write_text(commit)  # huggingface_hub writes the bare hash, no newline
        self.repos.append(repo_id)
        return storage

    def add_bundle_repo(self, repo_id: str, *, tmp: Path, config_main=None, config_v1=None, subfolder=None,
                        card: str | None = "# test card\n") -> Path:
        """refs/main -> COMMIT_MAIN, refs/v1 -> COMMIT_V1, each a full bundle (optionally under a subfolder)."""
        prefix = f"{subfolder}/" if subfolder else ""

        def files(config: dict, seed: int) -> dict[str, bytes]:
            out = {
                prefix + "config.json": json.dumps(config).encode(),
                prefix + "model.safetensors": safetensors_bytes(tmp, seed),
            }
            if card is not None:
                out[prefix + "README.md"] = card.encode()
            return out

        return self.add_repo(
            repo_id,
            {
                COMMIT_MAIN: files(config_main or bundle_config(description="main"), 1),
                COMMIT_V1: files(config_v1 or bundle_config(description="v1"), 2),
            },
            {"main": COMMIT_MAIN, "v1": COMMIT_V1},
        )


def go_online(monkeypatch) -> None:
    """Leave offline mode: unset HF_HUB_OFFLINE and huggingface_hub's import-time copy of it."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("MRDIFF_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


@pytest.fixture
def hub_env(tmp_path, monkeypatch):
    """Isolated HF cache + bundled-weights dir, offline by default; returns (FakeHubCache, weights dir)."""
    home = tmp_path / "hf_home"
    cache = home / "hub"
    cache.mkdir(parents=True)
    weights = tmp_path / "weights"
    weights.mkdir()
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", DEAD_ENDPOINT)  # even a stray online call cannot leave the machine
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setenv("MRDIFF_WEIGHTS_DIR", str(weights))
    # huggingface_hub freezes HF_HUB_OFFLINE at import: pin its copy too, whatever the import order
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.delenv("MRDIFF_OFFLINE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    return FakeHubCache(cache), weights


def _make_handler(routes):
    """Handler for a minimal loopback 'Hub' answering the few API routes snapshot_download uses (repo info,
    tree listing), with the X-Error-Code headers huggingface_hub maps to its exceptions."""
    from http.server import BaseHTTPRequestHandler

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        def _answer(self):
            path = self.path.split("?", 1)[0]
            self.server.seen.append(path)  # type: ignore[attr-defined]
            for prefix, (status, headers, body) in routes.items():
                if path.startswith(prefix):
                    break
            else:
                status, headers, body = 500, {}, {"error": "unexpected route " + path}
            data = json.dumps(body).encode()
            self.send_response(status)
            for k, v in {"Content-Type": "application/json", **headers}.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_HEAD = _answer

    return Handler


@pytest.fixture
def fake_hub(hub_env, monkeypatch):
    """A loopback HTTP server standing in for the Hub (127.0.0.1, random port); sets HF_ENDPOINT to it and
    turns offline mode off. Routes: org/missing -> RepoNotFound, org/name@nope -> RevisionNotFound,
    org/pkl -> a repo whose tree holds only pytorch_model.bin."""
    import threading
    from http.server import ThreadingHTTPServer

    routes = {
        "/api/models/org/missing": (404, {"X-Error-Code": "RepoNotFound"}, {"error": "Repository not found"}),
        "/api/models/org/name/revision/nope": (404, {"X-Error-Code": "RevisionNotFound"}, {"error": "Invalid rev"}),
        "/api/models/org/pkl/revision/main": (200, {}, {"id": "org/pkl", "sha": COMMIT_MAIN, "siblings": []}),
        "/api/models/org/pkl/tree/": (
            200, {}, [{"type": "file", "path": "pytorch_model.bin", "size": 12, "oid": "c" * 40}]
        ),
    }
    server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(routes))
    server.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    go_online(monkeypatch)
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
