"""`mrdiff models list|download|info|push`: find, fetch, inspect and publish model bundles."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from ..priors import hub
from .common import console, handle_errors, out_console, print_json, print_table
from .options import JsonOpt, OfflineOpt

app = typer.Typer(
    help="Model bundles: list bundled and cached models, download, inspect, and publish to the Hugging Face Hub.",
    no_args_is_help=True,
)

SpecArg = Annotated[
    str,
    typer.Argument(
        help="bundled:NAME, a bundle folder, org/name or org/name@REVISION, or hf://org/name@REVISION/SUBFOLDER "
             "(revision and subfolder optional).",
        metavar="MODEL",
        show_default=False,
    ),
]


_COMMANDS = {"score": "reconstruct, uncertainty", "vdm": "superres"}  # task -> the commands that load it


def _res(value: Any) -> str:
    return f"{value[0]}x{value[1]}" if isinstance(value, (list, tuple)) and len(value) == 2 else "?"


def _warn(message: str | None) -> None:
    if message:
        console.print(f"[yellow]warning:[/yellow] {message}", highlight=False)


@app.command("list")
@handle_errors
def list_cmd(json_out: JsonOpt = False) -> None:
    """List bundled models and mrdiff models in the Hugging Face cache (no network)."""
    entries = hub.list_models()
    if json_out:
        print_json(entries)
        return
    if not entries:
        console.print(
            f"No models found (bundled: {hub.bundled_dir()}, Hugging Face cache: {hub.hf_cache_dir()}). "
            "Fetch one with `mrdiff models download org/name`.",
            highlight=False,
        )
        return
    rows = []
    for e in entries:  # the name is what a user copies into --model: its column never wraps
        spec = Text(e["spec"]) if e["complete"] else Text.assemble(e["spec"], " ", ("(no weights)", "red"))
        if e.get("default_for"):  # the commands whose default it is
            used_by = ", ".join(_COMMANDS.get(t, t) for t in e["default_for"])
            spec.append(f" (default: {used_by})", style="green")
        res = _res(e["resolution"]) + (" patches, any size" if e.get("fully_convolutional") else "")
        rows.append([spec, e["source"], ", ".join(e["tasks"]), res, e["size"], e["revision"] or "",
                     (e["commit"] or "")[:10]])
    print_table(out_console, ["Model (--model)", "Source", "Tasks", "Resolution", "Size", "Revision", "Commit"], rows,
                title="mrdiff models", no_wrap=("Model (--model)", "Resolution", "Commit"), title_justify="left")


@app.command("download")
@handle_errors
def download_cmd(spec: SpecArg, offline: OfflineOpt = False, json_out: JsonOpt = False) -> None:
    """Fetch a model from the Hub into the Hugging Face cache and validate it; prints the bundle folder."""
    rm = hub.download_model(spec, offline=offline)
    _warn(rm.warning)
    if json_out:
        print_json(rm.to_dict())
        return
    where = f" (commit {rm.commit[:10]})" if rm.commit else ""
    console.print(
        f"[green]ok[/green] {rm.name} ({rm.source}){where}: {', '.join(rm.tasks)} at {_res(rm.resolution)}",
        highlight=False,
    )
    typer.echo(str(rm.path))


@app.command("info")
@handle_errors
def info_cmd(spec: SpecArg, offline: OfflineOpt = False, json_out: JsonOpt = False) -> None:
    """Show a model's source, revision, tasks, resolution, files, config and model card."""
    info = hub.model_info(spec, offline=offline)
    _warn(info.get("warning"))
    if json_out:
        print_json(info)
        return
    rows = [
        ("name", info["name"]),
        ("source", info["source"]),
        ("pinned spec", info["spec"]),
        ("repo", info["repo_id"]),
        ("revision", info["revision"]),
        ("commit", info["commit"]),
        ("path", info["path"]),
        ("tasks", ", ".join(info["tasks"])),
        ("resolution", _res(info["resolution"])),
        ("bundle version", str(info["config"].get("mrdiff_bundle_version"))),
        ("description", info["description"]),
        ("files", ", ".join(f"{f['name']} ({hub.format_size(f['size'])})" for f in info["files"])),
    ]
    print_table(out_console, ["field", "value"], [[k, str(v)] for k, v in rows if v], show_header=False,
                no_wrap=("field",), box=None, pad_edge=False)
    arch = info["config"].get("architecture")
    if arch:
        out_console.print(f"[bold]architecture[/bold] {arch}", highlight=False)
    if info["card"]:
        from rich.markdown import Markdown  # markdown-it is only needed here

        out_console.rule("model card")
        out_console.print(Markdown(hub.card_body(info["card"])))


@app.command("push")
@handle_errors
def push_cmd(
    folder: Annotated[str, typer.Argument(
            help="Bundle folder (config.json + model.safetensors).", metavar="FOLDER", show_default=False
        )],
    repo_id: Annotated[str, typer.Argument(help="Target Hub repo, org/name.", metavar="REPO_ID", show_default=False)],
    revision: Annotated[
        str | None, typer.Option("--revision", help="Branch to push to (created if missing). Default: main.")
    ] = None,
    private: Annotated[bool, typer.Option("--private", help="Create the repo as private.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate, generate the model card and show the plan; upload nothing.")
    ] = False,
    message: Annotated[str | None, typer.Option("--message", help="Commit message.")] = None,
    token: Annotated[
        str | None,
        typer.Option("--token", help="Hub token (default: HF_TOKEN or `hf auth login`).", show_default=False),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Validate a bundle, generate its model card (README.md) and upload it to the Hugging Face Hub."""
    plan = hub.push_model(
        folder, repo_id, revision=revision, private=private, dry_run=dry_run, token=token, commit_message=message
    )
    if json_out:
        print_json(plan)
        return
    title = "Dry run: would upload" if dry_run else "Uploaded"
    print_table(out_console, ["File", "Size", "From"],
                [[f["path"], hub.format_size(f["size"]), f["source"]] for f in plan["files"]],
                title=f"{title} to {plan['repo_id']}@{plan['revision']}", no_wrap=("Size",), title_justify="left")
    if dry_run:
        out_console.rule("README.md (model card)" + (" - generated" if plan["card_generated"] else ""))
        out_console.print(plan["card"], markup=False, highlight=False)
        console.print("dry run: nothing was uploaded", highlight=False)
    else:
        console.print(f"[green]pushed[/green] {plan.get('commit_url') or plan['url']}", highlight=False)
