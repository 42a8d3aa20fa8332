"""The Hub model card (README.md) of a bundle, built with huggingface_hub's ``ModelCard`` / ``ModelCardData``:
YAML front matter (``library_name: mrdiff``, tags, license) and a body generated from config.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..format import bundle_tasks

BASE_TAGS = ("mri", "diffusion", "medical-imaging", "mrdiff")
TASK_TAGS = {"score": ["score-based", "mri-reconstruction"], "vdm": ["vdm", "super-resolution"]}
TASK_TEXT = {
    "score": "score network for diffusion-prior reconstruction of undersampled k-space and uncertainty maps",
    "vdm": "variational diffusion model with a learned noise schedule, for super-resolution",
}
STANDARD_LIMITATIONS = (
    "Research use only. Not a medical device; do not use for diagnosis or treatment decisions.",
    "Trained at {h}x{w}. Data at other matrix sizes must be cropped/padded in k-space to this size; "
    "quality there has not been validated.",
    "A diffusion prior can hallucinate plausible structure, especially at high acceleration or on "
    "anatomy, contrast or field strength unlike its training data; check the uncertainty maps.",
)

CARD_BODY = """
# {title}

{description}

## Model

- **Task(s)**: {tasks}
- **Intended resolution**: {h} x {w}
- **Format**: mrdiff bundle v{version} (`config.json` + `model.safetensors`; no pickles)

### Architecture

{architecture}

## Training data

{training}

## Validation

{validation}

## Usage

```bash
pip install mrdiff
mrdiff models download {model}
mrdiff reconstruct <input> --model {model}    # pin exactly with {repo_id}@<commit>
```

## Intended use and limitations

{limitations}
"""


def card_tags(config: dict[str, Any]) -> list[str]:
    """Base tags, the tags of the declared task and of any extra served task, then config['tags']."""
    tags = [*BASE_TAGS, *TASK_TAGS.get(str(config.get("task")), [])]
    if "vdm" in bundle_tasks(config) and "vdm" not in tags:
        tags += TASK_TAGS["vdm"]
    extra = config.get("tags")
    if isinstance(extra, list):
        tags += [t for t in extra if isinstance(t, str) and t not in tags]
    return tags


def figures(config: dict[str, Any]) -> list[str]:
    """Figure paths listed under config['validation']['figures'] (a string or a list)."""
    validation = config.get("validation")
    figs = validation.get("figures") if isinstance(validation, dict) else None
    if isinstance(figs, str):
        figs = [figs]
    return [f for f in figs or [] if isinstance(f, str)]


def _md_value(value: Any) -> str:
    return "`" + json.dumps(value) + "`" if isinstance(value, (dict, list)) else str(value)


def _md_section(value: Any, empty: str) -> str:
    if value is None or value == {} or value == [] or value == "":
        return empty
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        return "\n".join(f"- **{k}**: {_md_value(v)}" for k, v in value.items() if k != "figures")
    if isinstance(value, list):
        return "\n".join(f"- {_md_value(v)}" for v in value)
    return str(value)


def _validation_text(config: dict[str, Any]) -> str:
    images = "\n".join(f"![{Path(fig).stem}]({fig})" for fig in figures(config))
    text = "\n\n".join(x for x in (_md_section(config.get("validation"), ""), images) if x)
    return text or "No validation results in config.json."


def _limitations_text(config: dict[str, Any], h: Any, w: Any) -> str:
    lines = [f"- {line.format(h=h, w=w)}" for line in STANDARD_LIMITATIONS]
    limits = config.get("limitations")
    if isinstance(limits, str) and limits.strip():
        lines.append(f"- {limits.strip()}")
    elif isinstance(limits, list):
        lines += [f"- {x}" for x in limits]
    return "\n".join(lines)


def _merge_metadata(existing: str, tags: list[str], license_: Any) -> str:
    """Keep an author's own card; add library name, missing tags and the license to its metadata."""
    from huggingface_hub import ModelCard

    card = ModelCard(existing)
    data: Any = card.data  # CardData: arbitrary metadata attributes
    if not getattr(data, "library_name", None):
        data.library_name = "mrdiff"
    current = list(getattr(data, "tags", None) or [])
    data.tags = current + [t for t in tags if t not in current]
    if license_ and not getattr(data, "license", None):
        data.license = license_
    return str(card)


def render_model_card(
    config: dict[str, Any], repo_id: str, *, existing: str | None = None, revision: str | None = None
) -> str:
    """A Hub model card (README.md) for a bundle: YAML front matter (``library_name: mrdiff``, tags, license)
    plus description, tasks/architecture, training data, validation figures, intended resolution and
    limitations. With ``existing`` (the folder's own README.md) its text is kept and only the metadata merged."""
    from huggingface_hub import ModelCardData

    tags, license_ = card_tags(config), config.get("license")
    if existing is not None:
        return _merge_metadata(existing, tags, license_)
    data = ModelCardData(library_name="mrdiff", tags=tags, license=license_ if isinstance(license_, str) else None)
    tasks = bundle_tasks(config)
    h, w = (config.get("resolution") or ["?", "?"])[:2]
    model = repo_id + (f"@{revision}" if revision and revision != "main" else "")
    body = CARD_BODY.format(
        title=repo_id.split("/")[-1],
        description=config.get("description") or f"An mrdiff {'/'.join(tasks)} prior for MRI.",
        tasks="; ".join(f"`{t}`: {TASK_TEXT.get(t, t)}" for t in tasks),
        h=h,
        w=w,
        version=config.get("mrdiff_bundle_version"),
        architecture=_md_section(config.get("architecture") or {}, "Not documented."),
        training=_md_section(config.get("training"), "Not documented in config.json."),
        validation=_validation_text(config),
        model=model,
        repo_id=repo_id,
        limitations=_limitations_text(config, h, w),
    )
    return f"---\n{data.to_yaml()}\n---\n{body}"


def card_body(text: str) -> str:
    """A model card without its YAML front matter (for display)."""
    from huggingface_hub import ModelCard

    try:
        return ModelCard(text, ignore_metadata_errors=True).text.lstrip("\n")
    except Exception:  # not a parseable card: show it as it is
        return text
