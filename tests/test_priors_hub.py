"""Model resolution (bundled / folder / Hub cache), bundle validation, listing, info and push planning.

No test touches the network: the Hugging Face cache is a temp folder laid out like huggingface_hub's, the
endpoint is a closed loopback port or a loopback fake Hub (tests/conftest_hub.py)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from mrdiff_cli.errors import ModelError
from mrdiff_cli.priors import hub

from conftest_hub import (  # noqa: F401  (fixtures; tests/ is not a package, pytest puts it on sys.path)
    COMMIT_MAIN,
    COMMIT_V1,
    DEAD_ENDPOINT,
    bundle_config,
    fake_hub,
    go_online,
    hub_env,
    make_bundle,
    safetensors_bytes,
)


def raises_one_line(match: str | None = None):
    """pytest.raises(ModelError) that also checks the message is a single line."""

    class _Ctx:
        def __enter__(self):
            self._cm = pytest.raises(ModelError, match=match)
            self.info = self._cm.__enter__()
            return self.info

        def __exit__(self, *exc):
            handled = self._cm.__exit__(*exc)
            if handled:
                assert "\n" not in str(self.info.value), str(self.info.value)
            return handled

    return _Ctx()


# ------------------------------------------------------------------------------------------------ spec parsing


@pytest.mark.parametrize(
    "spec, expected",
    [
        (None, dict(kind="default")),
        ("", dict(kind="default")),
        ("default", dict(kind="default")),
        ("bundled:score-brain-128", dict(kind="bundled", name="score-brain-128")),
        ("score-brain-128", dict(kind="bundled", name="score-brain-128")),
        ("org/name", dict(kind="hub", repo_id="org/name", revision=None, subfolder=None)),
        ("org/name@v1", dict(kind="hub", repo_id="org/name", revision="v1")),
        (f"org/name@{COMMIT_V1}", dict(kind="hub", repo_id="org/name", revision=COMMIT_V1)),
        ("org/name@refs/pr/3", dict(kind="hub", repo_id="org/name", revision="refs/pr/3")),
        ("hf://org/name", dict(kind="hub", repo_id="org/name", revision=None, subfolder=None)),
        ("hf://models/org/name@v1", dict(kind="hub", repo_id="org/name", revision="v1", subfolder=None)),
        ("hf://org/name@v1/score", dict(kind="hub", repo_id="org/name", revision="v1", subfolder="score")),
        ("hf://org/name@main/a/b/", dict(kind="hub", repo_id="org/name", revision="main", subfolder="a/b")),
        ("hf://org/name/score", dict(kind="hub", repo_id="org/name", revision=None, subfolder="score")),
        ("hf://org/name@refs/pr/3/score", dict(kind="hub", revision="refs/pr/3", subfolder="score")),
        ("hf://org/name@feat%2Fx/sub", dict(kind="hub", revision="feat/x", subfolder="sub")),
    ],
)
def test_parse_model_spec(spec, expected):
    parsed = hub.parse_model_spec(spec)
    for key, value in expected.items():
        assert getattr(parsed, key) == value, (spec, key)


@pytest.mark.parametrize(
    "spec, match",
    [
        ("hf://datasets/org/data", "model repos"),
        ("hf://org", "hf://org/name"),
        ("s3://bucket/model", "unsupported"),
        ("org/na me", "invalid Hub repo id"),
        ("org/-name", "invalid Hub repo id"),
        ("org/na--me", "invalid Hub repo id"),
        ("org/name.git", "invalid Hub repo id"),
        ("hf://org/nämé", "invalid Hub repo id"),
        ("org/name@", "invalid revision"),
        ("org/name@../x", "invalid revision"),
        ("hf://org/name@v1/../x", "invalid subfolder"),
        ("a/b/c", "hf://org/name@revision/subfolder"),
        ("./missing-bundle", "does not exist"),
        ("/definitely/not/here", "does not exist"),
        ("bundled:", "invalid bundled"),
    ],
)
def test_parse_model_spec_errors(spec, match):
    with raises_one_line(match):
        hub.parse_model_spec(spec)


def test_parse_existing_folder_wins_and_files_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_bundle(tmp_path / "org" / "name")
    assert hub.parse_model_spec("org/name").kind == "local"  # an existing folder beats a Hub id
    assert hub.parse_model_spec("hf://org/name").kind == "hub"  # hf:// forces the Hub
    (tmp_path / "ckpt.pt").write_bytes(b"x")
    with raises_one_line("never loads pickled weights"):
        hub.parse_model_spec("ckpt.pt")
    with raises_one_line("pass the bundle folder"):
        hub.parse_model_spec(str(tmp_path / "org" / "name" / "config.json"))


# ------------------------------------------------------------------------------------------------ Hub cache


def test_hub_repo_resolves_to_refs_main_offline(hub_env, tmp_path):
    cache, _ = hub_env
    cache.add_bundle_repo("org/name", tmp=tmp_path)
    rm = hub.resolve_model("org/name", "score")
    assert rm.source == "hub" and rm.repo_id == "org/name" and rm.revision == "main"
    assert rm.commit == COMMIT_MAIN
    assert rm.path == cache.root / "models--org--name" / "snapshots" / COMMIT_MAIN
    assert rm.config["description"] == "main"
    assert rm.weights_path.is_file() and rm.warning is None
    assert rm.pinned_spec == f"hf://org/name@{COMMIT_MAIN}"


@pytest.mark.parametrize("rev", [COMMIT_V1, "v1"])
def test_hub_revision_pins(hub_env, tmp_path, rev):
    cache, _ = hub_env
    cache.add_bundle_repo("org/name", tmp=tmp_path)
    rm = hub.resolve_model(f"org/name@{rev}", "score")
    assert rm.commit == COMMIT_V1 and rm.revision == rev
    assert rm.config["description"] == "v1"


def test_hub_plain_files_in_snapshot(hub_env, tmp_path):
    """Snapshots may hold plain files instead of symlinks (e.g. Windows without developer mode)."""
    cache, _ = hub_env
    files = {
        "config.json": json.dumps(bundle_config()).encode(),
        "model.safetensors": safetensors_bytes(tmp_path),
    }
    cache.add_repo("org/plain", {COMMIT_MAIN: files}, {"main": COMMIT_MAIN}, symlinks=False)
    assert hub.resolve_model("org/plain", "score").commit == COMMIT_MAIN


def test_hub_subfolder(hub_env, tmp_path):
    cache, _ = hub_env
    cache.add_bundle_repo("org/multi", tmp=tmp_path, subfolder="score")
    rm = hub.resolve_model("hf://org/multi@v1/score", "score")
    assert rm.path == cache.root / "models--org--multi" / "snapshots" / COMMIT_V1 / "score"
    assert rm.subfolder == "score" and rm.name == "org/multi/score"
    assert rm.pinned_spec == f"hf://org/multi@{COMMIT_V1}/score"
    with raises_one_line("has no mrdiff bundle under 'other'"):
        hub.resolve_model("hf://org/multi@v1/other", "score")


def connect_spy(monkeypatch) -> list:
    """Every TCP connect attempt (address) from now on, in any thread; the connects still happen."""
    import socket

    seen: list = []
    real_connect = socket.socket.connect

    def connect(sock, address):
        seen.append(address)
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return seen


DEAD_ADDRESS = (urlsplit(DEAD_ENDPOINT).hostname, urlsplit(DEAD_ENDPOINT).port)


def test_offline_not_cached_opens_no_connection_and_names_the_switch(hub_env, monkeypatch):
    import socket

    attempts = []

    def no_network(*a, **k):
        attempts.append(a)
        raise OSError("offline mode opened a connection")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    with raises_one_line("offline mode is on .*HF_HUB_OFFLINE") as info:
        hub.resolve_model("org/absent", "score")
    assert attempts == []  # not even the reachability probe
    assert "org/absent" in str(info.value) and "not in the local cache" in str(info.value)


def test_offline_revision_not_cached(hub_env, tmp_path):
    cache, _ = hub_env
    cache.add_bundle_repo("org/name", tmp=tmp_path)
    with raises_one_line("revision 'v2' of 'org/name' is not in the local cache") as info:
        hub.resolve_model("org/name@v2", "score")
    assert "main" in str(info.value) and "v1" in str(info.value)  # lists what is cached
    with raises_one_line("HF_HUB_OFFLINE"):
        hub.resolve_model("org/name@" + "f" * 40, "score")


def test_offline_switches(hub_env, monkeypatch, tmp_path):
    cache, _ = hub_env
    cache.add_bundle_repo("org/name", tmp=tmp_path)
    go_online(monkeypatch)
    with raises_one_line(r"\(`offline`\)") as info:  # the parameter, not the flag (the CLI renders --offline)
        hub.resolve_model("org/absent", "score", offline=True)
    assert "--" not in str(info.value)
    assert hub.resolve_model("org/name", "score", offline=True).commit == COMMIT_MAIN
    monkeypatch.setenv("MRDIFF_OFFLINE", "1")
    assert hub.is_offline() and hub.is_offline(False)
    with raises_one_line("MRDIFF_OFFLINE=1"):
        hub.resolve_model("org/absent", "score")


def test_unreachable_hub_fails_after_the_probe_alone(hub_env, monkeypatch):
    """The failed probe decides: one connect attempt, no request (and so no retries) by huggingface_hub."""
    go_online(monkeypatch)
    monkeypatch.setenv("HF_ENDPOINT", DEAD_ENDPOINT)
    seen = connect_spy(monkeypatch)
    with raises_one_line("cannot reach the Hugging Face Hub") as info:
        hub.resolve_model("org/absent", "score")
    assert seen == [DEAD_ADDRESS]
    assert "HF_HUB_OFFLINE" in str(info.value) and "org/absent" in str(info.value)


def test_unreachable_hub_uses_cache_with_warning(hub_env, monkeypatch, tmp_path):
    cache, _ = hub_env
    cache.add_bundle_repo("org/name", tmp=tmp_path)
    go_online(monkeypatch)
    monkeypatch.setenv("HF_ENDPOINT", DEAD_ENDPOINT)
    seen = connect_spy(monkeypatch)
    rm = hub.resolve_model("org/name@v1", "score")
    assert seen == [DEAD_ADDRESS]  # the probe only: the cache answers without a request
    assert rm.commit == COMMIT_V1
    assert rm.warning and "unreachable" in rm.warning and "cached" in rm.warning


def test_unreachable_without_probe_is_mapped_without_retries(hub_env, monkeypatch, tmp_path):
    """Even if the pre-flight probe is fooled, huggingface_hub's own connect error is mapped, after one
    connect attempt per resolution (no retry loop)."""
    cache, _ = hub_env
    cache.add_bundle_repo("org/name", tmp=tmp_path)
    go_online(monkeypatch)
    monkeypatch.setenv("HF_ENDPOINT", DEAD_ENDPOINT)
    monkeypatch.setattr(hub.env, "hub_reachable", lambda *a, **k: True)
    seen = connect_spy(monkeypatch)
    with raises_one_line("cannot reach the Hugging Face Hub"):
        hub.resolve_model("org/absent", "score")
    assert seen == [DEAD_ADDRESS]
    assert hub.resolve_model("org/name", "score").commit == COMMIT_MAIN  # huggingface_hub's cache fallback
    assert seen == [DEAD_ADDRESS] * 2


def test_frozen_hf_offline_constant_counts_as_offline(hub_env, monkeypatch):
    """HF_HUB_OFFLINE set when huggingface_hub was imported still blocks its requests: say so, don't
    report an unreachable network."""
    monkeypatch.delenv("HF_HUB_OFFLINE")  # the hub_env fixture keeps huggingface_hub's frozen copy True
    with raises_one_line("offline mode is on .*HF_HUB_OFFLINE"):
        hub.resolve_model("org/absent", "score")


def test_hub_reachable_probe():
    import socket

    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        assert hub.hub_reachable(f"http://127.0.0.1:{srv.getsockname()[1]}", timeout=1.0)
    assert not hub.hub_reachable(DEAD_ENDPOINT, timeout=1.0)
    assert not hub.hub_reachable("http://", timeout=1.0)


def test_hub_reachable_probe_gives_up_while_connect_hangs(monkeypatch):
    """A connect (or DNS look-up) that never returns makes the probe answer False after its timeout instead of
    blocking the command: the probe runs in a daemon thread that is left behind."""
    import socket
    import threading

    release = threading.Event()
    calls = []

    def hang(*a, **k):
        calls.append(a)
        release.wait(60)
        raise OSError("released")

    monkeypatch.setattr(socket, "create_connection", hang)
    answer: list = []
    asker = threading.Thread(target=lambda: answer.append(hub.hub_reachable("http://hub.example:80", timeout=0.05)), daemon=True)
    asker.start()
    asker.join(30)  # hang guard only: the probe answers after ~0.3 s
    try:
        assert answer == [False] and calls  # answered although the connect is still blocked
    finally:
        release.set()


def test_pinned_commit_in_cache_needs_no_network(hub_env, monkeypatch, tmp_path):
    cache, _ = hub_env
    cache.add_bundle_repo("org/name", tmp=tmp_path)
    go_online(monkeypatch)

    def boom(*a, **k):
        raise AssertionError("network probe for an immutable cached commit")

    monkeypatch.setattr(hub.env, "hub_reachable", boom)
    assert hub.resolve_model(f"org/name@{COMMIT_V1}", "score").commit == COMMIT_V1


def test_hub_errors_are_mapped(fake_hub, tmp_path):
    """Against a loopback fake Hub: repo not found, revision not found, pickle-only repo."""
    with raises_one_line("model repo 'org/missing' not found on the Hub"):
        hub.resolve_model("org/missing", "score")
    with raises_one_line("revision 'nope' not found in model repo 'org/name'"):
        hub.resolve_model("org/name@nope", "score")
    with raises_one_line("contains no model.safetensors; mrdiff never loads pickled weights") as info:
        hub.resolve_model("org/pkl", "score")
    assert "pytorch_model.bin" in str(info.value)
    assert "/api/models/org/missing/revision/main" in fake_hub.seen


def test_cached_pickle_only_repo_refused(hub_env):
    cache, _ = hub_env
    files = {"config.json": json.dumps(bundle_config()).encode(), "pytorch_model.bin": b"\x80\x04pickle"}
    cache.add_repo("org/pickled", {COMMIT_MAIN: files}, {"main": COMMIT_MAIN})
    with raises_one_line("contains no model.safetensors; mrdiff never loads pickled weights"):
        hub.resolve_model("org/pickled", "score")


# ------------------------------------------------------------------------------------------------ validation


def test_local_folder(tmp_path):
    folder = make_bundle(tmp_path / "my-bundle", bundle_config(tasks=["score", "vdm"]))
    rm = hub.resolve_model(str(folder), "vdm", resolution=(128, 128))
    assert rm.source == "local" and rm.path == folder.resolve() and rm.tasks == ["score", "vdm"]
    assert rm.resolution == (128, 128) and rm.pinned_spec == str(folder.resolve())


def test_local_pickle_only_refused(tmp_path):
    folder = tmp_path / "pkl"
    make_bundle(folder, weights=False, extra_files={"model.ckpt": b"\x80\x04"})
    with raises_one_line(r"contains no model.safetensors; mrdiff never loads pickled weights \(found model.ckpt"):
        hub.resolve_model(str(folder), "score")


@pytest.mark.parametrize(
    "config, task, resolution, match",
    [
        (bundle_config("score"), "vdm", None, "is a 'score' model .* needs a 'vdm' model"),
        (bundle_config("vdm"), "score", None, "needs a 'score' model"),
        (bundle_config(resolution=(128, 128)), "score", (256, 256), "trained at 128x128; this command needs 256x256"),
        (bundle_config(version=2), "score", None, "mrdiff_bundle_version 2; this mrdiff reads version 1; upgrade"),
        (bundle_config(version="1"), "score", None, "mrdiff_bundle_version '1'"),
        ({"model_type": "bert"}, "score", None, "not an mrdiff bundle"),
        (bundle_config(task="denoise"), None, None, "'task' must be one of"),
        (bundle_config(tasks=["score", "seg"]), None, None, "'tasks' must be a list"),
        (bundle_config(resolution=(128,)), None, None, "'resolution' must be"),
        (bundle_config(architecture=None), None, None, "no 'architecture'"),
    ],
)
def test_check_bundle_rejects(tmp_path, config, task, resolution, match):
    folder = make_bundle(tmp_path / "b", config)
    with raises_one_line(match):
        hub.check_bundle(folder, task, resolution)


def test_check_bundle_file_problems(tmp_path):
    folder = make_bundle(tmp_path / "b")
    (folder / "config.json").write_text("{not json")
    with raises_one_line("config.json is not valid JSON"):
        hub.check_bundle(folder, "score")
    make_bundle(folder)
    (folder / "model.safetensors").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\n")
    with raises_one_line("not a valid safetensors file .*git lfs pull"):
        hub.check_bundle(folder, "score")
    (folder / "config.json").unlink()
    make_bundle(folder)
    (folder / "config.json").unlink()
    with raises_one_line("contains no config.json"):
        hub.check_bundle(folder, "score")
    with raises_one_line("not found"):
        hub.check_bundle(tmp_path / "nope", "score")
    with raises_one_line("unknown model task"):
        hub.check_bundle(folder, "segment")


# ------------------------------------------------------------------------------------------------ bundled


def test_bundled_default_and_vdm_fallback(hub_env):
    _, weights = hub_env
    with raises_one_line("no bundled default model for task 'score'"):
        hub.resolve_model(None, "score")
    make_bundle(weights / "score-brain-128", bundle_config("score", tasks=["score", "vdm"]))
    rm = hub.resolve_model(None, "score")
    assert rm.source == "bundled" and rm.name == "score-brain-128" and rm.pinned_spec == "bundled:score-brain-128"
    # no vdm-brain-128: the score bundle that also serves 'vdm' is the VDM default
    assert hub.resolve_model("default", "vdm").name == "score-brain-128"
    make_bundle(weights / "vdm-brain-128", bundle_config("vdm"))
    assert hub.resolve_model(None, "vdm").name == "vdm-brain-128"
    assert hub.resolve_model("bundled:vdm-brain-128", "vdm").path == weights / "vdm-brain-128"
    assert hub.resolve_model("score-brain-128", "score").source == "bundled"
    with raises_one_line(r"no bundled model 'nope' .*available: score-brain-128, vdm-brain-128"):
        hub.resolve_model("bundled:nope", "score")


def test_bundled_dir_override(tmp_path, monkeypatch):
    monkeypatch.delenv("MRDIFF_WEIGHTS_DIR", raising=False)
    import mrdiff_cli

    assert hub.bundled_dir() == Path(mrdiff_cli.__file__).resolve().parent / "weights"
    make_bundle(tmp_path / "w" / "score-brain-128")
    assert hub.resolve_model(None, "score", weights_dir=tmp_path / "w").path == tmp_path / "w" / "score-brain-128"


def test_cache_dir_follows_env_at_call_time(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert hub.hf_cache_dir() == tmp_path / "home" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "c"))
    assert hub.hf_cache_dir() == tmp_path / "c"


# ------------------------------------------------------------------------------------------------ list / info


def test_list_models(hub_env, tmp_path):
    cache, weights = hub_env
    make_bundle(weights / "score-brain-128", bundle_config(tasks=["score", "vdm"]))
    cache.add_bundle_repo("org/name", tmp=tmp_path)
    cache.add_bundle_repo("org/multi", tmp=tmp_path, subfolder="vdm", config_main=bundle_config("vdm"))
    cache.add_repo("org/bert", {COMMIT_MAIN: {"config.json": b'{"model_type": "bert"}'}}, {"main": COMMIT_MAIN})
    entries = hub.list_models()
    by_spec = {e["spec"]: e for e in entries}
    assert set(by_spec) == {
        "bundled:score-brain-128",
        "org/name",
        "org/name@v1",
        "hf://org/multi@main/vdm",
        "hf://org/multi@v1/vdm",
    }
    main = by_spec["org/name"]
    assert main["source"] == "hub" and main["commit"] == COMMIT_MAIN and main["revision"] == "main"
    assert main["tasks"] == ["score"] and main["resolution"] == [128, 128] and main["size_bytes"] > 0
    assert main["complete"] is True
    assert by_spec["bundled:score-brain-128"]["tasks"] == ["score", "vdm"]
    assert by_spec["hf://org/multi@main/vdm"]["tasks"] == ["vdm"]
    # every listed spec resolves
    for spec, entry in by_spec.items():
        assert hub.resolve_model(spec, None).path == Path(entry["path"])


def test_list_models_empty(hub_env, tmp_path):
    assert hub.list_models(cache_dir=tmp_path / "no-cache", weights_dir=tmp_path / "no-weights") == []


def test_model_info(hub_env, tmp_path):
    cache, _ = hub_env
    cache.add_bundle_repo("org/name", tmp=tmp_path, card="---\nlibrary_name: mrdiff\n---\n# Card v\n")
    info = hub.model_info("org/name@v1")
    assert info["commit"] == COMMIT_V1 and info["revision"] == "v1" and info["source"] == "hub"
    assert info["card"].endswith("# Card v\n") and info["config"]["description"] == "v1"
    assert {f["name"] for f in info["files"]} == {"config.json", "model.safetensors", "README.md"}
    json.dumps(info)  # JSON-serialisable as is


def test_download_model_returns_the_validated_snapshot_huggingface_hub_finds(hub_env, tmp_path):
    from huggingface_hub import try_to_load_from_cache

    cache, _ = hub_env
    cache.add_bundle_repo("org/name", tmp=tmp_path)
    rm = hub.download_model("org/name@v1", offline=True)
    assert rm.commit == COMMIT_V1 and rm.revision == "v1" and rm.config["description"] == "v1"
    found = try_to_load_from_cache("org/name", "model.safetensors", cache_dir=cache.root, revision="v1")
    assert Path(found) == rm.weights_path  # the folder printed is the one huggingface_hub itself resolves
    # what it fetched is validated, not just located: the task, and the weights file's header
    with raises_one_line("is a 'score' model .* needs a 'vdm' model"):
        hub.download_model("org/name@v1", offline=True, task="vdm")
    pointer = b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 1\n"
    files = {"config.json": json.dumps(bundle_config()).encode(), "model.safetensors": pointer}
    cache.add_repo("org/lfs", {COMMIT_MAIN: files}, {"main": COMMIT_MAIN})
    with raises_one_line("not a valid safetensors file .*git lfs pull"):
        hub.download_model("org/lfs", offline=True)


def test_fake_cache_has_huggingface_hub_layout(hub_env, tmp_path):
    """The fixture cache must read back through huggingface_hub's own scanner without warnings."""
    from huggingface_hub import scan_cache_dir

    cache, _ = hub_env
    cache.add_bundle_repo("org/name", tmp=tmp_path, subfolder="score")
    info = scan_cache_dir(cache.root)
    assert info.warnings == []
    (repo,) = info.repos
    assert repo.repo_id == "org/name" and repo.repo_type == "model"
    assert {r.commit_hash: set(r.refs) for r in repo.revisions} == {COMMIT_MAIN: {"main"}, COMMIT_V1: {"v1"}}
    assert {f.file_name for r in repo.revisions for f in r.files} == {"config.json", "model.safetensors", "README.md"}


# ------------------------------------------------------------------------------------------------ push


class _NoHfApi:
    def __init__(self, *a, **k):
        raise AssertionError("dry run must not create an HfApi client")


def test_push_dry_run_plan_and_card(tmp_path, monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", _NoHfApi)
    monkeypatch.setattr(hub.env, "hub_reachable", lambda *a, **k: (_ for _ in ()).throw(AssertionError("probe")))
    folder = make_bundle(
        tmp_path / "b",
        bundle_config(tasks=["score", "vdm"], license="cc-by-4.0", limitations="Brain T2 only."),
        extra_files={"figures/val.png": b"\x89PNG fake", "notes.txt": b"private"},
    )
    plan = hub.push_model(folder, "me/tiny", revision="v2", private=True, dry_run=True)
    assert plan["dry_run"] and plan["repo_id"] == "me/tiny" and plan["revision"] == "v2" and plan["private"]
    assert [f["path"] for f in plan["files"]] == ["config.json", "model.safetensors", "README.md", "figures/val.png"]
    assert plan["total_size"] == sum(f["size"] for f in plan["files"])
    card = plan["card"]
    assert card.startswith("---\n") and "library_name: mrdiff" in card and "- mri" in card and "- diffusion" in card
    assert "license: cc-by-4.0" in card
    for text in ("Intended resolution**: 128 x 128", "fastMRI brain", "![val](figures/val.png)", "Brain T2 only.",
                 "Not a medical device", "me/tiny@v2"):
        assert text in card, text
    assert not (folder / "README.md").exists()  # the folder is never modified


def test_push_keeps_existing_card_and_merges_metadata(tmp_path):
    folder = make_bundle(tmp_path / "b", extra_files={"README.md": b"---\ntags: [brain]\n---\n# My own card\n"})
    plan = hub.push_model(folder, "me/tiny", dry_run=True)
    assert not plan["card_generated"] and "# My own card" in plan["card"]
    assert "library_name: mrdiff" in plan["card"] and "- brain" in plan["card"] and "- mri" in plan["card"]


def test_push_refuses_bad_bundles(tmp_path):
    folder = make_bundle(tmp_path / "b", weights=False, extra_files={"pytorch_model.bin": b"\x80"})
    with raises_one_line("never loads pickled weights"):
        hub.push_model(folder, "me/tiny", dry_run=True)
    with raises_one_line("invalid Hub repo id"):
        hub.push_model(make_bundle(tmp_path / "ok"), "not a repo", dry_run=True)


def test_push_uploads_bundle_files_only(tmp_path, monkeypatch):
    import huggingface_hub

    calls: list[tuple[str, dict]] = []

    class FakeApi:
        def __init__(self, **kwargs):
            calls.append(("init", kwargs))

        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", dict(repo_id=repo_id, **kwargs)))
            return f"https://hub.example/{repo_id}"

        def create_branch(self, repo_id, **kwargs):
            calls.append(("create_branch", dict(repo_id=repo_id, **kwargs)))

        def create_commit(self, **kwargs):
            ops = {op.path_in_repo: op.path_or_fileobj for op in kwargs["operations"]}
            kwargs["uploaded"] = {k: v if isinstance(v, bytes) else Path(v).read_bytes() for k, v in ops.items()}
            calls.append(("create_commit", kwargs))

            class Info:
                oid = "d" * 40
                commit_url = "https://hub.example/me/tiny/commit/" + "d" * 40

            return Info()

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(hub.env, "hub_reachable", lambda *a, **k: True)
    go_online(monkeypatch)
    folder = make_bundle(tmp_path / "b", extra_files={"secret.txt": b"no", "old.ckpt": b"\x80"})
    result = hub.push_model(folder, "me/tiny", revision="dev", token="hf_test")
    kinds = [c[0] for c in calls]
    assert kinds == ["init", "create_repo", "create_branch", "create_commit"]
    assert calls[0][1]["token"] == "hf_test"
    assert calls[1][1]["exist_ok"] is True and calls[1][1]["private"] is None
    up = calls[3][1]
    assert up["repo_id"] == "me/tiny" and up["revision"] == "dev" and up["repo_type"] == "model"
    assert sorted(up["uploaded"]) == ["README.md", "config.json", "model.safetensors"]  # one commit, nothing else
    for name in ("config.json", "model.safetensors"):
        assert up["uploaded"][name] == (folder / name).read_bytes()
    assert "library_name: mrdiff" in up["uploaded"]["README.md"].decode()
    assert up["commit_message"] == "Upload mrdiff bundle (score)"
    assert result["commit"] == "d" * 40 and result["commit_url"].endswith("d" * 40) and not result["dry_run"]


def test_push_offline_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with raises_one_line("offline"):
        hub.push_model(make_bundle(tmp_path / "b"), "me/tiny")


def test_module_imports_stay_light():
    import subprocess
    import sys

    code = (
        "import sys, mrdiff_cli.priors.hub, mrdiff_cli.cli.models, mrdiff_cli.cli.options;"
        "print('torch' in sys.modules, 'huggingface_hub' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
