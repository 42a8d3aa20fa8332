"""The error convention (docs/architecture.md, "Errors"): library messages name parameters (``option=`` and
`name` in backticks), never command-line flags; the CLI boundary (``cli.common.handle_errors``) shows them as flags,
one line, exit 2. And the super-resolution options are built (checked, completed) once and frozen."""

from __future__ import annotations

import ast
import pickle
from dataclasses import FrozenInstanceError, replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import mrdiff_cli
from mrdiff_cli.cli.common import cli_text, flag_name
from mrdiff_cli.cli.main import app
from mrdiff_cli.errors import InputError, ModelError, MrdiffError, UsageError

runner = CliRunner()


@pytest.fixture(autouse=True)
def _env(cli_env):
    """Offline, no SLURM / progress settings from the caller (conftest.cli_env)."""


def cli(*args):
    return runner.invoke(app, [str(a) for a in args])


def flag_line(res, flag: str) -> str:
    """The CLI's one error line starts with ``flag:``; exit code 2."""
    assert res.exit_code == 2, f"exit {res.exit_code}\nstdout: {res.stdout}\nstderr: {res.stderr}"
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mrdiff: error: {flag}: "), res.stderr
    assert "`" not in lines[0], lines[0]
    return lines[0]


def library_error(exc: MrdiffError, option: str) -> str:
    assert exc.option == option
    assert "--" not in str(exc), str(exc)
    assert str(exc).startswith(f"`{option}`: ") and str(exc) == f"`{option}`: {exc.message}"
    return str(exc)


# ------------------------------------------------------------------------------------------------ the types


def test_option_is_kept_and_rendered_as_a_flag():
    e = UsageError("must be > 1, got 0.5", option="accel")
    assert (e.option, e.message, str(e)) == ("accel", "must be > 1, got 0.5", "`accel`: must be > 1, got 0.5")
    assert cli_text(str(e)) == "--accel: must be > 1, got 0.5"
    plain = InputError("x.h5: file not found")
    assert plain.option is None and str(plain) == "x.h5: file not found" == cli_text(str(plain))
    back = pickle.loads(pickle.dumps(e))  # worker processes hand errors back pickled
    assert type(back) is UsageError and back.option == "accel" and str(back) == str(e)


@pytest.mark.parametrize("param, flag", [
    ("accel", "--accel"), ("val_fraction", "--val-fraction"), ("from_", "--from"), ("from_hw", "--from"),
    ("to_hw", "--to"), ("fmt", "--format"), ("mask_kind", "--mask"), ("lambda_", "--lambda"), ("val_inputs", "--val"),
])
def test_flag_names(param, flag):
    assert flag_name(param) == flag


def test_cli_text_renders_parameter_references_only():
    assert cli_text("needs a mask kind (`mask_kind`)") == "needs a mask kind (--mask)"
    # commands and other backticked text with spaces or capitals stay as they are
    assert cli_text("run `mrdiff models download org/x` or `hf auth login`") == \
        "run `mrdiff models download org/x` or `hf auth login`"


# ------------------------------------------------------------------------------------------------ (a) library, (b) CLI


def test_superres_options_name_the_parameter(tiny_nifti_file, tmp_path):
    from mrdiff_cli.tasks.superres import SuperresOptions

    with pytest.raises(UsageError) as info:
        SuperresOptions(samples=0)
    library_error(info.value, "samples")
    line = flag_line(cli("superres", tiny_nifti_file, "--from", 16, "--to", 32, "-o", tmp_path / "s.nii.gz",
                         "--samples", 0), "--samples")
    assert line.endswith(info.value.message)


def test_superres_matrices_name_the_parameter(tiny_nifti_file, tmp_path):
    from mrdiff_cli.tasks.superres import parse_matrix, plan_resolution

    with pytest.raises(UsageError) as info:
        plan_resolution((32, 32), (32, 32), (32, 32))
    text = library_error(info.value, "from_hw")
    assert "`to_hw`" in text
    line = flag_line(cli("superres", tiny_nifti_file, "--from", 32, "--to", 32, "-o", tmp_path / "s.nii.gz"), "--from")
    assert "must be smaller than --to 32x32" in line
    with pytest.raises(UsageError) as info:
        parse_matrix("64y", "to_hw")
    library_error(info.value, "to_hw")
    flag_line(cli("superres", tiny_nifti_file, "--from", 16, "--to", "64y", "-o", tmp_path / "s.nii.gz"), "--to")


def test_slices_name_the_parameter(tiny_nifti_file, tmp_path):
    from mrdiff_cli.types import SliceSpec

    with pytest.raises(UsageError) as info:
        SliceSpec.parse("1:x")
    library_error(info.value, "slices")
    spec = SliceSpec.parse("5")
    assert spec is not None
    with pytest.raises(UsageError) as info:
        spec.indices(2)
    library_error(info.value, "slices")
    flag_line(cli("superres", tiny_nifti_file, "--from", 16, "--to", 32, "-o", tmp_path / "s.nii.gz",
                  "--slices", "1:x"), "--slices")


def test_simulate_names_the_parameters(tmp_path):
    from mrdiff_cli.tasks.simulate import simulate_volume

    vol = np.ones((1, 16, 16), np.float32)
    with pytest.raises(UsageError) as info:
        simulate_volume(vol, matrix=None, accel=4.0)
    assert "`mask_kind`" in library_error(info.value, "accel")
    line = flag_line(cli("simulate", "example", "-o", tmp_path / "s.h5", "--accel", 4), "--accel")
    assert line.endswith("needs a mask kind (--mask)")
    with pytest.raises(UsageError) as info:
        simulate_volume(vol, matrix=None, coils=0)
    library_error(info.value, "coils")
    flag_line(cli("simulate", "example", "-o", tmp_path / "s.h5", "--coils", 0), "--coils")
    assert not list(tmp_path.iterdir())


def test_model_spec_names_the_parameter(tmp_path, monkeypatch, tiny_nifti_file):
    from mrdiff_cli.priors.hub import parse_model_spec

    monkeypatch.chdir(tmp_path)
    (tmp_path / "weights.pt").write_bytes(b"x")
    with pytest.raises(ModelError) as info:
        parse_model_spec("weights.pt")
    library_error(info.value, "model")
    flag_line(cli("superres", tiny_nifti_file, "--from", 16, "--to", 32, "-o", tmp_path / "s.nii.gz", "--model",
                  "weights.pt"), "--model")


def test_train_data_split_names_the_parameter():
    from mrdiff_cli.tasks.train_data import split_volumes

    with pytest.raises(InputError) as info:
        split_volumes([Path("a.nii.gz")], 0.5)
    text = library_error(info.value, "val_fraction")
    assert "`val_inputs`" in text
    assert cli_text(text).startswith("--val-fraction: ") and "(--val)" in cli_text(text)


def test_existing_output_names_overwrite(tmp_path):
    from mrdiff_cli.io.atomic import check_output_path

    out = tmp_path / "o.nii.gz"
    out.write_bytes(b"x")
    with pytest.raises(MrdiffError) as info:
        check_output_path(out, False)
    assert "--" not in str(info.value) and "`overwrite`" in str(info.value)
    assert cli_text(str(info.value)).endswith("output exists (use --overwrite to replace it)")


def test_reconstruction_errors_name_the_parameter(tiny_fastmri_file, tmp_path):
    from mrdiff_cli.tasks.recon_job import parse_shard
    from mrdiff_cli.tasks.reconstruct import choose_coil_mode

    with pytest.raises(UsageError) as info:
        parse_shard("2/2")
    assert library_error(info.value, "shard") == "`shard`: '2/2': need 0 <= I < N"
    with pytest.raises(UsageError) as info:
        parse_shard("x")
    library_error(info.value, "shard")
    zf = ["--method", "zero-filled", "--mask", "equispaced", "--accel", 4]
    line = flag_line(cli("reconstruct", tiny_fastmri_file, "-o", tmp_path / "r.nii.gz", *zf, "--shard", "2/2"), "--shard")
    assert line.endswith("'2/2': need 0 <= I < N")
    with pytest.raises(UsageError) as info:
        choose_coil_mode("single", 4)
    assert "single-coil data" in library_error(info.value, "coil_mode")
    with pytest.raises(UsageError) as info:
        choose_coil_mode("nope", 4)
    library_error(info.value, "coil_mode")
    line = flag_line(cli("reconstruct", tiny_fastmri_file, "-o", tmp_path / "r.nii.gz", *zf, "--coil-mode", "single"),
                     "--coil-mode")
    assert line.endswith("single needs single-coil data (this scan has 4 coils)")
    line = flag_line(cli("reconstruct", tiny_fastmri_file, "-o", tmp_path / "r.nii.gz", "--method", "sense",
                         "--mask", "equispaced", "--accel", 4, "--samples", 2), "--samples")
    assert line.endswith("needs --method diffusion")
    line = flag_line(cli("reconstruct", tiny_fastmri_file, "-o", tmp_path / "r.nii.gz", "--method", "sense",
                         "--mask", "equispaced"), "--mask")
    assert line.endswith("needs --accel R")
    res = cli("reconstruct", tiny_fastmri_file, "-o", tmp_path / "r.nii.gz", "--method", "zero-filled")
    assert res.exit_code == 2 and "pass --mask KIND --accel R to undersample it retrospectively" in res.stderr
    assert not list(tmp_path.iterdir())


def test_reconstruction_options_name_the_parameter():
    from mrdiff_cli.tasks.reconstruct import ReconOptions, resolve_device

    for field in ("method", "sampler", "coil_mode", "complex_mode", "noise_dc"):
        with pytest.raises(UsageError) as info:
            ReconOptions(**{field: "nope"})
        library_error(info.value, field)
    assert cli_text(str(UsageError("x", option="noise_dc"))) == "--noise-consistency: x"
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(UsageError) as info:
            resolve_device("cuda")
        assert library_error(info.value, "device") == "`device`: cuda: CUDA is not available on this machine"


def test_recon_warnings_show_flags(tiny_fastmri_undersampled_file, tmp_path):
    """Library warnings name parameters in backticks too; the CLI shows them as flags."""
    res = cli("reconstruct", tiny_fastmri_undersampled_file, "-o", tmp_path / "r.nii.gz", "--method", "zero-filled",
              "--mask", "equispaced", "--accel", 2, "--acs", 4)
    assert res.exit_code == 0, res.stderr
    assert "is already undersampled; --mask equispaced is applied on top of its own pattern" in res.stderr
    assert "`" not in res.stderr


# ------------------------------------------------------------------------------------------------ no flags below cli/

# files that still build flag-naming messages (not converted yet); remove a file from here when its messages follow
# the convention
NOT_CONVERTED: set[str] = set()


def _error_texts(tree: ast.AST):
    """(line, text) of every string literal in the arguments of a call of ``…Error(…)`` (raised or returned)."""
    for node in ast.walk(tree):
        func = node.func if isinstance(node, ast.Call) else None
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if isinstance(node, ast.Call) and name.endswith("Error"):
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                for sub in ast.walk(arg):
                    if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                        yield sub.lineno, sub.value


def test_no_library_error_names_a_flag():
    root = Path(mrdiff_cli.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("cli/") or rel in NOT_CONVERTED:
            continue
        for line, text in _error_texts(ast.parse(path.read_text(), str(path))):
            if "--" in text and any(c.isalpha() for c in text.split("--", 1)[1][:1]):
                found.append(f"{rel}:{line}: {text!r}")
    assert not found, "library errors naming flags (use option= / `name`):\n" + "\n".join(found)


# ------------------------------------------------------------------------------------------------ frozen options


def test_superres_options_are_built_once_and_frozen():
    from mrdiff_cli.tasks.superres import DEFAULT_STEPS, SuperresOptions

    opts = SuperresOptions()
    assert opts.steps == DEFAULT_STEPS["fast"]  # resolved when built
    assert SuperresOptions(sampler="vdm").steps == DEFAULT_STEPS["vdm"]
    with pytest.raises(FrozenInstanceError):
        opts.steps = 3  # type: ignore[misc]
    assert replace(opts, device="cuda").steps == opts.steps and opts.device == "cpu"
    assert replace(opts, sampler="vdm", steps=None).steps == DEFAULT_STEPS["vdm"]
    with pytest.raises(UsageError) as info:  # a replaced one is checked again
        replace(opts, guidance=2.0)
    assert info.value.option == "guidance"


def test_superres_job_is_frozen(tmp_path):
    from mrdiff_cli.tasks.superres import SuperresJob

    job = SuperresJob(input="in.nii.gz", output=str(tmp_path / "o.nii.gz"), from_hw=(16, 16), to_hw=(32, 32))
    with pytest.raises(FrozenInstanceError):
        job.overwrite = True  # type: ignore[misc]
