"""A fastMRI test-layout file from held-out REPORT-set slices, through the real CLI: mrdiff vs L1-wavelet CS.

What a user of fastMRI's test/challenge files gets. Held-out report-set slices (``corpus.load_split("report", 256,
1.0, ...)``, default volume pyradiomics ``brain2``) → 16-coil raw k-space (``tasks.simulate.simulate_volume``:
smooth random phase, birdcage-like coils with Σ|S|² = 1) → readout oversampled 2x as a scanner does (the coil
images zero-padded to 512 rows along the readout axis H before the FFT) → complex noise at ``--snr`` dB (per-sample
σ of the same simulation without oversampling, so after oversampling removal the noise is that of
``benchmarks/reconstruct.py``) → fastMRI-style equispaced x4 with an 8 % fully sampled centre
(``ops.masks.make_mask``) → written exactly in fastMRI's multicoil *test* layout: ``kspace`` (S, 16, 512, 256)
already undersampled, ``mask`` (256,) bool, attrs ``acceleration`` and ``num_low_frequency``, ``ismrmrd_header``
with encodedSpace 512 x 256 / reconSpace 256 x 256 (``tests/fastmri_layouts.fastmri_header``), no reference.
Intensities are scaled by ``--scale`` (default 1e-4, fastMRI-like); metrics undo it.

Then:
  * ``mrdiff reconstruct FILE -o OUT.nii.gz --json -q`` (subprocess; default model and settings, the file's own
    mask) — the output must be the 256 x 256 recon matrix; s/slice = the CLI's own ``seconds_per_slice`` (coil
    maps + sampling); the command's wall time / slices (start-up and model loading included) is in the JSON;
  * zero-filled RSS and L1-wavelet CS (sigpy ``L1WaveletRecon``, 60 iterations, ESPIRiT maps from
    ``Reconstructor.estimate_maps``) on the k-space as ``io.fastmri.FastMRIReader`` returns it (oversampling
    removed by the reader itself); λ = the TUNE-set value for ``16:256:equispaced:4`` in
    ``benchmarks/results/cs_lambdas.json`` x the zero-filled 99th percentile. Nothing is tuned here.

Metrics: PSNR inside the head mask (``corpus.head_mask`` / ``masked_psnr``, data range = the slice maximum) against
the noise-free magnitude, SSIM (``mrdiff_cli.metrics.ssim``, whole slice), mean over slices.

    OMP_NUM_THREADS=1 python benchmarks/fastmri_test_layout.py --json benchmarks/results/fastmri_test_layout.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT / "benchmarks", ROOT / "tests"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

SETTING = "16:256:equispaced:4"


def simulate_test_layout(images: np.ndarray, *, coils: int = 16, snr_db: float | None = 35.0, seed: int = 7,
                         accel: float = 4.0, acs: int | None = None, oversampling: int = 2, mask_seed: int = 11,
                         coil_model: str = "ring", phase_model: str = "poly") -> dict:
    """(S, h, w) magnitude slices → {"kspace": (S, C, oversampling*h, w) complex64, undersampled (zero columns),
    "mask": (w,) bool, "truth": (S, h, w) noise-free magnitude, "acs": int, "achieved_accel": float}."""
    from fastmri_layouts import fft2c_np, ifft2c_np

    from mrdiff_cli.ops.masks import make_mask
    from mrdiff_cli.tasks.simulate import simulate_volume

    vol = np.asarray(images, dtype=np.float32)
    sim = simulate_volume(vol, None, matrix=None, coils=coils, snr_db=None, seed=seed,  # same object as reconstruct.py
                          coil_model=coil_model, phase_model=phase_model)
    k = sim.kspace
    s_n, c, h, w = k.shape
    big_h = oversampling * h
    coil_img = np.zeros((s_n, c, big_h, w), np.complex64)
    h0 = big_h // 2 - h // 2  # where io.base.center_crop takes the recon rows back from
    coil_img[:, :, h0: h0 + h] = ifft2c_np(k)
    big = fft2c_np(coil_img)
    if snr_db is not None and math.isfinite(float(snr_db)):
        rng = np.random.default_rng(seed + 1000)
        for s in range(s_n):
            # simulate_kspace's definition on the un-oversampled k-space: the same noise per image pixel
            sigma2 = float(np.mean(np.abs(k[s]) ** 2)) / 10.0 ** (float(snr_db) / 10.0)
            noise = rng.standard_normal(big[s].shape) + 1j * rng.standard_normal(big[s].shape)
            big[s] = big[s] + (math.sqrt(sigma2 / 2.0) * noise).astype(np.complex64)
    acs = max(8, int(round(0.08 * w))) if acs is None else int(acs)
    res = make_mask("equispaced", (big_h, w), float(accel), acs=acs, seed=mask_seed)
    cols = np.asarray(res.mask)[0] > 0
    return {"kspace": (big * cols).astype(np.complex64), "mask": cols, "truth": sim.reference.astype(np.float32),
            "acs": acs, "achieved_accel": float(w / cols.sum())}


def write_test_layout(path: str | os.PathLike, kspace: np.ndarray, mask: np.ndarray, *, accel: float, acs: int,
                      recon: tuple[int, int], voxel_mm: float = 1.0, scale: float = 1.0,
                      acquisition: str = "AXT1POST", patient_id: str = "synthetic") -> Path:
    """Write fastMRI's multicoil test layout: kspace (S, C, H, W) as given (already undersampled), mask (W,) bool,
    attrs acceleration / num_low_frequency / acquisition / patient_id, ismrmrd_header; no reference."""
    import h5py
    from fastmri_layouts import fastmri_header

    k = np.asarray(kspace, dtype=np.complex64) * np.float32(scale)
    h, w = k.shape[-2:]
    with h5py.File(path, "w") as f:
        f.create_dataset("kspace", data=k)
        f.create_dataset("mask", data=np.asarray(mask, dtype=bool))
        f.attrs["acceleration"] = int(accel) if float(accel).is_integer() else float(accel)
        f.attrs["num_low_frequency"] = int(acs)
        f.attrs["acquisition"] = acquisition
        f.attrs["patient_id"] = patient_id
        xml = fastmri_header((h, w), recon, voxel=voxel_mm).replace(
            "<receiverChannels>16<", f"<receiverChannels>{k.shape[1]}<")
        f.create_dataset("ismrmrd_header", data=np.bytes_(xml.encode()))
    return Path(path)


def mrdiff_cmd() -> list[str]:
    exe = shutil.which("mrdiff") or str(Path(sys.executable).with_name("mrdiff"))
    return [exe]


def run_cli(h5: Path, out: Path, *extra: str) -> tuple[dict, float]:
    t = time.time()
    res = subprocess.run([*mrdiff_cmd(), "reconstruct", str(h5), "-o", str(out), "--json", "-q", *extra],
                         capture_output=True, text=True)
    wall = time.time() - t
    if res.returncode != 0:
        raise RuntimeError(f"mrdiff reconstruct exited {res.returncode}: {res.stderr.strip()}")
    return json.loads(res.stdout), wall


def score(img: np.ndarray, truth: np.ndarray) -> dict:
    import torch

    from corpus import head_mask, masked_psnr
    from mrdiff_cli.metrics import ssim

    x, ref = torch.as_tensor(img, dtype=torch.float32), torch.as_tensor(truth, dtype=torch.float32)
    p = masked_psnr(x, ref, head_mask(ref))
    q = [ssim(a.numpy(), r.numpy()) for a, r in zip(x, ref)]
    return {"psnr": float(np.mean(p)), "ssim": float(np.mean(q)), "psnr_slices": [round(float(v), 3) for v in p],
            "ssim_slices": [round(float(v), 4) for v in q]}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--volume", default="pyradiomics_brain2", help="a volume of --split")
    ap.add_argument("--split", default="report", choices=["report", "tune"],
                    help="corpus split of --volume (tune: for studies that may choose something)")
    ap.add_argument("--variants", default="", help="also reconstruct through the Python API (the reader's k-space, "
                    "self-tuned on the middle slice) with these ReconOptions overrides, e.g. "
                    "'auto=,a95=coil_maps:espirit;espirit_sigma:0.001;espirit_noise:2;espirit_eig:0.95;pilot_maps:espirit'")
    ap.add_argument("--per-volume", type=int, default=3)
    ap.add_argument("--snr", type=float, default=35.0)
    ap.add_argument("--scale", type=float, default=1e-4, help="k-space intensity scale written to the file")
    ap.add_argument("--cs-lambdas", default=str(ROOT / "benchmarks/results/cs_lambdas.json"))
    ap.add_argument("--cs-iters", type=int, default=60)
    ap.add_argument("--cs-grid", action="store_true", help="also run CS over the suite's lambda grid (--cs-iters "
                    "iterations) and record each PSNR: the per-file best is an oracle-tuned CS")
    ap.add_argument("--keep-h5", help="also keep the written fastMRI file here")
    ap.add_argument("--coil-model", default="ring", help="tasks.simulate coil family (ring: the first release's "
                    "table; loops: Biot-Savart loops, a report family)")
    ap.add_argument("--phase-model", default="poly", help="tasks.simulate phase family (poly; offres: air-tissue "
                    "off-resonance, a report family)")
    ap.add_argument("--steps", default=None, help="pass --steps N to every mrdiff run (the recorded tables: 20, the "
                    "default before 2026-12-07)")
    ap.add_argument("--fixed-counts", default="", help="also run the CLI with --cg-iters N for each N of this comma "
                    "list (the self-tuned count against the best fixed one on this file)")
    ap.add_argument("--cli-args", default="", help="more options for every mrdiff run, one string (e.g. "
                    "\"--coil-maps adaptive\"); CS keeps the default maps")
    ap.add_argument("--json")
    a = ap.parse_args(argv)

    import torch

    from corpus import load_split
    from mrdiff_cli.io.fastmri import FastMRIReader
    from mrdiff_cli.io.nifti import read_nifti
    from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    lams = json.loads(Path(a.cs_lambdas).read_text())
    # chosen on the TUNE set; never tuned here (cs_lambdas_converged.json has one lambda per mask kind)
    lam_rel = lams[SETTING] if SETTING in lams else lams["equispaced"]
    ref = load_split(a.split, 256, 1.0, a.per_volume)[a.volume].numpy()
    sim = simulate_test_layout(ref, coils=16, snr_db=a.snr, accel=4.0, coil_model=a.coil_model,
                               phase_model=a.phase_model)
    truth, n = sim["truth"], len(ref)
    res: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} cores (shared with other jobs), "
                            f"torch {torch.__version__}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}",
                 "split": a.split, "volume": a.volume, "coil_model": a.coil_model, "phase_model": a.phase_model, "slices": n, "snr_db": a.snr, "scale": a.scale,
                 "setting": SETTING, "acs": sim["acs"], "achieved_accel": sim["achieved_accel"],
                 "cs_lambda_rel": lam_rel, "cs_lambda_from": f"{Path(a.cs_lambdas).name} (tune set)",
                 "reference": "noise-free magnitude of the simulation (RSS of the noise-free coil images)"}
    with tempfile.TemporaryDirectory() as td:
        h5 = write_test_layout(Path(td) / "test_layout.h5", sim["kspace"], sim["mask"], accel=4, acs=sim["acs"],
                               recon=(256, 256), voxel_mm=1.0, scale=a.scale, patient_id=a.volume)
        if a.keep_h5:
            shutil.copy(h5, a.keep_h5)
        import h5py

        with h5py.File(h5, "r") as f:
            res["file"] = {"kspace": list(f["kspace"].shape), "mask": list(f["mask"].shape),
                           "attrs": {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()},
                           "datasets": sorted(f.keys())}
        info = json.loads(subprocess.run([*mrdiff_cmd(), "info", str(h5), "--json"], capture_output=True,
                                         text=True, check=True).stdout)
        res["info"] = {k: info.get(k) for k in ("stored_shape", "matrix", "image_matrix", "readout_oversampling")}
        res["info"]["mask_source"] = info["sampling"].get("mask_source")

        # mrdiff through the real CLI: default model and settings, the file's own mask
        out = Path(td) / "mrdiff.nii.gz"
        steps = (("--steps", str(a.steps)) if a.steps else ()) + tuple(a.cli_args.split())
        cli_json, wall = run_cli(h5, out, *steps)
        img = read_nifti(out)[0] / a.scale
        res["cli"] = {"output_shape": list(img.shape), "wall_s": wall,
                      "result": {k: v for k, v in cli_json["results"][0].items()
                                 if k in ("method", "sampler", "coil_mode", "nfe", "mask", "matrix", "model",
                                          "seconds_total", "seconds_per_slice", "consistency")}}
        if tuple(img.shape) != (n, 256, 256):
            raise SystemExit(f"mrdiff output is {img.shape}, expected ({n}, 256, 256): not the recon matrix")
        # s/slice as the CLI reports it (maps + sampling; the process's start-up and model loading in wall_s)
        res["mrdiff"] = {**score(img, truth), "s_per_slice": float(cli_json["results"][0]["seconds_per_slice"]),
                         "wall_s_per_slice": wall / n, "cg_iters": cli_json["results"][0]["consistency"]["cg_iters"]}
        res["fixed"] = {}
        for count in [int(c) for c in a.fixed_counts.split(",") if c.strip()]:
            out_n = Path(td) / f"fixed{count}.nii.gz"
            j, _ = run_cli(h5, out_n, "--cg-iters", str(count), *steps)
            res["fixed"][str(count)] = {**score(read_nifti(out_n)[0] / a.scale, truth),
                                        "s_per_slice": float(j["results"][0]["seconds_per_slice"])}

        # baselines on the k-space exactly as the reader gives it (oversampling removed by the reader)
        with FastMRIReader(h5) as r:
            y = r.read_slices() / np.float32(a.scale)
            mask = np.asarray(r.info.sampling.mask, dtype=np.float32)
        assert y.shape == (n, 16, 256, 256) and mask.shape == (256, 256), (y.shape, mask.shape)
        y = (y * mask).astype(np.complex64)  # exact zeros where unsampled (the readout crop leaves ~1e-8)
        t = time.time()
        zf = Reconstructor(None, ReconOptions(method="zero-filled")).reconstruct(y, mask, "sense").images
        res["zero-filled"] = {**score(zf, truth), "s_per_slice": (time.time() - t) / n}
        t = time.time()
        rec = Reconstructor(None, ReconOptions(method="sense"))
        maps = rec.estimate_maps(torch.as_tensor(y), torch.as_tensor(mask)).numpy()
        t_maps = time.time() - t
        lam = lam_rel * float(np.percentile(zf, 99))
        from baselines import cs_l1wavelet

        t = time.time()
        cs = cs_l1wavelet(y, maps, mask, lam, a.cs_iters)
        res["CS"] = {**score(cs, truth), "s_per_slice": (time.time() - t + t_maps) / n, "maps_s_per_slice": t_maps / n,
                     "lambda": lam, "iters": a.cs_iters}
        # the same CS with the maps mrdiff's default one-sample run uses (--coil-maps adaptive): what a CS with
        # better-than-default ESPIRiT maps would reach (the baseline above keeps the standard maps)
        t = time.time()
        maps_a = Reconstructor(None, ReconOptions(method="sense", coil_maps="adaptive")).estimate_maps(
            torch.as_tensor(y), torch.as_tensor(mask)).numpy()
        cs_a = cs_l1wavelet(y, maps_a, mask, lam, a.cs_iters)
        res["CS_adaptive_maps"] = {**score(cs_a, truth), "s_per_slice": (time.time() - t) / n}
        if a.cs_grid:  # the per-file best lambda: what tuning CS on this very file would reach (an oracle)
            from suite import LAMBDA_GRID

            scale = float(np.percentile(zf, 99))
            res["CS_grid"] = {str(lr): score(cs_l1wavelet(y, maps, mask, lr * scale, a.cs_iters), truth)["psnr"]
                              for lr in LAMBDA_GRID}
        if a.variants:
            from sampler_variants import parse_variants

            from mrdiff_cli.priors.loading import load_prior

            prior = load_prior(None, "score", offline=True)[0]
            res["variants"] = {}
            for name, opts in parse_variants(a.variants, ("espirit_sigma", "espirit_noise", "espirit_eig",
                                                          "espirit_support_sigma")).items():
                t = time.time()
                rec = Reconstructor(prior, ReconOptions(seed=0, **opts))
                rec.tune(y[n // 2 : n // 2 + 1], mask, "sense", slice_ids=[n // 2])
                res["variants"][name] = {**score(rec.reconstruct(y, mask, "sense", slice_ids=list(range(n))).images, truth),
                                         "cg_iters": rec.n_cg(), "s_per_slice": (time.time() - t) / n}
    res["mrdiff_minus_CS_db"] = res["mrdiff"]["psnr"] - res["CS"]["psnr"]
    res["mrdiff_minus_CS_adaptive_maps_db"] = res["mrdiff"]["psnr"] - res["CS_adaptive_maps"]["psnr"]
    if res["fixed"]:
        best = max(res["fixed"], key=lambda c: res["fixed"][c]["psnr"])
        res["best_fixed_count"] = int(best)
        res["self_tuned_minus_best_fixed_db"] = res["mrdiff"]["psnr"] - res["fixed"][best]["psnr"]
    if "CS_grid" in res:
        res["mrdiff_minus_CS_best_lambda_db"] = res["mrdiff"]["psnr"] - max(res["CS_grid"].values())
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(res, indent=1, default=str))
    print(f"\nfastMRI test layout: kspace {tuple(res['file']['kspace'])}, mask {tuple(res['file']['mask'])}, "
          f"R {sim['achieved_accel']:.2f}, ACS {sim['acs']}; output {tuple(img.shape)}; {a.volume} ({n} slices)\n")
    print("| method | PSNR (dB, head mask) | SSIM | s/slice |")
    print("|---|---|---|---|")
    for name, label in (("zero-filled", "zero-filled"), ("CS", f"L1-wavelet CS (λ={lam_rel:g} from tune)"),
                        ("CS_adaptive_maps", "the same CS with adaptive maps"), ("mrdiff", "mrdiff (CLI, defaults)")):
        r = res[name]
        print(f"| {label} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['s_per_slice']:.1f} |")
    for count, r in res["fixed"].items():
        print(f"| mrdiff --cg-iters {count} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['s_per_slice']:.1f} |")
    for name, r in res.get("variants", {}).items():
        print(f"| Python API, {name} ({r['cg_iters']} CG) | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['s_per_slice']:.1f} |")
    print(f"\nmrdiff − CS: {res['mrdiff_minus_CS_db']:+.2f} dB (self-tuned count: {res['mrdiff']['cg_iters']}); "
          f"against CS with adaptive maps {res['mrdiff_minus_CS_adaptive_maps_db']:+.2f} dB")
    if res["fixed"]:
        print(f"self-tuned − best fixed count ({res['best_fixed_count']}): {res['self_tuned_minus_best_fixed_db']:+.2f} dB")
    return res


if __name__ == "__main__":
    main()
