"""``cairn data``: version files and folders, see what changed, bring a version back."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from cairn.backends import open_artifact_store
from cairn.cli.context import session
from cairn.cli.options import DataRef, Db, Json
from cairn.cli.output import byte_progress, console, errors, format_size, format_time
from cairn.cli.report import Line, Report, Table, View, render
from cairn.config import load_settings
from cairn.core.data import LinkMode
from cairn.core.data_codec import data_version_to_dict
from cairn.data.remotes import add_remote, read_remotes
from cairn.errors import InvalidInput
from cairn.session import workspace

if TYPE_CHECKING:  # imported by the commands that run: every other command starts faster
    from cairn.core.ports import ArtifactStore
    from cairn.data.diff import TableChange
    from cairn.data.gc import Collected
    from cairn.data.service import Added, DataService

app = typer.Typer(help="Data versioning: snapshots of files and folders.", no_args_is_help=True)

Link = Annotated[
    LinkMode,
    typer.Option(
        help="copy; or link files of 1 MiB and more to the local store: reflink "
        "(copy-on-write, where the file system can) or hardlink (the files become "
        "read-only; copied where that stops nothing, as for root)."
    ),
]
Force = Annotated[bool, typer.Option("--force", help="Overwrite local changes.")]
_SHOWN_PATHS = 20  # of each kind of change, before "… and N more"


def _service(db: str | None) -> DataService:
    return session(db).data


@app.command("add")
def add(
    path: Annotated[Path, typer.Argument(help="A file or a folder.")],
    name: Annotated[
        str | None, typer.Option(help="The dataset (default: the path's name).")
    ] = None,
    message: Annotated[str, typer.Option("--message", "-m", help="What this version is.")] = "",
    project: Annotated[str, typer.Option(help="The project of a new dataset.")] = "default",
    no_profile: Annotated[
        bool, typer.Option("--no-profile", help="Do not profile its tables (CSV, Parquet).")
    ] = False,
    link: Link = LinkMode.COPY,
    db: Db = None,
    json: Json = False,
) -> None:
    """Snapshot a file or folder as a new version (unchanged data makes none); its tables
    (CSV, TSV, Parquet) are profiled: `cairn data profile` shows what was found."""
    service = _service(db)
    with byte_progress(f"adding {path}", None, enabled=console.is_terminal and not json) as step:
        added = service.add(path, name, message, project, step, not no_profile, link)
    _warn(added.warnings)
    render(add_report(added, link), json)


def add_report(added: Added, link: LinkMode = LinkMode.COPY) -> Report[dict[str, Any]]:
    """The version an add made (or found unchanged), how much it read and linked."""
    shown = data_version_to_dict(added.version)
    data = {**shown, "created": added.created, "read": added.read, "linked": added.linked,
            "link": link.value}  # fmt: skip
    return Report(data, _add_views)


def _add_views(v: Mapping[str, Any]) -> Iterator[View]:
    what = "new version" if v["created"] else "unchanged: still"
    linked = f", {v['linked']} linked" if v["link"] != LinkMode.COPY.value else ""
    yield Line(
        f"{what} {v['ref']} ({v['files']} files, {format_size(v['bytes'])}; {v['read']} read"
        f"{linked}); cairn.lock updated"
    )


def _warn(warnings: tuple[str, ...]) -> None:
    for warning in warnings:
        errors.print(f"[yellow]warning:[/] {escape(warning)}")


@app.command("profile")
def profile(
    ref: DataRef,
    path: Annotated[str | None, typer.Argument(help="One table of the version.")] = None,
    db: Db = None,
    json: Json = False,
) -> None:
    """The profile of a version's tables: rows, and per column its type, missing rate,
    range and most frequent values."""
    render(profile_report(_service(db), ref, path), json)


def profile_report(
    service: DataService, ref: str, path: str | None = None
) -> Report[dict[str, Any]]:
    """The profiles of a version's tables (or of one), by path.

    Raises:
        InvalidInput: ``path`` is not a profiled table of the version.
    """
    version = service.version(ref)
    tables = service.profile(version)["tables"]
    if path is not None:
        if path not in tables:
            raise InvalidInput(f"path {path!r}: not a profiled table of {version.ref}")
        tables = {path: tables[path]}
    return Report(tables, partial(_profile_views, version.ref))


def _profile_views(ref: str, tables: Mapping[str, Any]) -> Iterator[View]:
    for table_path, found in tables.items():
        if "error" in found:
            yield Line(f"{table_path}: not profiled: {found['error']}")
            continue
        rows = [
            (c["name"], c["type"], f"{c['missing_rate']:.1%}", c.get("min"), c.get("max"),
             _top(c.get("categories")))
            for c in found["columns"]
        ]  # fmt: skip
        title = f"{ref} {table_path}: {found['rows']:,} rows"
        yield Table(title, ("column", "type", "missing", "min", "max", "most frequent"), rows)


def _top(categories: dict[str, int] | None) -> str | None:
    if not categories:
        return None
    return ", ".join(f"{value} ({count:,})" for value, count in list(categories.items())[:3])


@app.command("status")
def status(
    name: Annotated[
        str | None, typer.Argument(help="One dataset (default: every one in cairn.lock).")
    ] = None,
    db: Db = None,
    json: Json = False,
) -> None:
    """What changed in the working copy since the versions cairn.lock names."""
    render(status_report(_service(db), name), json)


def status_report(service: DataService, name: str | None = None) -> Report[list[dict[str, Any]]]:
    """Per dataset in cairn.lock (or one): the files added, modified and deleted since."""
    return Report([dataclasses.asdict(s) for s in service.status(name)], _status_views)


def _status_views(found: list[dict[str, Any]]) -> Iterator[View]:
    if not found:
        yield Line("no datasets tracked here (cairn data add PATH starts one)")
    for s in found:
        where = f"{s['name']}@{s['version']} ({s['path']})"
        if not (s["added"] or s["modified"] or s["deleted"]):
            yield Line(f"{where}: up to date")
            continue
        yield Line(
            f"{where}: {len(s['added'])} added, {len(s['modified'])} modified, "
            f"{len(s['deleted'])} deleted"
        )
        yield from _changed_paths(s, ("added", "modified", "deleted"))


def _changed_paths(change: Mapping[str, Any], labels: Sequence[str]) -> Iterator[View]:
    """Each changed path under its label, a few of each kind."""
    for label in labels:
        paths = change[label]
        for path in paths[:_SHOWN_PATHS]:
            yield Line(f"  {label}: {path}")
        if len(paths) > _SHOWN_PATHS:
            yield Line(f"  … and {len(paths) - _SHOWN_PATHS} more {label}")


@app.command("log")
def log(name: str, db: Db = None, json: Json = False) -> None:
    """A dataset's versions, newest first."""
    render(log_report(_service(db), name), json)


def log_report(service: DataService, name: str) -> Report[list[dict[str, Any]]]:
    """A dataset's versions, newest first."""
    versions = [data_version_to_dict(v) for v in service.log(name)]
    return Report(versions, partial(_log_views, name))


def _log_views(name: str, versions: list[dict[str, Any]]) -> Iterator[View]:
    rows = [
        (v["version"], format_time(v["created_at"]), v["created_by"], v["files"],
         format_size(v["bytes"]), v["digest"][7:19], v["message"])
        for v in versions
    ]  # fmt: skip
    columns = ("version", "created", "by", "files", "size", "digest", "message")
    yield Table(f"Versions of {name}", columns, rows)


@app.command("list")
def list_datasets(db: Db = None, json: Json = False) -> None:
    """Every dataset and its newest version."""
    render(list_report(_service(db)), json)


def list_report(service: DataService) -> Report[list[dict[str, Any]]]:
    """Every dataset's newest version."""
    return Report([data_version_to_dict(v) for v in service.datasets()], _list_views)


def _list_views(versions: list[dict[str, Any]]) -> Iterator[View]:
    rows = [
        (v["dataset"], v["version"], v["project"], v["kind"], v["files"],
         format_size(v["bytes"]), format_time(v["created_at"]))
        for v in versions
    ]  # fmt: skip
    columns = ("name", "latest", "project", "kind", "files", "size", "created")
    yield Table("Datasets", columns, rows)


@app.command("ls")
def ls(
    ref: DataRef,
    path: Annotated[str, typer.Argument(help="Only files at or below this path.")] = "",
    db: Db = None,
    json: Json = False,
) -> None:
    """The files of a version."""
    render(ls_report(_service(db), ref, path), json)


def ls_report(service: DataService, ref: str, path: str = "") -> Report[list[dict[str, Any]]]:
    """A version's files (at or below a path)."""
    version, entries = service.ls(ref, path)
    files = [{"path": e.path, "digest": e.digest, "size": e.size} for e in entries]
    return Report(files, partial(_ls_views, f"{version.ref} ({version.path})"))


def _ls_views(title: str, files: list[dict[str, Any]]) -> Iterator[View]:
    rows = [(f["path"], format_size(f["size"]), f["digest"][7:19]) for f in files]
    yield Table(title, ("path", "size", "digest"), rows)


@app.command("diff")
def diff(before: DataRef, after: DataRef, db: Db = None, json: Json = False) -> None:
    """What changed between two versions: files, and columns and rows of tables."""
    render(diff_report(_service(db), before, after), json)


def diff_report(service: DataService, before: str, after: str) -> Report[dict[str, Any]]:
    """The files added, removed and modified between two versions, and per table that
    changed, its rows and columns before and after."""
    found = service.diff(before, after)
    data = {**dataclasses.asdict(found), "tables": [_table_dict(t) for t in found.tables]}
    return Report(data, _diff_views)


def _table_dict(change: TableChange) -> dict[str, Any]:
    before, after = change.before, change.after
    return {
        "path": change.path,
        "rows_before": before.rows if before else None,
        "rows_after": after.rows if after else None,
        "columns_before": dict(before.columns) if before else None,
        "columns_after": dict(after.columns) if after else None,
        "columns_added": change.columns_added,
        "columns_removed": change.columns_removed,
        "columns_retyped": {c: list(types) for c, types in change.columns_retyped.items()},
        "errors": [side.error for side in (before, after) if side and side.error],
    }


def _diff_views(found: Mapping[str, Any]) -> Iterator[View]:
    yield Line(
        f"{found['before']} → {found['after']}: {len(found['added'])} added, "
        f"{len(found['removed'])} removed, {len(found['modified'])} modified, "
        f"{found['unchanged']} unchanged"
    )
    yield from _changed_paths(found, ("added", "removed", "modified"))
    for change in found["tables"]:
        yield Line(f"  table {change['path']}: {_table_line(change)}")


def _table_line(change: Mapping[str, Any]) -> str:
    if change["errors"]:
        return f"not readable as a table ({change['errors'][0]})"
    rows_before, rows_after = change["rows_before"], change["rows_after"]
    if rows_before is None or rows_after is None:
        state, side = ("new", "after") if rows_before is None else ("removed", "before")
        rows, columns = change[f"rows_{side}"], change[f"columns_{side}"]
        return f"{state}, {rows:,} rows, {len(columns)} columns"
    parts = [f"rows {rows_before:,} → {rows_after:,}"]
    if change["columns_added"]:
        parts.append(f"columns added: {', '.join(change['columns_added'])}")
    if change["columns_removed"]:
        parts.append(f"columns removed: {', '.join(change['columns_removed'])}")
    for column, (old, new_type) in change["columns_retyped"].items():
        parts.append(f"{column}: {old} → {new_type}")
    return "; ".join(parts)


@app.command("checkout")
def checkout(
    ref: DataRef,
    to: Annotated[
        Path | None, typer.Option(help="Write it here instead of where it was added from.")
    ] = None,
    force: Force = False,
    link: Link = LinkMode.COPY,
    db: Db = None,
) -> None:
    """Bring a version's files back; never overwrites local changes without --force."""
    service = _service(db)
    version = service.version(ref)
    with byte_progress(
        f"checking out {version.ref}", version.bytes, enabled=console.is_terminal
    ) as step:
        done = service.checkout(ref, to, force, step, link)
    _warn(done.warnings)
    linked = f" ({done.linked} linked)" if link != LinkMode.COPY else ""
    console.print(
        f"{done.version.ref} at {done.target}: {done.written} written{linked}, "
        f"{done.unchanged} already there, {done.removed} removed"
    )


remote = typer.Typer(help="Where push sends data and pull fetches it from.", no_args_is_help=True)
app.add_typer(remote, name="remote")
RemoteName = Annotated[
    str | None, typer.Option("--remote", "-r", help="A remote's name (default: the default one).")
]
Refs = Annotated[
    list[str] | None,
    typer.Argument(help="Versions (NAME@VERSION …); default: those cairn.lock names."),
]


@remote.command("add")
def remote_add(
    name: str,
    url: Annotated[str, typer.Argument(help="A folder, or s3://BUCKET/PREFIX.")],
    default: Annotated[bool, typer.Option("--default", help="Make it the default.")] = False,
) -> None:
    """Name a remote in cairn.yaml (commit it to share it)."""
    add_remote(workspace(load_settings()), name, url, default)
    console.print(f"remote {name} → {url}{' (default)' if default else ''}")


@remote.command("list")
def remote_list(json: Json = False) -> None:
    """The remotes cairn.yaml names."""
    render(remotes_report(workspace(load_settings())), json)


def remotes_report(folder: Path) -> Report[list[dict[str, Any]]]:
    """The remotes the cairn.yaml of a working copy names, and which is the default."""
    found = read_remotes(folder)
    remotes = [
        {"name": name, "url": url, "default": name == found.default}
        for name, url in sorted(found.urls.items())
    ]
    return Report(remotes, _remotes_views)


def _remotes_views(remotes: list[dict[str, Any]]) -> Iterator[View]:
    rows = [(r["name"], r["url"], "yes" if r["default"] else "") for r in remotes]
    yield Table("Data remotes", ("name", "url", "default"), rows)


@app.command("push")
def push(refs: Refs = None, remote_name: RemoteName = None, db: Db = None) -> None:
    """Send data versions to a remote: only the objects it lacks."""
    service = _service(db)
    name, store = _remote(service, remote_name)
    with byte_progress(f"pushing to {name}", None, enabled=console.is_terminal) as step:
        moved = service.push(refs or [], store, step)
    console.print(
        f"pushed {moved.objects} objects ({format_size(moved.bytes)}) to {name}; "
        f"{moved.present} were there already"
    )


@app.command("pull")
def pull(
    refs: Refs = None,
    remote_name: RemoteName = None,
    db: Db = None,
    force: Force = False,
) -> None:
    """Fetch data versions from a remote (only what is missing), then check them out."""
    service = _service(db)
    name, store = _remote(service, remote_name)
    wanted = service.refs_or_locked(refs or [])
    with byte_progress(f"pulling from {name}", None, enabled=console.is_terminal) as step:
        moved = service.fetch(wanted, store, step)
    console.print(
        f"fetched {moved.objects} objects ({format_size(moved.bytes)}) from {name}; "
        f"{moved.present} were here already"
    )
    for ref in wanted:
        done = service.checkout(ref, force=force)
        _warn(done.warnings)
        console.print(f"{done.version.ref} at {done.target}: {done.written} written")


@app.command("gc")
def gc(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would go.")] = False,
    grace_minutes: Annotated[
        float, typer.Option(help="Keep objects stored this recently, whatever refers to them.")
    ] = 60.0,
    db: Db = None,
    json: Json = False,
) -> None:
    """Remove stored objects that no data version and no run artifact refers to."""
    if grace_minutes < 0:
        raise InvalidInput("--grace-minutes: expected 0 or more")
    render(gc_report(session(db).collect_garbage(dry_run, grace_minutes * 60)), json)


def gc_report(done: Collected) -> Report[dict[str, Any]]:
    """How many stored objects a collection removed (or would), and kept."""
    return Report(dataclasses.asdict(done), _gc_views)


def _gc_views(done: Mapping[str, Any]) -> Iterator[View]:
    verb = "would remove" if done["dry_run"] else "removed"
    yield Line(f"{verb} {done['removed']} objects ({format_size(done['bytes'])}); "
               f"kept {done['kept']}")  # fmt: skip


def _remote(service: DataService, name: str | None) -> tuple[str, ArtifactStore]:
    chosen, url = read_remotes(service.workspace).url(name)
    return chosen, open_artifact_store(url)
