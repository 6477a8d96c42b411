"""doorfix config files pointing at a served sandbox (``ServedSandbox.urls``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def write_config(
    path: Path, urls: Mapping[str, str], journal: Path, extra: str = "", *, http: str = ""
) -> Path:
    """Write a config file to ``path``; the path.

    The three systems at ``urls`` (each section with the ``http`` keys), the journal file
    ``journal``, then the ``extra`` TOML.
    """
    path.write_text(
        f"""
[cloud]
base_url = "{urls["cloud"]}"
{http}
[aca]
base_url = "{urls["aca"]}"
{http}
[clp]
base_url = "{urls["clp"]}"
identity_url = "{urls["clp_identity"]}"
{http}
[journal]
path = "{journal}"
{extra}
""",
        encoding="utf-8",
    )
    return path
