"""ISMRMRD raw data (``.h5`` with a ``/dataset`` group): Cartesian k-space assembly and a writer.

How acquisitions become a Scan
------------------------------
* Skipped (flags): noise measurement, navigation, phase correction, dummy scan, RT/HP feedback,
  surface-coil correction, phase stabilisation. Counted in ``info.facts['skipped_acquisitions']``.
* Kept: imaging lines and parallel-imaging calibration lines (``ACQ_IS_PARALLEL_CALIBRATION`` and
  ``..._AND_IMAGING``); the encode steps of calibration lines are listed in ``info.facts['calibration_lines']``.
* Placement: sample ``center_sample`` of a line lands on readout index H_enc//2 (after dropping
  ``discard_pre``/``discard_post``); encode step ``kspace_encode_step_1`` lands on column
  ``step - limits.center + W//2`` so the k-space centre is at W//2 (the centered-FFT convention).
  Slices by ``idx.slice``. Only contrast/phase/set 0 are read (others are counted and ignored).
* Repetitions and averages: every kept acquisition of a (slice, line) is summed and divided by its count,
  i.e. lines measured more than once (averages, calibration lines repeated in every repetition) are
  averaged, and lines measured in only some repetitions are taken from those. For the interleaved
  accelerated files of ``ismrmrd_generate_cartesian_shepp_logan -a R`` (repetition r samples lines
  r, r+R, ...) this builds the union of the R repetitions, i.e. a fully sampled k-space.
  ``repetition=r`` reads one repetition only: an undersampled scan (R-fold plus calibration lines).
* Readout oversampling (encoded x > recon x): IFFT along the readout, centre crop to recon x, FFT back;
  ``info.readout_oversampling`` records the factor that was removed.
* Geometry: voxel size = recon FOV / recon matrix (z: slice thickness). When the acquisitions carry
  direction cosines, the affine is built from ``position`` (slice centre), ``read_dir`` (→ H), ``phase_dir``
  (→ W) and ``slice_dir`` (or the step between slice positions), converted from the scanner's LPS to RAS.
  Otherwise the documented default affine (diagonal, centred) is used and ``geometry.known`` is False.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..types import Geometry, HeaderFacts, Sampling, Scan, ScanInfo
from .atomic import atomic_path
from .base import ScanReader, affine_from_directions, check_dims, check_finite, crop_readout, default_geometry
from .header import acquisition_parameters, header_warning, minimal_ismrmrd_header, parse_header

DATASET = "dataset"

# flag bit numbers (1-based, as in ismrmrd.h); imported lazily from the ismrmrd package
_SKIP_FLAG_NAMES = (
    "ACQ_IS_NOISE_MEASUREMENT",
    "ACQ_IS_NAVIGATION_DATA",
    "ACQ_IS_PHASECORR_DATA",
    "ACQ_IS_DUMMYSCAN_DATA",
    "ACQ_IS_RTFEEDBACK_DATA",
    "ACQ_IS_HPFEEDBACK_DATA",
    "ACQ_IS_SURFACECOILCORRECTIONSCAN_DATA",
    "ACQ_IS_PHASE_STABILIZATION_REFERENCE",
    "ACQ_IS_PHASE_STABILIZATION",
)
_CAL_FLAG_NAMES = ("ACQ_IS_PARALLEL_CALIBRATION", "ACQ_IS_PARALLEL_CALIBRATION_AND_IMAGING")


def _bits(names: tuple[str, ...]) -> int:
    import ismrmrd

    m = 0
    for n in names:
        if hasattr(ismrmrd, n):
            m |= 1 << (int(getattr(ismrmrd, n)) - 1)
    return m


class IsmrmrdReader(ScanReader):
    """Lazy reader of an ISMRMRD dataset (see module docstring).

    ``ismrmrd.Dataset`` opens the file (read-only) and reads the XML header; acquisition headers are indexed
    once at open (only the ``head`` field of the table); the sample arrays of a slice range are read in bulk
    (h5py point selection on the ``data`` field) by ``read_slices``.
    """

    format = "ismrmrd"

    def __init__(self, path: str | os.PathLike, dataset: str = DATASET, repetition: int | None = None):
        super().__init__(path)
        import h5py

        p = self.path
        if not p.exists():
            raise InputError(f"{p}: file not found")
        if p.is_dir():
            raise InputError(f"{p}: is a directory, expected an ISMRMRD HDF5 file")
        try:
            self._h5 = h5py.File(p, "r")
        except OSError:
            raise InputError(f"{p}: not an HDF5 file (cannot open)") from None
        self._ds: Any = None  # ismrmrd.Dataset once open
        try:
            grp = self._h5.get(dataset)
            if not isinstance(grp, h5py.Group) or "data" not in grp:
                raise InputError(f"{p}: no ISMRMRD acquisitions (group '/{dataset}/data' missing)")
            import ismrmrd

            try:
                self._ds = ismrmrd.Dataset(str(p), dataset, create_if_needed=False, mode="r")
            except TypeError:  # pragma: no cover - ismrmrd without the mode argument (opens r+)
                self._ds = ismrmrd.Dataset(str(p), dataset, create_if_needed=False)
            self._dataset_name = dataset
            self._repetition = repetition
            self._setup(grp)
        except BaseException:
            self.close()
            raise

    # ----------------------------------------------------------------------------------------------
    def _setup(self, grp: Any) -> None:
        p = self.path
        data = grp["data"]
        if data.dtype.names is None or "head" not in data.dtype.names:
            raise InputError(f"{p}: '/{self._dataset_name}/data' is not an ISMRMRD acquisition table")
        if data.shape[0] == 0:
            raise InputError(f"{p}: ISMRMRD dataset holds no acquisitions")
        heads = data.fields("head")[:]
        xml = self._ds.read_xml_header() if "xml" in grp else None
        header = parse_header(xml) if xml is not None else HeaderFacts()
        traj = str(header.trajectory or "cartesian").lower()
        if traj not in ("cartesian", "epi"):
            raise InputError(f"{p}: trajectory '{traj}' is not Cartesian; only Cartesian data can be read")
        facts: dict[str, Any] = {"dataset": self._dataset_name, "acquisition_parameters": acquisition_parameters(xml)}
        keep, cal = self._select(heads, facts)
        coils = self._layout(heads, keep, header)
        noise = self._noise_scan(data, heads, keep)
        if noise is not None:
            facts["noise_scan"] = noise
        n_sl, h_out, w = self._n_slices, self._h_out, self._w
        check_dims((n_sl, coils, h_out, w), p)
        sampling = self._sampling(cal, heads["flags"][keep].astype(np.uint64), header, facts)
        ry = header.recon_matrix[1] if header.recon_matrix and header.recon_matrix[1] > 0 else w
        notes = [n for n in (header_warning(header, p),) if n]
        geometry = self._geometry(heads[keep], self._slice, header, (h_out, min(ry, w), n_sl))
        if not header.present:
            notes.append(f"{p}: no usable ISMRMRD header; matrix from the acquisitions, voxel size 1 mm")
        self.info = ScanInfo(
            path=str(p), format="ismrmrd", shape=(n_sl, coils, h_out, w), image_shape=(h_out, min(ry, w)),
            stored_shape=(n_sl, coils, self._h_enc, w), readout_oversampling=self._h_enc / h_out, sampling=sampling,
            geometry=geometry, header=header, facts=facts, notes=notes,
        )

    def _select(self, heads: np.ndarray, facts: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """Which acquisitions are kept (imaging and calibration lines of contrast/phase/set 0, one repetition if
        asked); (keep mask over all acquisitions, calibration flag over the kept ones)."""
        p = self.path
        idx = heads["idx"]
        flags = heads["flags"].astype(np.uint64)
        skip = (flags & np.uint64(_bits(_SKIP_FLAG_NAMES))) != 0
        other = (idx["contrast"] != 0) | (idx["phase"] != 0) | (idx["set"] != 0)
        keep = ~skip & ~other
        facts["skipped_acquisitions"] = int(skip.sum())
        facts["ignored_other_contrast_phase_set"] = int((other & ~skip).sum())
        reps = sorted(int(r) for r in np.unique(idx["repetition"][keep]))
        facts["repetitions"] = len(reps)
        facts["averages"] = int(np.unique(idx["average"][keep]).size) if keep.any() else 0
        if self._repetition is not None:
            if self._repetition not in reps:
                raise InputError(f"{p}: repetition {self._repetition} not in file (has {reps})")
            keep &= idx["repetition"] == self._repetition
            facts["repetition_selected"] = int(self._repetition)
        if not keep.any():
            raise InputError(f"{p}: no imaging acquisitions (all are noise/navigation/correction data)")
        if np.any(idx["kspace_encode_step_2"][keep] != 0):
            raise InputError(f"{p}: 3D encoding (kspace_encode_step_2 > 0) is not supported")
        cal = (flags[keep] & np.uint64(_bits(_CAL_FLAG_NAMES))) != 0
        self._acq_ids = np.nonzero(keep)[0]
        return keep, cal

    def _noise_scan(self, data: Any, heads: np.ndarray, keep: np.ndarray) -> dict[str, Any] | None:
        """Statistics of the noise-measurement acquisitions (``ACQ_IS_NOISE_MEASUREMENT``), when the file has
        them: per-coil complex noise std, the largest coil-to-coil noise correlation, and the std expected on
        the imaging samples (noise power scales with the receiver bandwidth, i.e. with 1 / dwell time:
        std_img = std_noise * sqrt(dwell_noise / dwell_img)). Repeated imaging lines are averaged by this reader,
        which lowers their noise further; the figure is for a line measured once."""
        flags = heads["flags"].astype(np.uint64)
        ids = np.nonzero((flags & np.uint64(_bits(("ACQ_IS_NOISE_MEASUREMENT",)))) != 0)[0]
        if ids.size == 0:
            return None
        chans = heads["active_channels"][ids].astype(int)
        coils = int(heads["active_channels"][keep][0]) if keep.any() else int(chans[0])
        raw = data.fields("data")[ids]
        parts = [np.asarray(f, dtype=np.float32).view(np.complex64).reshape(int(c), -1)
                 for f, c in zip(raw, chans, strict=True) if int(c) == coils]
        if not parts:
            return None
        n = np.concatenate(parts, axis=1).astype(np.complex128)
        n -= n.mean(axis=1, keepdims=True)
        cov = (n @ n.conj().T) / max(1, n.shape[1] - 1)
        std = np.sqrt(np.real(np.diag(cov)))
        corr = np.abs(cov) / np.maximum(np.outer(std, std), 1e-30)
        np.fill_diagonal(corr, 0.0)
        dwell_noise = float(np.median(heads["sample_time_us"][ids]))
        dwell_img = float(np.median(heads["sample_time_us"][keep])) if keep.any() else dwell_noise
        ratio = dwell_noise / dwell_img if dwell_noise > 0 and dwell_img > 0 else 1.0
        return {"acquisitions": int(len(parts)), "samples_per_coil": int(n.shape[1]),
                "std_per_coil": [float(v) for v in std], "max_coil_correlation": float(corr.max()) if coils > 1 else 0.0,
                "dwell_time_us": dwell_noise, "imaging_dwell_time_us": dwell_img,
                "kspace_std": float(np.sqrt(np.mean(std**2) * ratio))}

    def _layout(self, heads: np.ndarray, keep: np.ndarray, header: HeaderFacts) -> int:
        """Place every kept acquisition: readout window, column, slice; the readout length kept (recon x)."""
        p = self.path
        idx = heads["idx"]
        ns = heads["number_of_samples"][keep].astype(int)
        self._pre = heads["discard_pre"][keep].astype(int)
        self._post = heads["discard_post"][keep].astype(int)
        self._eff = ns - self._pre - self._post
        chans = heads["active_channels"][keep].astype(int)
        if np.unique(chans).size != 1:
            raise InputError(f"{p}: acquisitions have different channel counts {sorted(set(chans.tolist()))}")
        enc_mat = header.encoded_matrix or (int(self._eff.max()), 0, 1)
        rec_mat = header.recon_matrix or enc_mat
        self._h_enc = max(int(enc_mat[0]), int(self._eff.max()))
        step1 = idx["kspace_encode_step_1"][keep].astype(int)
        lim = header.limits.get("kspace_encoding_step_1")
        w = max(int(enc_mat[1] or 0), int(step1.max()) + 1)
        centre1 = int(lim[2]) if lim else w // 2
        # widen (symmetrically about the centre) if some encode step falls outside the matrix
        half = max(centre1 - int(step1.min()), int(step1.max()) - centre1 + 1)
        self._w = max(w, 2 * half)
        self._col = step1 - centre1 + self._w // 2
        self._slice = idx["slice"][keep].astype(int)
        self._n_slices = int(self._slice.max()) + 1
        self._h_out = int(rec_mat[0]) if 0 < int(rec_mat[0]) < self._h_enc else self._h_enc
        self._centre_sample = heads["center_sample"][keep].astype(int) - self._pre
        return int(chans[0])

    def _sampling(self, cal: np.ndarray, flags: np.ndarray, header: HeaderFacts, facts: dict[str, Any]) -> Sampling:
        """Lines present in any slice (lines are the same in every slice for these sequences)."""
        counts = np.zeros((self._n_slices, self._w), dtype=np.int64)
        np.add.at(counts, (self._slice, self._col), 1)
        sampled = counts.max(axis=0) > 0
        cal_cols = np.unique(self._col[cal])
        cal_only = (flags & np.uint64(_bits(("ACQ_IS_PARALLEL_CALIBRATION",)))) != 0
        facts["calibration_lines"] = [int(c) for c in cal_cols]
        facts["calibration_only_lines"] = [int(c) for c in np.unique(self._col[cal_only])]
        facts["max_times_sampled"] = int(counts.max())
        mask = None
        if not sampled.all():
            mask = np.ascontiguousarray(np.broadcast_to(sampled[None, :], (self._h_out, self._w)), dtype=np.float32)
        return Sampling(mask=mask, source="acquisitions" if mask is not None else None,
                        stated_acceleration=float(header.acceleration) if header.acceleration else None,
                        stated_acs=int(cal_cols.size) if cal_cols.size else None)

    def _geometry(self, heads: np.ndarray, slices: np.ndarray, hdr: HeaderFacts,
                  shape: tuple[int, int, int]) -> Geometry:
        vs = hdr.voxel_size("recon")
        first: dict[int, int] = {}
        for i, s in enumerate(slices):
            first.setdefault(int(s), i)
        h0 = heads[first[min(first)]]
        rd, pd, sd = (np.asarray(h0[k], float) for k in ("read_dir", "phase_dir", "slice_dir"))
        if vs is None or np.linalg.norm(rd) < 1e-6 or np.linalg.norm(pd) < 1e-6:
            return default_geometry(vs, shape, source="header FOV/matrix" if vs else "default (1 mm)")
        rd, pd = rd / np.linalg.norm(rd), pd / np.linalg.norm(pd)
        if np.linalg.norm(sd) < 1e-6:
            sd = np.cross(rd, pd)
        sd = sd / np.linalg.norm(sd)
        pos0 = np.asarray(h0["position"], float)
        dz = float(vs[2])
        if len(first) > 1:
            s_ids = sorted(first)
            pos1 = np.asarray(heads[first[s_ids[1]]]["position"], float)
            step = (pos1 - pos0) / (s_ids[1] - s_ids[0])
            if np.linalg.norm(step) > 1e-6:
                dz = float(np.linalg.norm(step))
                sd = step / dz
        aff = affine_from_directions(rd, pd, sd * dz, pos0, (vs[0], vs[1], dz), shape[:2])
        return Geometry(voxel_size=(float(vs[0]), float(vs[1]), dz), affine=aff, known=True,
                        source="ismrmrd acquisition headers (LPS→RAS)")

    # ----------------------------------------------------------------------------------------------
    def read_slices(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        start, stop = self.check_range(start, stop)
        n, c, _, w = stop - start, self.shape[1], self._h_out, self._w
        acc = np.zeros((n, c, self._h_enc, w), dtype=np.complex128)
        cnt = np.zeros((n, w), dtype=np.int64)
        sel = np.nonzero((self._slice >= start) & (self._slice < stop))[0]
        table = self._h5[self._dataset_name]["data"]
        for c0 in range(0, sel.size, 4096):  # bulk reads of the sample arrays (sorted ids: h5py point selection)
            chunk = sel[c0: c0 + 4096]
            raw = table.fields("data")[self._acq_ids[chunk]] if chunk.size else []
            for j, flat in zip(chunk, raw, strict=False):
                self._place(acc, cnt, j, np.asarray(flat, dtype=np.float32), start, c)
        acc /= np.maximum(cnt, 1)[:, None, None, :]
        k = acc.astype(np.complex64)
        if self._h_out != self._h_enc:
            k = crop_readout(k, self._h_out)
        check_finite(k, self.path, start)
        return k

    def _place(self, acc: np.ndarray, cnt: np.ndarray, j: int, flat: np.ndarray, start: int, coils: int) -> None:
        """Add acquisition j (interleaved float32 re/im, (channels, samples)) to its slice/line."""
        ns = self._eff[j] + self._pre[j] + self._post[j]
        if flat.size != 2 * coils * ns:
            raise InputError(f"{self.path}: acquisition {int(self._acq_ids[j])} holds {flat.size // 2} samples, "
                             f"expected {coils} x {ns}")
        d = flat.view(np.complex64).reshape(coils, ns)
        d = d[:, self._pre[j]: self._pre[j] + self._eff[j]]
        off = self._h_enc // 2 - int(self._centre_sample[j])
        lo, hi = max(0, off), min(self._h_enc, off + d.shape[1])
        s = int(self._slice[j]) - start
        acc[s, :, lo:hi, self._col[j]] += d[:, lo - off: hi - off]
        cnt[s, self._col[j]] += 1

    def close(self) -> None:
        for h in (getattr(self, "_ds", None), getattr(self, "_h5", None)):
            if h is not None:
                with contextlib.suppress(Exception):
                    h.close()


def open_scan(path: str | os.PathLike, dataset: str = DATASET, repetition: int | None = None) -> IsmrmrdReader:
    """Open an ISMRMRD file lazily (context manager). ``repetition``: read one repetition only."""
    return IsmrmrdReader(path, dataset=dataset, repetition=repetition)


def load_scan(path: str | os.PathLike, dataset: str = DATASET, repetition: int | None = None) -> Scan:
    """Read a whole ISMRMRD file into a Scan."""
    with open_scan(path, dataset=dataset, repetition=repetition) as r:
        return r.load()


def read_stored_images(path: str | os.PathLike, name: str, dataset: str = DATASET) -> np.ndarray | None:
    """A complex array the Shepp-Logan generator stores next to the raw data ('phantom', 'csm',
    'coil_images'), as a numpy complex64 array in the file's (…, y, x) order; None when absent."""
    import h5py

    with h5py.File(path, "r") as f:
        g = f.get(dataset)
        if g is None or name not in g:
            return None
        a = g[name][()]
    if a.dtype.names and "real" in a.dtype.names:
        return (a["real"] + 1j * a["imag"]).astype(np.complex64)
    return np.asarray(a)


# ---------------------------------------------------------------------------------------------------
# writer
# ---------------------------------------------------------------------------------------------------


def _directions_from_affine(affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """LPS (read, phase, slice unit vectors, slice step vector) from a RAS (H, W, slices) affine."""
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.asarray(affine, float)
    cols = [lps[:3, i] for i in range(3)]
    units = [c / np.linalg.norm(c) if np.linalg.norm(c) > 0 else np.eye(3)[i] for i, c in enumerate(cols)]
    return units[0], units[1], units[2], cols[2]


def write_ismrmrd(path: str | os.PathLike, kspace: np.ndarray, geometry: Geometry, *,
                  mask: np.ndarray | None = None, calibration_lines: list[int] | None = None,
                  header_xml: str | None = None, overwrite: bool = False,
                  noise: np.ndarray | None = None) -> Path:
    """Write (slices, coils, H, W) k-space as an ISMRMRD dataset, one acquisition per sampled line.

    Lines with a zero mask column are not written (undersampled file). The geometry's affine sets each
    acquisition's ``position`` (slice centre), ``read_dir``/``phase_dir``/``slice_dir`` (RAS → LPS).
    Lines in ``calibration_lines`` get ``ACQ_IS_PARALLEL_CALIBRATION_AND_IMAGING``. ``noise`` (coils, N): a
    noise scan, written first as ``ACQ_IS_NOISE_MEASUREMENT`` acquisitions of H samples (as scanners do).
    """
    import ismrmrd

    k = np.asarray(kspace, dtype=np.complex64)
    if k.ndim != 4:
        raise ValueError(f"kspace must be (slices, coils, H, W), got {k.shape}")
    s_n, c_n, h, w = k.shape
    if mask is not None:
        m = np.asarray(mask) > 0
        cols = m.any(axis=0) if m.ndim == 2 else m
    else:
        cols = np.ones(w, dtype=bool)
    aff = geometry.affine_for((h, w, s_n))
    rd, pd, sd, step = _directions_from_affine(aff)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ aff
    xml = header_xml or minimal_ismrmrd_header((h, w), geometry.voxel_size, c_n, n_slices=s_n)
    cal = set(int(c) for c in (calibration_lines or []))
    lines = np.nonzero(cols)[0]
    with atomic_path(path, overwrite) as tmp:
        tmp.unlink()  # the empty placeholder: let ismrmrd create the HDF5 file (append mode creates it)
        ds = ismrmrd.Dataset(str(tmp), DATASET, create_if_needed=True)
        try:
            ds.write_xml_header(xml)
            counter = 0
            if noise is not None:
                nz = np.asarray(noise, dtype=np.complex64)
                for j in range(nz.shape[1] // h):
                    acq = ismrmrd.Acquisition.from_array(np.ascontiguousarray(nz[:, j * h:(j + 1) * h]))
                    acq.set_flag(ismrmrd.ACQ_IS_NOISE_MEASUREMENT)
                    acq.scan_counter = counter
                    ds.append_acquisition(acq)
                    counter += 1
            for s in range(s_n):
                centre = lps[:3, :3] @ np.array([(h - 1) / 2.0, (w - 1) / 2.0, s]) + lps[:3, 3]
                for n, ln in enumerate(lines):
                    acq = ismrmrd.Acquisition.from_array(np.ascontiguousarray(k[s, :, :, ln]))
                    acq.idx.kspace_encode_step_1 = int(ln)
                    acq.idx.slice = int(s)
                    acq.center_sample = h // 2
                    acq.scan_counter = counter
                    acq.position[:] = centre.astype(np.float32)
                    acq.read_dir[:] = rd.astype(np.float32)
                    acq.phase_dir[:] = pd.astype(np.float32)
                    acq.slice_dir[:] = sd.astype(np.float32)
                    if n == 0:
                        acq.set_flag(ismrmrd.ACQ_FIRST_IN_SLICE)
                    if n == len(lines) - 1:
                        acq.set_flag(ismrmrd.ACQ_LAST_IN_SLICE)
                    if int(ln) in cal:
                        acq.set_flag(ismrmrd.ACQ_IS_PARALLEL_CALIBRATION_AND_IMAGING)
                    ds.append_acquisition(acq)
                    counter += 1
        finally:
            ds.close()
    return Path(path)
