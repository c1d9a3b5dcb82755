"""Where a checkout may write: inside one folder (the project folder, or the one ``--to``
names), and never into a Python environment or a ``.git`` folder.

A version says where its files go (its recorded path, the names in its listings), but the
working copy decides where those names lead: a link committed with the code
(``cfg -> ~/.ssh``) would carry a checkout out of the project, and a version whose files
land in ``.venv/lib/python3.11/site-packages`` puts code in a teammate's environment that
runs whenever Python starts (a ``.pth`` file), as a file in ``.git/hooks`` runs with git.
So every folder a checkout writes into or removes from is resolved, links and all, before
anything is written, and refused if it leads out of its folder or into one of those.

Each folder is resolved once, and each folder on the way to it is looked at once: a
checkout of many files has few folders, and this costs it a few system calls per folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from cairn.data.file_error import shown
from cairn.errors import InvalidState

# What makes a folder a Python environment: a virtual environment (venv, virtualenv, uv)
# has its pyvenv.cfg at the top, a conda environment its conda-meta folder.
ENVIRONMENT_MARKERS = ("pyvenv.cfg", "conda-meta")
REPOSITORY_FOLDER = ".git"


class Fence:
    """The folders below ``inside`` a checkout may write into; ``project``: the project
    folder, whose Python environments and ``.git`` folders are out of bounds wherever a
    checkout writes into it; ``hint``: what to do about a link that leads out."""

    def __init__(self, inside: str, project: str, hint: str) -> None:
        self._inside = inside
        self._real = resolved(inside)
        self._project = resolved(project)
        self._hint = hint
        self._allowed: set[str] = set()  # real folders found to be neither

    def check(self, folders: Iterable[str]) -> None:
        """Raises:
        InvalidState: a folder leads out of ``inside`` (naming the link that takes it
            there), or into a Python environment or a ``.git`` folder (naming it).
        """
        for folder in folders:
            real = resolved(folder)
            if real in self._allowed:
                continue
            if not within(real, self._real):
                raise InvalidState(self._leads_out(folder, real))
            self._check_way(real)

    def _check_way(self, real: str) -> None:
        """Refuse ``real`` if it is, or is inside, an environment or a ``.git`` folder
        below the project folder (below ``inside``'s parent, when it is elsewhere)."""
        top = self._project if within(real, self._project) else os.path.dirname(self._real)
        path = top
        for part in os.path.relpath(real, top).split(os.sep):
            path = os.path.join(path, part)
            if path in self._allowed or part == os.curdir:
                continue
            if (what := _protected(path, part)) is not None:
                raise InvalidState(
                    f"{shown(path)}: {what}; a checkout never writes into one, whatever a "
                    "version's path or names say: check it out elsewhere with --to DIR"
                )
            self._allowed.add(path)

    def _leads_out(self, folder: str, real: str) -> str:
        where = "the project folder" if self._real == self._project else "its --to folder"
        link, target = _link_out_of(folder, self._inside, self._real) or (folder, real)
        return (
            f"{shown(link)}: a link to {shown(target)}, outside {where} "
            f"{shown(self._inside)}: a checkout writes only inside it; {self._hint}"
        )


def resolved(path: str) -> str:
    """Where ``path`` leads once the folders it will be written through exist: links
    followed, up to the first part that is not a folder (a file or a link in the way is
    removed and a real folder made in its place; a missing one is made)."""
    head, rest = path, []
    while not os.path.isdir(head) and head != os.path.dirname(head):
        head, name = os.path.split(head)
        rest.append(name)
    return os.path.join(os.path.realpath(head), *reversed(rest))


def within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _link_out_of(folder: str, inside: str, real_inside: str) -> tuple[str, str] | None:
    """The first link on the way from ``inside`` to ``folder`` that leads out of it, and
    where it leads."""
    path = inside
    for part in os.path.relpath(folder, inside).split(os.sep):
        path = os.path.join(path, part)
        if os.path.islink(path) and not within(target := resolved(path), real_inside):
            return path, target
    return None


def _protected(folder: str, name: str) -> str | None:
    """What ``folder`` (named ``name``) is, if a checkout must not write into it."""
    if name.casefold() == REPOSITORY_FOLDER:  # .GIT is .git where case is ignored
        return "a git repository's own folder (its hooks run with git)"
    for marker in ENVIRONMENT_MARKERS:
        if os.path.lexists(os.path.join(folder, marker)):
            return f"a Python environment (it holds {marker}; its files run with Python)"
    return None
