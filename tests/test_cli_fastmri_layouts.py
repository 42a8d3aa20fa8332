"""fastMRI's own layouts through the real CLI (`info`, `reconstruct`), plus the rough edges a new user hits:
accelerations the matrix cannot support, missing output folders, one-line usage errors, flags without a metavar,
--slices forms, tables that fit the terminal, progress lines for pipelines, metrics that name their reference."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from fastmri_layouts import LAYOUTS, write_layout
from typer.testing import CliRunner

from mrdiff_cli.cli.main import app
from mrdiff_cli.io.nifti import read_nifti

runner = CliRunner()


@pytest.fixture(autouse=True)
def _env(cli_env, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # wide tables: assertions see whole cells (offline etc.: conftest.cli_env)


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_layouts")
    out = {}
    for name in LAYOUTS:
        write_layout(root / f"{name}.h5", name, slices=2, noise=0.01)
        out[name] = root / f"{name}.h5"
    out["brain_test_lenient"] = root / "lenient.h5"
    write_layout(out["brain_test_lenient"], "brain_test", valid_header=False)
    return out


def cli(*args):
    return runner.invoke(app, [str(a) for a in args])


def ok(res):
    assert res.exit_code == 0, f"exit {res.exit_code}\nstdout: {res.stdout}\nstderr: {res.stderr}"
    return res


def one_line_error(res, *needles):
    assert res.exit_code == 2, res.output
    assert res.stderr.endswith("\n") and not res.stderr.startswith("\n"), repr(res.stderr)
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mrdiff: error: "), res.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    assert "Traceback" not in res.output and "╭" not in res.output


# ------------------------------------------------------------------------------------------------------ layouts


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_info_shows_the_layout(layouts, name):
    d = json.loads(ok(cli("info", layouts[name], "--json")).stdout)
    h, w, recon, single, ref, undersampled = LAYOUTS[name]
    assert d["stored_shape"][2:] == [h, w] and d["matrix"] == [320, w] and d["image_matrix"] == list(recon)
    assert d["readout_oversampling"] == 2 and d["header"]["parsed_by"] == "schema"
    assert d["sampling"]["undersampled"] is undersampled
    assert (d["reference"] or {}).get("name") == ref
    table = ok(cli("info", layouts[name])).stdout
    assert "Output image matrix" in table and "320 x 320" in table and "removed on reading" in table


def test_info_of_a_test_file_states_its_sampling(layouts):
    d = json.loads(ok(cli("info", layouts["brain_test"], "--json")).stdout)
    s = d["sampling"]
    assert s["mask_source"] == "mask dataset" and s["stated_acceleration"] == 4 and s["stated_acs"] == 24
    assert s["acs_lines"] in (24, 25) and d["reference"] is None  # 24 + a neighbouring every-4th line
    lenient = ok(cli("info", layouts["brain_test_lenient"]))
    assert "read leniently" in lenient.stdout and "rejected the header" in lenient.stdout


@pytest.mark.parametrize("name", ["brain_train", "knee_multicoil", "knee_singlecoil"])
def test_reference_files_reconstruct_to_the_recon_matrix(layouts, tmp_path, name):
    out = tmp_path / "r.nii.gz"
    ok(cli("reconstruct", layouts[name], "-o", out, "--method", "zero-filled", "--mask", "equispaced", "--accel", "4",
           "-q"))
    vol, geom = read_nifti(out)
    assert vol.shape == (2, 320, 320)
    assert geom.voxel_size == pytest.approx((0.6875, 0.6875, 5.0))
    m = json.loads((tmp_path / "r_metrics.json").read_text())
    assert m["matrix"] == {"kspace": [320, LAYOUTS[name][1]], "image": [320, 320], "readout_oversampling_removed": 2}
    assert m["reference"]["noisy"] is True and "noisy" in m["reference"]["description"]
    assert m["reference"]["source"] == f"file dataset '{LAYOUTS[name][4]}'"


@pytest.mark.parametrize("which", ["brain_test", "brain_test_lenient"])
def test_test_file_reconstructs_with_its_own_mask(layouts, tmp_path, which):
    outs = {}
    for method in ("zero-filled", "sense"):
        outs[method] = tmp_path / f"{method}.nii.gz"
        res = ok(cli("reconstruct", layouts[which], "-o", outs[method], "--method", method, "--json"))
        r = json.loads(res.stdout)["results"][0]
        assert r["mask"]["kind"] == "from-file" and r["mask"]["stated_acceleration"] == 4
        assert r["reference"]["source"] is None and "metrics" not in r  # no reference in a test file
        assert read_nifti(outs[method])[0].shape == (1 if which.endswith("lenient") else 2, 320, 320)
    if which == "brain_test_lenient":
        warn = [ln for ln in res.stderr.splitlines() if ln.startswith("warning:")]
        assert len(warn) == 1 and "rejected the header" in warn[0]  # one line, not a wrapped paragraph
    truth = write_layout(tmp_path / "again.h5", "brain_test", slices=1)["image"][0]
    err = {m: float(np.linalg.norm(read_nifti(p)[0][0] - truth)) for m, p in outs.items()}
    assert err["sense"] < 0.7 * err["zero-filled"], err  # the file's own mask, the right grid: SENSE helps


def test_default_model_end_to_end_on_a_small_test_layout_file(tmp_path):
    """A fastMRI-test-style file (oversampled 256x128 readout, mask (128,), 4 coils) with the bundled prior."""
    import h5py
    from fastmri_layouts import fastmri_header, fft2c_np, object_image

    from mrdiff_cli.tasks.simulate import coil_maps

    x = object_image((256, 128), (128, 128), 1) * 1e-4
    k = fft2c_np(x[:, None] * coil_maps(4, (256, 128))[None])
    m = np.zeros(128, bool)
    m[::4] = True
    m[52:76] = True
    path = tmp_path / "test_layout.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("kspace", data=(k * m).astype(np.complex64))
        f.create_dataset("mask", data=m)
        f.create_dataset("ismrmrd_header", data=np.bytes_(fastmri_header((256, 128), (128, 128)).encode()))
        f.attrs["acceleration"], f.attrs["num_low_frequency"] = 4, 24
    out = tmp_path / "dm" / "recon.nii.gz"
    ok(cli("reconstruct", path, "-o", out, "-q", "--device", "cpu"))
    vol = read_nifti(out)[0]
    truth = np.abs(x[0, 64:192])
    assert vol.shape == (1, 128, 128) and np.isfinite(vol).all()
    nrmse = float(np.linalg.norm(vol[0] - truth) / np.linalg.norm(truth))
    assert nrmse < 0.2, nrmse


# ------------------------------------------------------------------------------------------------------ bad input


def test_accelerations_the_matrix_cannot_support_are_refused(tiny_fastmri_file, tmp_path):
    out = tmp_path / "x.nii.gz"
    for kind in ("poisson", "equispaced"):
        res = cli("reconstruct", tiny_fastmri_file, "-o", out, "--method", "zero-filled", "--mask", kind,
                  "--accel", "1000")
        one_line_error(res, "1000", "32x32")
    one_line_error(cli("reconstruct", tiny_fastmri_file, "-o", out, "--method", "zero-filled", "--mask",
                       "equispaced", "--accel", "4", "--acs", "20"), "acs=20")
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_acs_that_no_longer_fits_on_top_of_the_files_mask(tiny_fastmri_undersampled_file, tmp_path):
    res = cli("reconstruct", tiny_fastmri_undersampled_file, "-o", tmp_path / "x.nii.gz", "--method", "zero-filled",
              "--mask", "uniform1d", "--accel", "2", "--acs", "8")
    one_line_error(res, "fully sampled centre")


def test_usage_errors_are_one_line(tiny_fastmri_file, tmp_path):
    base = ["reconstruct", tiny_fastmri_file, "-o", tmp_path / "x.nii.gz"]
    one_line_error(cli(*base, "--mask", "nonsense"), "--mask", "nonsense", "mrdiff reconstruct --help")
    one_line_error(cli(*base, "--no-such-option"), "No such option")
    one_line_error(cli("reconstruct", "-o", tmp_path / "x.nii.gz"), "Missing argument")
    one_line_error(cli(*base, "--steps", "many"), "--steps")
    one_line_error(cli(*base, "--method", "zero-filled", "--mask", "equispaced", "--accel", "4", "--slices", "x"),
                   "--slices")


def test_flags_have_no_bool_metavar():
    res = runner.invoke(app, ["reconstruct", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "--overwrite" in res.stdout and "--quiet" in res.stdout
    assert "<bool>" not in res.stdout and "<int>" in res.stdout
    assert "<bool>" not in runner.invoke(app, ["--help"]).stdout


def test_missing_output_folders_are_created(tiny_fastmri_file, tmp_path):
    out = tmp_path / "unc" / "deeper" / "mean.nii.gz"
    ok(cli("reconstruct", tiny_fastmri_file, "-o", out, "--method", "zero-filled", "--mask", "equispaced",
           "--accel", "4", "-q"))
    assert out.exists() and (out.parent / "mean_metrics.json").exists()
    bad = tmp_path / "blocker"
    bad.write_text("x")
    one_line_error(cli("reconstruct", tiny_fastmri_file, "-o", bad / "sub" / "m.nii.gz", "--method", "zero-filled",
                       "--mask", "equispaced", "--accel", "4"), "not a directory")


@pytest.mark.parametrize("spec,expect", [("1", [1]), ("0", [0]), ("1:3", [1, 2]), ("0,2,3", [0, 2, 3]),
                                         ("-1", [3]), ("::2", [0, 2])])
def test_slices_forms(tmp_path, spec, expect):
    from mrdiff_cli.tasks.simulate import analytic_phantom, simulate_volume, write_simulated

    src = tmp_path / "four.h5"
    p = analytic_phantom(16)
    write_simulated(simulate_volume(np.stack([p * (1 + i) for i in range(4)]), matrix=None, coils=2, snr_db=None,
                                    seed=0), src, "fastmri")
    out = tmp_path / "s.nii.gz"
    ok(cli("reconstruct", src, "-o", out, "--method", "zero-filled", "--mask", "equispaced", "--accel", "2",
           "--slices", spec, "-q"))
    assert json.loads((tmp_path / "s_metrics.json").read_text())["slices"] == expect
    assert read_nifti(out)[0].shape[0] == len(expect)


def test_slices_out_of_range_is_one_line(tiny_fastmri_file, tmp_path):
    one_line_error(cli("reconstruct", tiny_fastmri_file, "-o", tmp_path / "x.nii.gz", "--method", "zero-filled",
                       "--mask", "equispaced", "--accel", "4", "--slices", "0,7"), "--slices", "outside")


# ------------------------------------------------------------------------------------------------------ output


def test_table_fits_a_narrow_terminal_and_names_the_reference(tiny_fastmri_file, tmp_path):
    out = tmp_path / "a_rather_long_output_folder_name" / "reconstruction_with_a_long_name.nii.gz"
    res = runner.invoke(app, ["reconstruct", str(tiny_fastmri_file), "-o", str(out), "--method", "sense", "--mask",
                              "equispaced", "--accel", "4"], env={"COLUMNS": "70", "TTY_COMPATIBLE": "1"})  # a terminal
    ok(res)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", res.stderr)  # colours and the (transient) progress bar's codes
    lines = text.splitlines()
    assert max(len(ln) for ln in lines) <= 70, text
    assert "…" not in text  # folded, not truncated
    assert "reconstruction_with_a_long_name" in "".join(ln.strip("│ ") for ln in lines)
    assert "noise-free RSS" in text.replace("\n", " ")


def test_pipeline_progress_lines_quiet_and_json(tiny_fastmri_file, model_dir, tmp_path):
    args = ["reconstruct", str(tiny_fastmri_file), "--model", str(model_dir), "--mask", "equispaced", "--accel", "4",
            "--steps", "3", "--batch-size", "1"]
    res = runner.invoke(app, [*args, "-o", str(tmp_path / "a.nii.gz"), "--json"], env={"MRDIFF_PROGRESS_INTERVAL": "0"})
    ok(res)
    prog = [ln for ln in res.stderr.splitlines() if ln.startswith("mrdiff: tiny_fastmri.h5")]
    assert any(re.search(r"slice 2/2, step \d+/\d+, elapsed \d:\d\d:\d\d, ETA \d:\d\d:\d\d", ln) for ln in prog), prog
    assert prog[-1].startswith("mrdiff: tiny_fastmri.h5 done")
    assert json.loads(res.stdout)["results"][0]["slices"] == [0, 1]  # stdout is the JSON alone
    slow = runner.invoke(app, [*args, "-o", str(tmp_path / "b.nii.gz")], env={"MRDIFF_PROGRESS_INTERVAL": "999"})
    assert len([ln for ln in ok(slow).stderr.splitlines() if " slice " in ln and "ETA" in ln]) == 1  # rate-limited
    quiet = ok(runner.invoke(app, [*args, "-o", str(tmp_path / "c.nii.gz"), "-q"], env={"MRDIFF_PROGRESS_INTERVAL": "0"}))
    assert quiet.stderr == "" and quiet.stdout == ""


def test_progress_names_the_self_tuning_pilots():
    from mrdiff_cli.cli.progress import PlainProgress

    t = [0.0]
    lines: list[str] = []
    p = PlainProgress(interval=999, clock=lambda: t[0])
    p._write = lines.append  # type: ignore[method-assign]
    p({"type": "tuning", "input": "a.h5", "slices_done": 0, "slices": 2, "pilot": 1})
    t[0] = 30.0
    p({"type": "progress", "input": "a.h5", "slices_done": 0, "slices": 2, "step": 1, "steps": 10, "batch": 1})
    assert "hold-out pilot 1" in lines[0]
    # sampling starts: printed at once, and the ETA counts from there (not from the pilots)
    assert "step 1/10" in lines[1] and "elapsed 0:00:30" in lines[1] and "ETA 0:00:00" in lines[1]
