"""File formats: raw k-space readers (fastMRI, ISMRMRD) and image/preview/metrics writers.

Entry points: :func:`detect.open_input` (lazy ScanReader for any raw format), :func:`detect.load_input`
(whole Scan), :func:`detect.load_image` (NIfTI/DICOM/.npy magnitude), :func:`writers.write_volume`.
Heavy libraries (h5py, nibabel, pydicom, ismrmrd, PIL) are imported inside functions.
"""

from .detect import describe_input, detect_format, load_image, load_input, open_input  # noqa: F401
from .writers import derived_path, write_volume  # noqa: F401
