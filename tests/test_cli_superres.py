"""`mrdiff superres` through the real entry point (Typer CliRunner) with tiny model bundles made in a tmp dir."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mrdiff_cli.cli.main import app
from mrdiff_cli.io.nifti import read_nifti, write_nifti
from mrdiff_cli.ops.fft import fft2c
from mrdiff_cli.ops.operators import resize_image
from mrdiff_cli.priors.bundle import NORMALIZATION, save_bundle
from mrdiff_cli.priors.edm import EDMConfig, EDMPrior
from mrdiff_cli.priors.unet import UNetConfig
from mrdiff_cli.priors.vdm import VDM, VDMConfig, vdm_bundle_config
from mrdiff_cli.ops.superres import measure_lowres
from mrdiff_cli.types import Geometry

runner = CliRunner()


def _unet(res: int) -> UNetConfig:
    return UNetConfig(base_channels=8, channel_mults=[1, 2], attn_resolutions=[], resolution=res, emb_dim=32)


def _perturb(m: torch.nn.Module) -> None:
    with torch.no_grad():
        for p in m.net.out.parameters() if hasattr(m, "net") else m.score.net.out.parameters():
            p.normal_(0, 0.05)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> dict[str, Path]:
    """score bundles at 128 and 32 (tasks score+vdm), a VDM bundle at 32, a score-only bundle."""
    root = tmp_path_factory.mktemp("sr_bundles")
    torch.manual_seed(0)
    out = {}
    for res in (128, 32):
        m = EDMPrior(_unet(res))
        _perturb(m)
        cfg = {"task": "score", "tasks": ["score", "vdm"], "resolution": [res, res], "normalization": NORMALIZATION,
               "architecture": {"type": "edm-unet", "unet": _unet(res).to_dict(), "edm": EDMConfig().to_dict()}}
        out[f"score{res}"] = save_bundle(root / f"score{res}", m, cfg)
    only = dict(cfg, tasks=["score"])
    out["score_only"] = save_bundle(root / "score_only", m, only)
    v = VDM(_unet(32), VDMConfig())
    _perturb(v)
    out["vdm32"] = save_bundle(root / "vdm32", v, vdm_bundle_config(v))
    return out


def _oblique_affine(voxel: float, n: int) -> np.ndarray:
    """A rotated in-plane affine (like a real scanner's) with a slice direction that is not an axis."""
    c, s = np.cos(0.3), np.sin(0.3)
    aff = np.eye(4)
    aff[:3, 0] = voxel * np.array([c, s, 0.0])
    aff[:3, 1] = voxel * np.array([-s, c, 0.0])
    aff[:3, 2] = np.array([0.5, 0.5, 5.0])
    aff[:3, 3] = np.array([-100.0, -80.0, 20.0]) + 0 * n
    return aff


def _head(n_slices: int, hw: int) -> np.ndarray:
    yy, xx = np.meshgrid(np.linspace(-1, 1, hw), np.linspace(-1, 1, hw), indexing="ij")
    head = (((xx / 0.8) ** 2 + (yy / 0.9) ** 2) < 1).astype(np.float32)
    blob = ((((xx - 0.2) / 0.3) ** 2 + ((yy + 0.1) / 0.4) ** 2) < 1).astype(np.float32)
    return np.stack([300.0 * (0.6 * head + 0.4 * blob) * (1 + 0.1 * k) for k in range(n_slices)]).astype(np.float32)


def _corners_and_centre(aff: np.ndarray, h: int, w: int, k: int = 0) -> np.ndarray:
    """World coordinates of the outer in-plane corners of the field of view and of its centre, slice k."""
    pts = [(-0.5, -0.5), (h - 0.5, -0.5), (-0.5, w - 0.5), (h - 0.5, w - 0.5), ((h - 1) / 2, (w - 1) / 2)]
    return np.array([aff[:3, :3] @ np.array([i, j, k]) + aff[:3, 3] for i, j in pts])


def test_64_to_128_acquisition_writes_nifti_with_halved_voxels_and_same_fov(tmp_path, bundles):
    low = resize_image(torch.from_numpy(_head(2, 128)), (64, 64)).real.numpy().astype(np.float32)
    src = write_nifti(tmp_path / "low.nii.gz", low, Geometry(voxel_size=(4.0, 4.0, 5.0), affine=_oblique_affine(4.0, 64), known=True))
    out = tmp_path / "sr.nii.gz"
    r = runner.invoke(app, ["superres", str(src), "--from", "64", "--to", "128", "-o", str(out), "--model",
                            str(bundles["score128"]), "--steps", "2", "--device", "cpu", "--noise", "none", "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["mode"] == "acquisition" and summary["from"] == [64, 64] and summary["to"] == [128, 128]
    assert "metrics" not in summary  # no high-resolution reference for a real low-resolution acquisition
    vol, geom = read_nifti(out)
    _, geom_in = read_nifti(src)
    assert vol.shape == (2, 128, 128) and np.isfinite(vol).all()
    assert np.allclose(geom.voxel_size[:2], (2.0, 2.0)) and geom.voxel_size[2] == pytest.approx(geom_in.voxel_size[2])
    for k in (0, 1):
        assert np.allclose(_corners_and_centre(geom.affine, 128, 128, k), _corners_and_centre(geom_in.affine, 64, 64, k), atol=1e-3)
    assert geom.known
    # exact low-k consistency with the acquisition (lambda = 1)
    y = fft2c(torch.from_numpy(low).to(torch.complex64))
    got = measure_lowres(torch.from_numpy(vol), (64, 64))
    # magnitude output: non-negative, so consistent up to the clipped ringing (exactness: test below)
    assert vol.min() >= 0 and float((got - y).norm() / y.norm()) < 0.2
    metrics = json.loads((tmp_path / "sr_metrics.json").read_text())
    assert metrics["output"]["image"] == str(out) and metrics["model"]["schedule"].startswith("linear gamma")


def test_consistency_auto_follows_the_input(tmp_path, bundles):
    """A magnitude acquisition gets magnitude consistency, a retrospective degradation linear; both can be forced."""
    low = np.abs(resize_image(torch.from_numpy(_head(1, 64)), (32, 32)).real.numpy()).astype(np.float32)
    src = write_nifti(tmp_path / "low.nii.gz", low, Geometry(voxel_size=(4.0, 4.0, 5.0)))
    hi = write_nifti(tmp_path / "hi.nii.gz", _head(1, 64), Geometry(voxel_size=(2.0, 2.0, 5.0)))

    def run(path, frm, *extra):
        r = runner.invoke(app, ["superres", str(path), "--from", frm, "--to", "64", "-o", str(tmp_path / f"o{len(extra)}{frm}.nii.gz"),
                                "--model", str(bundles["score32"]), "--steps", "2", "--json", "--overwrite", *extra])
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout)["consistency"]

    assert run(src, "32") == "magnitude"
    assert run(hi, "32") == "linear"
    assert run(src, "32", "--consistency", "linear") == "linear"
    assert run(hi, "32", "--consistency", "magnitude") == "magnitude"
    r = runner.invoke(app, ["superres", str(src), "--from", "32", "--to", "64", "-o", str(tmp_path / "x.nii.gz"),
                            "--consistency", "phase"])
    assert r.exit_code == 2


def test_retrospective_32_to_128_with_samples_metrics_and_preview(tmp_path, bundles):
    hi = _head(2, 128)
    src = write_nifti(tmp_path / "hi.nii.gz", hi, Geometry(voxel_size=(2.0, 2.0, 5.0)))
    out = tmp_path / "sr.nii.gz"
    r = runner.invoke(app, ["superres", str(src), "--from", "32", "--to", "128", "-o", str(out), "--model",
                            str(bundles["score128"]), "--steps", "2", "--samples", "2", "--save-samples", "--preview",
                            "--slices", "1:2", "--seed", "3", "--quiet"])
    assert r.exit_code == 0, r.output
    for suffix in ("", "_variance", "_std", "_sample000", "_sample001"):
        assert (tmp_path / f"sr{suffix}.nii.gz").exists(), suffix
    assert (tmp_path / "sr_preview.png").exists()
    m = json.loads((tmp_path / "sr_metrics.json").read_text())
    assert m["mode"] == "retrospective" and m["reference"] == "input" and m["slices"] == [1]
    assert set(m["baselines"]) == {"sinc", "bicubic", "bilinear"}
    assert np.isfinite(m["metrics"]["mean"]["psnr"]) and 0 < m["baselines"]["sinc"]["ssim"] <= 1
    vol, geom = read_nifti(out)
    var, _ = read_nifti(tmp_path / "sr_variance.nii.gz")
    assert vol.shape == (1, 128, 128) and (var >= 0).all() and var.max() > 0
    assert np.allclose(geom.voxel_size, (2.0, 2.0, 5.0))
    # slice 1 of the input: the affine's origin moved one slice along k
    _, g_in = read_nifti(src)
    assert np.allclose(geom.affine[:3, 3], g_in.affine[:3, 3] + g_in.affine[:3, 2])
    # same seed → same output
    out2 = tmp_path / "again.nii.gz"
    r = runner.invoke(app, ["superres", str(src), "--from", "32", "--to", "128", "-o", str(out2), "--model",
                            str(bundles["score128"]), "--steps", "2", "--samples", "2", "--slices", "1:2", "--seed", "3", "-q"])
    assert r.exit_code == 0, r.output
    assert np.array_equal(read_nifti(out2)[0], vol)


def test_vdm_bundle_raw_kspace_input_and_dicom_output(tmp_path, bundles, tiny_fastmri_file):
    out = tmp_path / "dcm"
    r = runner.invoke(app, ["superres", str(tiny_fastmri_file), "--from", "16", "--to", "32", "-o", str(out),
                            "--format", "dicom", "--model", str(bundles["vdm32"]), "--steps", "2", "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["input_kind"].startswith("zero-filled root-sum-of-squares") and s["mode"] == "retrospective"
    assert s["model"]["schedule"].startswith("learned gamma")
    assert out.is_dir() and sorted(p.name for p in out.iterdir()) == ["IMG0001.dcm", "IMG0002.dcm", "metrics.json"]
    assert s["output"]["metrics"] == str(out / "metrics.json")  # a DICOM series keeps its sidecars inside
    assert np.isfinite(s["metrics"]["mean"]["psnr"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--from", "32", "--to", "32"], "must be smaller than --to"),
        (["--from", "8", "--to", "32", "--guidance", "2"], "lambda must be in"),
        (["--from", "8x7", "--to", "32", "--model", "score_only"], "needs a 'vdm' model"),
        (["--from", "64", "--to", "32"], "must be smaller"),
    ],
)
def test_usage_errors_are_one_line(tmp_path, bundles, args, message):
    src = write_nifti(tmp_path / "in.nii.gz", _head(1, 32), Geometry(voxel_size=(2.0, 2.0, 5.0)))
    model = bundles["score32"]
    if "--model" in args:
        i = args.index("--model")
        args = args[:i] + args[i + 2 :]
        model = bundles["score_only"]
    r = runner.invoke(app, ["superres", str(src), "-o", str(tmp_path / "o.nii.gz"), "--model", str(model), "--steps", "1", *args])
    assert r.exit_code == 2
    assert message in r.output and len(r.output.strip().splitlines()) == 1


def test_input_smaller_than_from_and_existing_output(tmp_path, bundles):
    src = write_nifti(tmp_path / "in.nii.gz", _head(1, 16), Geometry(voxel_size=(2.0, 2.0, 5.0)))
    base = ["superres", str(src), "--to", "32", "--model", str(bundles["score32"]), "--steps", "1"]
    r = runner.invoke(app, base + ["--from", "24", "-o", str(tmp_path / "a.nii.gz")])
    assert r.exit_code == 2 and "smaller than --from" in r.output
    r = runner.invoke(app, base + ["--from", "16", "-o", str(tmp_path / "a.nii.gz"), "-q"])
    assert r.exit_code == 0 and r.output == "", r.output
    r = runner.invoke(app, base + ["--from", "16", "-o", str(tmp_path / "a.nii.gz")])
    assert r.exit_code == 2 and "exists" in r.output
    # with the progress bar and the summary line
    r = runner.invoke(app, base + ["--from", "16", "-o", str(tmp_path / "a.nii.gz"), "--overwrite"])
    assert r.exit_code == 0, r.output
    assert "acquisition 16x16 → 32x32" in r.output


def test_non_square_from(tmp_path, bundles):
    hi = _head(1, 32)
    src = write_nifti(tmp_path / "in.nii.gz", hi, Geometry(voxel_size=(2.0, 2.0, 5.0)))
    r = runner.invoke(app, ["superres", str(src), "--from", "16x8", "--to", "32", "-o", str(tmp_path / "o.nii.gz"),
                            "--model", str(bundles["score32"]), "--steps", "2", "--noise", "none", "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["factor"] == [2.0, 4.0] and s["from"] == [16, 8]
    vol, _ = read_nifti(tmp_path / "o.nii.gz")
    y = measure_lowres(torch.from_numpy(hi), (16, 8))
    assert vol.min() >= 0 and float((measure_lowres(torch.from_numpy(vol), (16, 8)) - y).norm() / y.norm()) < 0.2


@pytest.mark.parametrize("sampler", ["fast", "vdm"])
@pytest.mark.parametrize("low", [(16, 16), (16, 8), (12, 20)])
def test_superres_slices_exact_low_k_consistency_without_clipping(bundles, sampler, low):
    """noise 'none' (fast) / lambda 1 (vdm) and no clipping: the output's centre k-space block is the data."""
    from mrdiff_cli.priors.loading import load_prior
    from mrdiff_cli.priors.vdm import vdm_from_score
    from mrdiff_cli.tasks.superres import SuperresOptions, superres_slices

    prior, _ = load_prior(str(bundles["score32"]), "score")
    hi = torch.from_numpy(_head(2, 32))
    y = measure_lowres(hi, low)
    opts = SuperresOptions(sampler=sampler, steps=2, noise="none", nonneg=False)
    mean, var, _ = superres_slices(vdm_from_score(prior), y, (32, 32), opts)
    assert mean.shape == (2, 32, 32) and var is None
    assert float((measure_lowres(mean, low) - y).norm() / y.norm()) < 1e-4
    # and the prior added detail beyond the sinc image
    from mrdiff_cli.ops.superres import zero_pad_upsample

    assert float((mean - zero_pad_upsample(y, (32, 32))).norm() / mean.norm()) > 1e-3


def test_uncertainty_task_superres_writes_maps_and_calibration(tmp_path, bundles):
    hi = _head(2, 32)
    src = write_nifti(tmp_path / "hi.nii.gz", hi, Geometry(voxel_size=(2.0, 2.0, 5.0)))
    out = tmp_path / "u.nii.gz"
    r = runner.invoke(app, ["uncertainty", str(src), "--task", "superres", "--from", "16", "--to", "32", "-o", str(out),
                            "--model", str(bundles["score32"]), "--steps", "3", "-K", "3", "--seed", "1", "-q"])
    assert r.exit_code == 0, r.output
    for suffix in ("", "_variance", "_std"):
        assert (tmp_path / f"u{suffix}.nii.gz").exists(), suffix
    m = json.loads((tmp_path / "u_metrics.json").read_text())
    assert m["samples"] == 3 and m["to"] == [32, 32]
    assert "spearman" in m["calibration"]["overall"] and (tmp_path / "u_calibration.png").exists()
    # the reconstruct-only options are refused with one line
    r = runner.invoke(app, ["uncertainty", str(src), "--from", "16", "-o", str(tmp_path / "x.nii.gz"), "-K", "2"])
    assert r.exit_code == 2 and "--task superres" in r.output
