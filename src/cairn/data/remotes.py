"""Data remotes: where ``cairn data push`` sends objects and ``pull`` fetches them from.

They are named in the workspace's ``cairn.yaml`` (commit it, and everyone shares them)::

    data:
      remotes:
        origin: s3://ml-data/cairn
        backup: /mnt/nas/cairn
      default_remote: origin

``cairn data remote add`` rewrites that section; the file's other sections are kept, but
comments in it are not (YAML loaders drop them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cairn.config import CONFIG_FILE, read_config_document
from cairn.core.data import check_dataset_name
from cairn.core.yaml_text import dump_yaml
from cairn.errors import InvalidInput, NotFound
from cairn.localfs.atomic import write_atomically


@dataclass(frozen=True, slots=True)
class Remotes:
    urls: dict[str, str]
    default: str | None

    def url(self, name: str | None) -> tuple[str, str]:
        """The remote ``name`` (or the default one): its name and URL.

        Raises:
            NotFound: no such remote, or none given and no default set.
        """
        chosen = name or self.default
        if chosen is None:
            if len(self.urls) == 1:
                chosen = next(iter(self.urls))
            else:
                raise NotFound(
                    "no remote given and no default set: pass --remote NAME, or add one "
                    "with `cairn data remote add NAME URL --default`"
                )
        if chosen not in self.urls:
            known = ", ".join(sorted(self.urls)) or "none yet"
            raise NotFound(f"remote {chosen!r} is not configured (configured: {known})")
        return chosen, self.urls[chosen]


def read_remotes(workspace: Path) -> Remotes:
    """Raises:
    InvalidInput: cairn.yaml is unreadable, or its ``data`` section is malformed.
    """
    section = _data_section(read_config_document(workspace / CONFIG_FILE), workspace / CONFIG_FILE)
    urls = section.get("remotes") or {}
    if not isinstance(urls, dict) or not all(isinstance(u, str) for u in urls.values()):
        raise InvalidInput(f"{workspace / CONFIG_FILE}: data.remotes must map names to URLs")
    default = section.get("default_remote")
    return Remotes({str(k): v for k, v in urls.items()}, str(default) if default else None)


def add_remote(workspace: Path, name: str, url: str, default: bool = False) -> None:
    """Raises:
    InvalidInput: a bad name or an empty URL; an unreadable cairn.yaml.
    """
    check_dataset_name(name)  # the same rule: letters, digits, '.', '_', '-'
    if not url.strip():
        raise InvalidInput("url: expected a folder or s3://BUCKET/PREFIX")
    path = workspace / CONFIG_FILE
    document = read_config_document(path)
    section = _data_section(document, path)
    section.setdefault("remotes", {})[name] = url
    if default:
        section["default_remote"] = name
    document["data"] = section
    write_atomically([dump_yaml(document, sort_keys=False).encode()], path)


def _data_section(document: dict[str, Any], path: Path) -> dict[str, Any]:
    section = document.get("data") or {}
    if not isinstance(section, dict):
        raise InvalidInput(f"{path}: 'data' must be a mapping")
    return section
