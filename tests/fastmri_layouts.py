"""fastMRI files written exactly in the dataset's layouts (dataset names, shapes, attrs, ISMRMRD header), with a
known object so tests can check what a reader / reconstruction does with them.

Layouts (H = readout, stored 2x oversampled; W = phase encode; recon matrix 320 x 320):
  brain_train      kspace (S, C, 640, 320) + reconstruction_rss (S, 320, 320)
  brain_test       kspace (S, C, 640, 320), already undersampled, mask (320,), attrs acceleration, num_low_frequency
  knee_multicoil   kspace (S, C, 640, 368) + reconstruction_rss (S, 320, 320): the phase-encode axis is cropped too
  knee_singlecoil  kspace (S, 640, 368) + reconstruction_esc (S, 320, 320)
The object fills the centre of the recon field of view; outside it the image is zero, so the recon-matrix crop loses
nothing and the references are exact crops of the fully sampled image.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

LAYOUTS = {  # name: (stored H, W, recon (h, w), single-coil, reference name, undersampled)
    "brain_train": (640, 320, (320, 320), False, "reconstruction_rss", False),
    "brain_test": (640, 320, (320, 320), False, None, True),
    "knee_multicoil": (640, 368, (320, 320), False, "reconstruction_rss", False),
    "knee_singlecoil": (640, 368, (320, 320), True, "reconstruction_esc", False),
}


def fft2c_np(x: np.ndarray) -> np.ndarray:
    import torch

    from mrdiff_cli.ops.fft import fft2c

    return fft2c(torch.from_numpy(np.ascontiguousarray(x, dtype=np.complex64))).numpy()


def ifft2c_np(k: np.ndarray) -> np.ndarray:
    import torch

    from mrdiff_cli.ops.fft import ifft2c

    return ifft2c(torch.from_numpy(np.ascontiguousarray(k, dtype=np.complex64))).numpy()


def rss_image(k: np.ndarray) -> np.ndarray:
    """(S, C, H, W) k-space → (S, H, W) root-sum-of-squares image."""
    return np.sqrt(np.sum(np.abs(ifft2c_np(k)) ** 2, axis=1)).astype(np.float32)


def centre_crop(a: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    h0, w0 = a.shape[-2] // 2 - hw[0] // 2, a.shape[-1] // 2 - hw[1] // 2
    return a[..., h0: h0 + hw[0], w0: w0 + hw[1]]


def fastmri_header(enc: tuple[int, int], recon: tuple[int, int], voxel: float = 0.6875, slice_mm: float = 5.0,
                   valid: bool = True) -> str:
    """An ISMRMRD header like fastMRI's (namespace, encodedSpace/reconSpace, limits). ``valid=False`` leaves out
    <experimentalConditions> (required by the schema): the ismrmrd parser rejects it, as it does some real files."""
    cond = "<experimentalConditions><H1resonanceFrequency_Hz>127710000</H1resonanceFrequency_Hz></experimentalConditions>"
    return f"""<?xml version="1.0" encoding="utf-8"?>
<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <acquisitionSystemInformation><receiverChannels>16</receiverChannels></acquisitionSystemInformation>
  {cond if valid else ""}
  <encoding>
    <encodedSpace><matrixSize><x>{enc[0]}</x><y>{enc[1]}</y><z>1</z></matrixSize>
      <fieldOfView_mm><x>{enc[0] * voxel}</x><y>{enc[1] * voxel}</y><z>{slice_mm}</z></fieldOfView_mm></encodedSpace>
    <reconSpace><matrixSize><x>{recon[0]}</x><y>{recon[1]}</y><z>1</z></matrixSize>
      <fieldOfView_mm><x>{recon[0] * voxel}</x><y>{recon[1] * voxel}</y><z>{slice_mm}</z></fieldOfView_mm></reconSpace>
    <trajectory>cartesian</trajectory>
    <encodingLimits>
      <kspace_encoding_step_1><minimum>0</minimum><maximum>{enc[1] - 1}</maximum><center>{enc[1] // 2}</center></kspace_encoding_step_1>
      <slice><minimum>0</minimum><maximum>0</maximum><center>0</center></slice>
    </encodingLimits>
  </encoding>
</ismrmrdHeader>"""


def object_image(shape: tuple[int, int], recon: tuple[int, int], slices: int) -> np.ndarray:
    """(S, H, W) complex object: the analytic phantom inside the central recon field of view, smooth phase."""
    from mrdiff_cli.tasks.simulate import analytic_phantom

    n = min(recon[0], recon[1])
    ph = np.zeros(shape, np.float32)
    h0, w0 = shape[0] // 2 - n // 2, shape[1] // 2 - n // 2
    ph[h0: h0 + n, w0: w0 + n] = analytic_phantom(n)
    u = np.linspace(-1, 1, shape[1])[None, :]
    return np.stack([(1.0 - 0.2 * s) * ph * np.exp(1j * (0.6 * u + 0.3 * s)) for s in range(slices)]).astype(np.complex64)


def write_layout(path: Path, layout: str, *, slices: int = 1, coils: int = 2, accel: int = 4, acs: int = 24,
                 scale: float = 1e-4, noise: float = 0.0, valid_header: bool = True, seed: int = 0) -> dict:
    """Write ``layout`` to ``path``; return the ground truth: {"image": the noise-free magnitude at the recon matrix
    (S, h, w), "mask": (W,) or None, "kspace": the stored k-space}. ``scale`` mimics fastMRI's ~1e-4 intensities."""
    from mrdiff_cli.tasks.simulate import coil_maps

    h, w, recon, single, ref_name, undersampled = LAYOUTS[layout]
    rng = np.random.default_rng(seed)
    x = object_image((h, w), recon, slices) * scale
    maps = np.ones((1, h, w), np.complex64) if single else coil_maps(coils, (h, w))
    k = fft2c_np(x[:, None] * maps[None])
    if noise:
        k = k + (noise * scale * (rng.standard_normal(k.shape) + 1j * rng.standard_normal(k.shape))).astype(np.complex64)
    truth = {"image": centre_crop(np.abs(x) * np.sqrt(np.sum(np.abs(maps) ** 2, axis=0))[None], recon), "mask": None}
    with h5py.File(path, "w") as f:
        if undersampled:
            m = np.zeros(w, np.float32)
            m[::accel] = 1
            m[w // 2 - acs // 2: w // 2 - acs // 2 + acs] = 1
            k = k * m
            f.create_dataset("mask", data=m.astype(bool))
            f.attrs["acceleration"] = accel
            f.attrs["num_low_frequency"] = acs
            truth["mask"] = m
        f.create_dataset("kspace", data=(k[:, 0] if single else k).astype(np.complex64))
        if ref_name is not None:
            f.create_dataset(ref_name, data=centre_crop(rss_image(k), recon))
        f.create_dataset("ismrmrd_header", data=np.bytes_(fastmri_header((h, w), recon, valid=valid_header).encode()))
        f.attrs["acquisition"] = "CORPD_FBK" if layout.startswith("knee") else "AXT2"
        f.attrs["patient_id"] = "synthetic"
    truth["kspace"] = k
    return truth
