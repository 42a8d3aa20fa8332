"""CLI robustness ("field polish"): every help page, one-line usage errors before any model loads, non-finite
input, one ``-o`` rule, outputs checked for writability up front, selected-slice validation, empty shards, tables
in logs, --keep-going batches and the --json error object. Tiny data (32x32, 2 slices), zero-filled / SENSE or a
tiny untrained model with 2 steps: plumbing only."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from mrdiff_cli.cli.main import app
from mrdiff_cli.io.nifti import read_nifti, write_nifti
from mrdiff_cli.types import Geometry

runner = CliRunner()
ZF = ["--method", "zero-filled", "--mask", "equispaced", "--accel", "4"]


@pytest.fixture(autouse=True)
def _env(cli_env):
    """Offline, no SLURM / progress settings from the caller (conftest.cli_env)."""


def cli(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env=env)


def ok(res):
    assert res.exit_code == 0, f"exit {res.exit_code}\nstdout: {res.stdout}\nstderr: {res.stderr}"
    return res


def one_line_error(res, *needles, code: int = 2) -> str:
    assert res.exit_code == code, f"exit {res.exit_code}\nstdout: {res.stdout}\nstderr: {res.stderr}"
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mrdiff: "), res.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    assert "Traceback" not in res.output
    return lines[0]


@pytest.fixture
def no_model_load(monkeypatch):
    """Any model load fails the test: errors must come before it."""
    def boom(*a, **k):
        raise AssertionError("a model was loaded before the error")

    monkeypatch.setattr("mrdiff_cli.tasks.recon_job.load_model", boom)
    monkeypatch.setattr("mrdiff_cli.tasks.superres.load_superres_model", boom)


@pytest.fixture(scope="module")
def scans(tmp_path_factory, tiny_fastmri_file) -> dict[str, Path]:
    """The tiny 2-slice fastMRI file, a copy whose slice 1 is all zeros, one with a NaN in slice 0."""
    root = tmp_path_factory.mktemp("polish_scans")
    out = {"good": root / "good.h5", "zero1": root / "zero1.h5", "nan": root / "nan.h5"}
    for p in out.values():
        shutil.copy(tiny_fastmri_file, p)
    with h5py.File(out["zero1"], "r+") as f:
        k = f["kspace"][...]
        k[1] = 0
        f["kspace"][...] = k
    with h5py.File(out["nan"], "r+") as f:
        k = f["kspace"][...]
        k[0, 0, 3, 3] = np.nan
        f["kspace"][...] = k
    return out


@pytest.fixture(scope="module")
def nan_nifti(tmp_path_factory, tiny_phantom) -> Path:
    vol = tiny_phantom.copy()
    vol[0, 10, 12] = np.nan
    return write_nifti(tmp_path_factory.mktemp("nan_nifti") / "nan.nii.gz", vol, Geometry(voxel_size=(1.5, 1.5, 3.0)))


@pytest.fixture(scope="module")
def vdm32(tmp_path_factory) -> Path:
    """A tiny untrained VDM bundle at 32x32."""
    import torch

    from mrdiff_cli.priors.bundle import save_bundle
    from mrdiff_cli.priors.unet import UNetConfig
    from mrdiff_cli.priors.vdm import VDM, VDMConfig, vdm_bundle_config

    with torch.random.fork_rng():
        torch.manual_seed(0)
        v = VDM(UNetConfig(base_channels=8, channel_mults=[1, 2], attn_resolutions=[], resolution=32, emb_dim=32),
                VDMConfig())
    return save_bundle(tmp_path_factory.mktemp("vdm") / "vdm32", v, vdm_bundle_config(v))


# ------------------------------------------------------------------------------------------------------ 1 help


def _commands(cmd: typer.core.TyperGroup | object, path: tuple[str, ...] = ()):
    yield path
    for name, sub in sorted(getattr(cmd, "commands", {}).items()):
        yield from _commands(sub, (*path, name))


ALL_COMMANDS = list(_commands(typer.main.get_command(app)))


def test_the_walk_finds_every_command():
    names = {" ".join(p) for p in ALL_COMMANDS}
    assert {"", "reconstruct", "superres", "uncertainty", "info", "simulate", "train score", "train vdm",
            "models list", "models download", "models info", "models push"} <= names


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(p) or "mrdiff")
def test_every_help_page_renders(path):
    res = cli(*path, "--help", env={"COLUMNS": "100"})
    assert res.exit_code == 0, res.output
    assert "Usage:" in res.stdout and "Traceback" not in res.output
    usage = next(ln for ln in res.stdout.splitlines() if "Usage:" in ln)
    assert "{" not in usage and "<list[" not in res.stdout and "--guidance,--lambda" not in res.stdout, usage


def test_usage_lines_read_well():
    usage = {p: next(ln for ln in cli(*p, "--help").stdout.splitlines() if "Usage:" in ln).strip()
             for p in (("reconstruct",), ("superres",), ("info",), ("models", "push"))}
    assert usage[("reconstruct",)].endswith("[OPTIONS] FILE...")
    assert usage[("superres",)].endswith("[OPTIONS] IMAGE")
    assert usage[("info",)].endswith("[OPTIONS] FILE")
    assert usage[("models", "push")].endswith("[OPTIONS] FOLDER REPO_ID")


def test_bare_mrdiff_and_bare_group_print_help_once():
    for args in ([], ["models"], ["train"]):
        res = cli(*args)
        assert res.exit_code == 0, res.output
        assert res.stdout.count("Usage:") == 1, res.stdout
        assert res.stderr == ""


def test_help_texts_explain_the_jargon():
    text = " ".join(cli("reconstruct", "--help", env={"COLUMNS": "300"}).stdout.split())
    for phrase in ("network evaluations (NFE)", "sum of squares", "ACS: size of the fully sampled centre",
                   "Kaczmarz: one projection", "ζ (zeta"):
        assert phrase in text, phrase
    sr = " ".join(cli("superres", "--help", env={"COLUMNS": "300"}).stdout.split())
    assert "network evaluations, NFE" in sr and "--lambda is the same option" in sr


# ------------------------------------------------------------------------------------------------------ 2 numbers


@pytest.mark.parametrize("args,needle", [
    (["--steps", "0"], "--steps"), (["--steps", "-3"], "--steps"), (["--sigma-max", "-1"], "--sigma-max"),
    (["--sigma-max", "nan"], "--sigma-max"), (["--device", "tpu"], "--device"), (["--cg-iters", "-1"], "--cg-iters"),
    (["--samples", "0"], "--samples"), (["--accel", "1"], "--accel"), (["--accel", "0.5"], "--accel"),
    (["--snr", "0"], "--snr"), (["--sense-every", "0"], "--sense-every"), (["--seed", "-1"], "--seed"),
    (["--acs", "-2"], "--acs"), (["--zeta", "2"], "--zeta"), (["--coils", "1"], "--coils"),
    (["--threads", "0"], "--threads"), (["--batch-size", "0"], "--batch-size"), (["--precision", "fp8"], "--precision"),
])
def test_reconstruct_out_of_range_is_one_line_before_any_model_loads(scans, tmp_path, no_model_load, args, needle):
    out = tmp_path / "r.nii.gz"
    base = ["--mask", "equispaced", "--accel", "4"] if "--accel" not in args else ["--mask", "equispaced"]
    one_line_error(cli("reconstruct", scans["good"], "-o", out, *base, *args), needle)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("args,needle", [
    (["--device", "tpu"], "--device"), (["--steps", "0"], "--steps"), (["--samples", "0"], "--samples"),
    (["--batch-size", "0"], "--batch-size"), (["--guidance", "2"], "--guidance"), (["--lambda", "-1"], "--guidance"),
    (["--seed", "-1"], "--seed"),
])
def test_superres_out_of_range_is_one_line_before_any_model_loads(tiny_nifti_file, tmp_path, no_model_load, args,
                                                                   needle):
    one_line_error(cli("superres", tiny_nifti_file, "--from", 16, "--to", 32, "-o", tmp_path / "s.nii.gz", *args),
                   needle)
    assert not list(tmp_path.iterdir())


def test_uncertainty_checks_numbers_too(scans, tmp_path, no_model_load):
    one_line_error(cli("uncertainty", scans["good"], "-o", tmp_path / "u.nii.gz", "--mask", "equispaced", "--accel",
                       "4", "--device", "tpu"), "--device")
    one_line_error(cli("uncertainty", scans["good"], "-o", tmp_path / "u.nii.gz", "--mask", "equispaced", "--accel",
                       "4", "--batch-size", "0"), "--batch-size")


# ------------------------------------------------------------------------------------------------------ 3 non-finite


def test_superres_nan_voxel_is_filled_with_zero_and_warned(nan_nifti, vdm32, tmp_path):
    out = tmp_path / "sr.nii.gz"
    res = ok(cli("superres", nan_nifti, "--from", 16, "--to", 32, "-o", out, "--model", vdm32, "--steps", 2,
                 "--device", "cpu", "--batch-size", 2))
    vol, _ = read_nifti(out)
    assert vol.shape == (2, 32, 32) and np.isfinite(vol).all()
    warn = [ln for ln in res.stderr.splitlines() if "NaN/Inf" in ln]
    assert len(warn) == 1 and warn[0].startswith("warning:") and "1 NaN/Inf voxel(s) set to 0" in warn[0], res.stderr
    m = json.loads((tmp_path / "sr_metrics.json").read_text())
    assert "set to 0" in m["input_kind"]


def test_a_non_finite_result_is_never_written_with_exit_0(tmp_path):
    from mrdiff_cli.errors import OutputError
    from mrdiff_cli.io.outputs import Outputs

    o = Outputs(tmp_path / "x.nii.gz")
    with pytest.raises(OutputError, match="NaN/Inf"):
        o.volume("image", np.full((1, 4, 4), np.nan, np.float32), Geometry(), "x")
    assert not list(tmp_path.iterdir())


def test_reconstruct_refuses_nan_kspace_and_info_reports_it(scans, nan_nifti, tmp_path):
    one_line_error(cli("reconstruct", scans["nan"], "-o", tmp_path / "r.nii.gz", *ZF), "nan.h5", "NaN or Inf")
    d = json.loads(ok(cli("info", scans["nan"], "--json")).stdout)
    assert d["values_finite"] is False and d["non_finite_values"] == 1 and d["non_finite_slices"] == [0]
    d = json.loads(ok(cli("info", nan_nifti, "--json")).stdout)
    assert d["non_finite_values"] == 1 and d["non_finite_slices"] == [0] and d["value_range"][1] > 0
    table = ok(cli("info", nan_nifti)).stdout
    assert re.search(r"Non-finite values\s+1 NaN/Inf \(slice\(s\) 0\)", table), table
    assert json.loads(ok(cli("info", scans["good"], "--json")).stdout)["non_finite_values"] == 0


# ------------------------------------------------------------------------------------------------------ 4 -o rule


@pytest.mark.parametrize("trailing", ["", "/"])
@pytest.mark.parametrize("exists", [False, True])
def test_a_folder_path_is_a_dicom_series_whether_or_not_it_exists(scans, tmp_path, exists, trailing):
    folder = tmp_path / "series"
    if exists:
        folder.mkdir()
    ok(cli("reconstruct", scans["good"], "-o", f"{folder}{trailing}", *ZF, "-q"))
    assert sorted(p.name for p in folder.iterdir()) == ["IMG0001.dcm", "IMG0002.dcm", "mask.png", "metrics.json"]


@pytest.mark.parametrize("exists", [False, True])
def test_a_folder_path_with_format_nifti_gets_the_image_inside(scans, tmp_path, exists):
    folder = tmp_path / "out"
    if exists:
        folder.mkdir()
    ok(cli("reconstruct", scans["good"], "-o", folder, "--format", "nifti", *ZF, "-q"))
    assert read_nifti(folder / "good.nii.gz")[0].shape == (2, 32, 32)


@pytest.mark.parametrize("exists", [False, True])
def test_several_inputs_go_inside_the_folder(scans, tmp_path, exists):
    folder = tmp_path / "batch"
    if exists:
        folder.mkdir()
    other = tmp_path / "other.h5"
    shutil.copy(scans["good"], other)
    ok(cli("reconstruct", scans["good"], other, "-o", folder, *ZF, "-q"))
    assert (folder / "good.nii.gz").is_file() and (folder / "other.nii.gz").is_file()


def test_a_folder_that_is_not_a_series_is_never_replaced(scans, tmp_path):
    folder = tmp_path / "mydata"
    folder.mkdir()
    (folder / "notes.txt").write_text("precious")
    for extra in ([], ["--overwrite"]):
        one_line_error(cli("reconstruct", scans["good"], "-o", folder, *ZF, *extra), "notes.txt", "not a DICOM series")
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("exists", [False, True])
def test_an_unknown_suffix_is_refused_whether_or_not_it_exists(scans, tmp_path, exists):
    out = tmp_path / "out.v2"
    if exists:
        out.mkdir()
    one_line_error(cli("reconstruct", scans["good"], "-o", out, *ZF), "cannot tell the output format")


def test_two_inputs_with_one_name_are_refused_up_front(scans, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    shutil.copy(scans["good"], tmp_path / "a" / "scan.h5")
    shutil.copy(scans["good"], tmp_path / "b" / "scan.h5")
    one_line_error(cli("reconstruct", tmp_path / "a" / "scan.h5", tmp_path / "b" / "scan.h5", "-o", tmp_path / "o",
                       *ZF), "would both write")
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------------------------------ 5 writable


@pytest.mark.parametrize("where", ["proc", "under_a_file"])
def test_unwritable_outputs_fail_before_any_model_loads(scans, tiny_nifti_file, tmp_path, no_model_load, where):
    if where == "proc":
        out = Path("/proc/mrdiff_polish_test/x.nii.gz")
    else:
        (tmp_path / "afile").write_text("x")
        out = tmp_path / "afile" / "x.nii.gz"
    # the diffusion path (the model load is what would come next) and superres
    one_line_error(cli("reconstruct", scans["good"], "-o", out, "--mask", "equispaced", "--accel", "4", "--steps", 2),
                   "cannot write" if where == "proc" else "not a directory")
    one_line_error(cli("superres", tiny_nifti_file, "--from", 16, "--to", 32, "-o", out, "--steps", 2),
                   "cannot write" if where == "proc" else "not a directory")


# ------------------------------------------------------------------------------------------------------ 6/7 slices


def test_only_the_selected_slices_are_validated(scans, tmp_path):
    out = tmp_path / "s0.nii.gz"
    ok(cli("reconstruct", scans["zero1"], "-o", out, *ZF, "--slices", 0, "-q"))
    assert read_nifti(out)[0].shape == (1, 32, 32)
    one_line_error(cli("reconstruct", scans["zero1"], "-o", tmp_path / "s1.nii.gz", *ZF, "--slices", 1),
                   "slice 1 is all zeros")


def test_a_shard_without_slices_says_so_in_one_line(scans, tmp_path):
    out = tmp_path / "sh.nii.gz"
    res = ok(cli("reconstruct", scans["good"], "-o", out, *ZF, "--shard", "3/4"))
    assert "None" not in res.output
    lines = [ln for ln in res.stderr.splitlines() if "shard" in ln]
    assert lines == ["good.h5: shard 3/4 has no slices (2 slice(s) split 4 ways); nothing written"], res.stderr
    assert not list(tmp_path.iterdir())
    r = json.loads(ok(cli("reconstruct", scans["good"], "-o", out, *ZF, "--shard", "3/4", "--json")).stdout)
    assert r["results"][0]["slices"] == [] and "no slices" in r["results"][0]["note"]


# ------------------------------------------------------------------------------------------------------ 8 tables


def test_log_tables_never_wrap_and_label_zero_filled(scans, tmp_path):
    long_input = tmp_path / ("a_scan_with_a_rather_long_file_name_" * 2 + ".h5")
    shutil.copy(scans["good"], long_input)
    res = ok(cli("reconstruct", long_input, "-o", tmp_path / "r.nii.gz", *ZF, env={"COLUMNS": "40"}))
    rows = [ln for ln in res.stderr.splitlines() if ln.startswith(long_input.name)]
    assert len(rows) == 2, res.stderr  # the table row and the reference line, each whole on one line
    assert rows[0].split()[1] == "zero-filled" and "zero-filled/" not in res.stderr
    assert not any(set(ln) & set("│┃┏┡└") for ln in res.stderr.splitlines())
    sense = ok(cli("reconstruct", scans["good"], "-o", tmp_path / "s.nii.gz", "--method", "sense", "--mask",
                   "equispaced", "--accel", "4"))
    assert next(ln for ln in sense.stderr.splitlines() if ln.startswith("good.h5")).split()[1] == "sense"


def test_models_list_never_wraps_the_name(tmp_path):
    env = {"HF_HOME": str(tmp_path), "HF_HUB_CACHE": str(tmp_path / "hub")}
    plain = ok(cli("models", "list", env={**env, "COLUMNS": "50"})).stdout
    assert re.search(r"^bundled:score-brain-128\s", plain, re.M), plain
    term = ok(cli("models", "list", env={**env, "COLUMNS": "70", "TTY_COMPATIBLE": "1", "NO_COLOR": "1"})).stdout
    term = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", term)
    assert "bundled:score-brain-128" in term, term


# ------------------------------------------------------------------------------------------------------ 9 misc


def test_uncertainty_superres_refuses_reconstruction_options(tiny_nifti_file, tmp_path, no_model_load):
    one_line_error(cli("uncertainty", tiny_nifti_file, "--task", "superres", "--from", 16, "--to", 32, "-o",
                       tmp_path / "u.nii.gz", "--mask", "poisson"), "--mask", "not used by --task superres")
    one_line_error(cli("uncertainty", tiny_nifti_file, "--task", "superres", "--from", 16, "--to", 32, "-o",
                       tmp_path / "u.nii.gz", "--accel", "4", "--coil-mode", "ssos"), "--accel, --coil-mode")


def test_simulate_refuses_a_non_h5_name(tiny_nifti_file, tmp_path):
    out = tmp_path / "s.nii.gz"
    one_line_error(cli("simulate", "example", "-o", out), "s.nii.gz", ".h5")
    assert not out.exists()


def test_dicom_series_numbers_and_one_study(scans, model_dir, tmp_path):
    import pydicom

    out = tmp_path / "u"
    ok(cli("reconstruct", scans["good"], "-o", out, "--model", model_dir, "--mask", "equispaced", "--accel", "4",
           "--steps", 2, "-K", 2, "--save-zero-filled", "-q", "--device", "cpu"))
    numbers, studies = {}, set()
    for suffix, number in (("", 1), ("_variance", 2), ("_std", 3), ("_lower95", 4), ("_upper95", 5),
                           ("_zero_filled", 6)):
        ds = pydicom.dcmread(next((tmp_path / f"u{suffix}").glob("*.dcm")))
        numbers[suffix] = int(ds.SeriesNumber)
        studies.add(ds.StudyInstanceUID)
        assert numbers[suffix] == number, (suffix, numbers)
    assert len(studies) == 1
    from mrdiff_cli.io.outputs import SERIES_NUMBERS

    docs = (Path(__file__).resolve().parent.parent / "docs" / "formats.md").read_text()
    for key, n in SERIES_NUMBERS.items():  # the docs table lists the same numbers
        assert re.search(rf"\| `{key}` \| {n} \|", docs), key


# ------------------------------------------------------------------------------------------------------ 10 batches


def test_keep_going_names_each_failure_writes_the_rest_and_exits_2(scans, tmp_path):
    good2 = tmp_path / "good2.h5"
    shutil.copy(scans["good"], good2)
    inputs = [scans["good"], scans["nan"], tmp_path / "missing.h5", good2]
    out = tmp_path / "out"
    res = cli("reconstruct", *inputs, "-o", out, *ZF, "--keep-going", "-q")
    assert res.exit_code == 2, res.output
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("mrdiff: error:")]
    assert len(errors) == 3, res.stderr  # nan.h5, missing.h5, and the final count
    assert "nan.h5" in errors[0] and "NaN or Inf" in errors[0] and "missing.h5" in errors[1]
    assert "2 of 4 input(s) failed" in errors[2]
    assert (out / "good.nii.gz").is_file() and (out / "good2.nii.gz").is_file() and not (out / "nan.nii.gz").exists()
    # --json: the summary, with its error field, is the only thing on stdout
    res = cli("reconstruct", *inputs, "-o", tmp_path / "out2", *ZF, "--keep-going", "--json")
    assert res.exit_code == 2
    s = json.loads(res.stdout)
    assert s["error"] == "2 of 4 input(s) failed" and [Path(f["input"]).name for f in s["failed"]] == [
        "nan.h5", "missing.h5"]
    assert [bool(r.get("error")) for r in s["results"]] == [False, True, True, False]


def test_uncertainty_keeps_going_too(scans, model_dir, tmp_path):
    out = tmp_path / "u"
    res = cli("uncertainty", tmp_path / "missing.h5", scans["good"], "-o", out, "--model", model_dir, "--mask",
              "equispaced", "--accel", "4", "--steps", 2, "-K", 2, "--keep-going", "--device", "cpu", "-q")
    assert res.exit_code == 2, res.output
    assert [ln for ln in res.stderr.splitlines() if "missing.h5" in ln][0].startswith("mrdiff: error:")
    assert (out / "good.nii.gz").is_file() and (out / "good_std.nii.gz").is_file()


def test_without_keep_going_the_first_failure_stops(scans, tmp_path):
    out = tmp_path / "out"
    one_line_error(cli("reconstruct", scans["good"], tmp_path / "missing.h5", "-o", out, *ZF), "missing.h5")
    assert not out.exists()  # checked up front: nothing computed
    res = cli("reconstruct", scans["nan"], scans["good"], "-o", out, *ZF)
    one_line_error(res, "NaN or Inf")
    assert not (out / "good.nii.gz").exists()


@pytest.mark.parametrize("args", [
    ["reconstruct", "{missing}", "-o", "{tmp}/r.nii.gz", *ZF],
    ["reconstruct", "{good}", "-o", "{tmp}/r.nii.gz", *ZF, "--steps", "0"],
    ["reconstruct", "{good}", "-o", "{tmp}/r.nii.gz", "--no-such-option"],
    ["uncertainty", "{missing}", "-o", "{tmp}/r.nii.gz", "--mask", "equispaced", "--accel", "4"],
    ["superres", "{missing}", "--from", "16", "--to", "32", "-o", "{tmp}/r.nii.gz"],
    ["info", "{missing}"],
    ["simulate", "example", "-o", "{tmp}/s.nii.gz"],
    ["models", "info", "org/absent"],
    ["models", "download", "org/absent"],
    ["train", "score", "{missing}", "-o", "{tmp}/run", "--steps", "0"],
])
def test_json_prints_an_error_object_on_failure(scans, tmp_path, args):
    fill = {"missing": str(tmp_path / "missing.h5"), "tmp": str(tmp_path), "good": str(scans["good"])}
    res = cli(*[a.format(**fill) for a in args], "--json", env={"HF_HOME": str(tmp_path)})
    assert res.exit_code == 2, res.output
    obj = json.loads(res.stdout)
    assert obj["exit_code"] == 2 and obj["error"] and obj["error"] in res.stderr


def test_unexpected_errors_are_one_line_unless_debugging(tiny_nifti_file, monkeypatch):
    def bug(*a, **k):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr("mrdiff_cli.io.detect.describe_input", bug)
    one_line_error(cli("info", tiny_nifti_file), "internal error", "simulated bug", "MRDIFF_DEBUG", code=1)
    res = cli("info", tiny_nifti_file, env={"MRDIFF_DEBUG": "1"})
    assert isinstance(res.exception, RuntimeError)


@pytest.mark.parametrize("exc", [ValueError("simulated bad shape"), OSError("simulated io failure")])
def test_bare_value_and_os_errors_are_bugs_not_user_errors(tiny_nifti_file, monkeypatch, exc):
    """Only the project's own errors (mrdiff_cli.errors) mean "your input is wrong" (exit 2); a bare ValueError or
    OSError escaping a command is a bug: exit 1, one line, the traceback with MRDIFF_DEBUG=1."""
    def bug(*a, **k):
        raise exc

    monkeypatch.setattr("mrdiff_cli.io.detect.describe_input", bug)
    one_line_error(cli("info", tiny_nifti_file), "internal error", str(exc), "MRDIFF_DEBUG", code=1)
    res = cli("info", tiny_nifti_file, env={"MRDIFF_DEBUG": "1"})
    assert isinstance(res.exception, type(exc))
