"""``cairn data``: version files and folders, see what changed, bring a version back."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from cairn.backends import open_artifact_store
from cairn.cli.context import session
from cairn.cli.output import (
    byte_progress,
    console,
    errors,
    format_size,
    format_time,
    print_json,
    table,
)
from cairn.config import load_settings
from cairn.core.data import LinkMode
from cairn.core.data_codec import data_version_to_dict
from cairn.data.remotes import add_remote, read_remotes
from cairn.errors import InvalidInput
from cairn.session import workspace

if TYPE_CHECKING:  # imported by the commands that run: every other command starts faster
    from cairn.core.ports import ArtifactStore
    from cairn.data.diff import TableChange
    from cairn.data.service import DataService

app = typer.Typer(help="Data versioning: snapshots of files and folders.", no_args_is_help=True)

Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
Db = Annotated[
    str | None, typer.Option(help="The metadata database (default: the embedded store).")
]
Ref = Annotated[
    str, typer.Argument(help="NAME@VERSION, NAME@latest, NAME, or NAME@<digest prefix>.")
]


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
    link: Annotated[
        LinkMode,
        typer.Option(
            help="copy; or link files of 1 MiB and more into the local store: reflink "
            "(copy-on-write, where the file system can) or hardlink (the files become "
            "read-only; copied where that stops nothing, as for root)."
        ),
    ] = LinkMode.COPY,
    db: Db = None,
    json: Json = False,
) -> None:
    """Snapshot a file or folder as a new version (unchanged data makes none); its tables
    (CSV, TSV, Parquet) are profiled: `cairn data profile` shows what was found."""
    service = _service(db)
    with byte_progress(f"adding {path}", None, enabled=console.is_terminal and not json) as step:
        added = service.add(path, name, message, project, step, not no_profile, link)
    _warn(added.warnings)
    if json:
        shown = data_version_to_dict(added.version)
        print_json({**shown, "created": added.created, "read": added.read, "linked": added.linked})
        return
    v = added.version
    what = "new version" if added.created else "unchanged: still"
    linked = f", {added.linked} linked" if link != LinkMode.COPY else ""
    console.print(
        f"{what} {v.ref} ({v.files} files, {format_size(v.bytes)}; {added.read} read"
        f"{linked}); cairn.lock updated"
    )


def _warn(warnings: tuple[str, ...]) -> None:
    for warning in warnings:
        errors.print(f"[yellow]warning:[/] {escape(warning)}")


@app.command("profile")
def profile(
    ref: Ref,
    path: Annotated[str | None, typer.Argument(help="One table of the version.")] = None,
    db: Db = None,
    json: Json = False,
) -> None:
    """The profile of a version's tables: rows, and per column its type, missing rate,
    range and most frequent values."""
    service = _service(db)
    version = service.version(ref)
    tables = service.profile(version)["tables"]
    if path is not None:
        if path not in tables:
            raise InvalidInput(f"path {path!r}: not a profiled table of {version.ref}")
        tables = {path: tables[path]}
    if json:
        print_json(tables)
        return
    for table_path, found in tables.items():
        if "error" in found:
            console.print(f"{escape(table_path)}: not profiled: {escape(found['error'])}")
            continue
        rows = [
            (c["name"], c["type"], f"{c['missing_rate']:.1%}", c.get("min"), c.get("max"),
             _top(c.get("categories")))
            for c in found["columns"]
        ]  # fmt: skip
        title = f"{version.ref} {table_path}: {found['rows']:,} rows"
        table(title, ("column", "type", "missing", "min", "max", "most frequent"), rows)


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
    found = _service(db).status(name)
    if json:
        print_json([dataclasses.asdict(s) for s in found])
        return
    if not found:
        console.print("no datasets tracked here (cairn data add PATH starts one)")
    for s in found:
        if s.clean:
            console.print(f"{s.name}@{s.version} ({s.path}): up to date")
            continue
        console.print(
            f"{s.name}@{s.version} ({s.path}): {len(s.added)} added, "
            f"{len(s.modified)} modified, {len(s.deleted)} deleted"
        )
        for label, paths in (("added", s.added), ("modified", s.modified), ("deleted", s.deleted)):
            for p in paths[:20]:
                console.print(f"  {label}: {p}")
            if len(paths) > 20:
                console.print(f"  … and {len(paths) - 20} more {label}")


@app.command("log")
def log(name: str, db: Db = None, json: Json = False) -> None:
    """A dataset's versions, newest first."""
    versions = _service(db).log(name)
    if json:
        print_json([data_version_to_dict(v) for v in versions])
        return
    rows = [
        (
            v.version,
            format_time(v.created_at),
            v.created_by,
            v.files,
            format_size(v.bytes),
            v.digest[7:19],
            v.message,
        )
        for v in versions
    ]
    table(
        f"Versions of {name}",
        ("version", "created", "by", "files", "size", "digest", "message"),
        rows,
    )


@app.command("list")
def list_datasets(db: Db = None, json: Json = False) -> None:
    """Every dataset and its newest version."""
    versions = _service(db).datasets()
    if json:
        print_json([data_version_to_dict(v) for v in versions])
        return
    rows = [
        (
            v.dataset,
            v.version,
            v.project,
            v.kind.value,
            v.files,
            format_size(v.bytes),
            format_time(v.created_at),
        )
        for v in versions
    ]
    table("Datasets", ("name", "latest", "project", "kind", "files", "size", "created"), rows)


@app.command("ls")
def ls(
    ref: Ref,
    path: Annotated[str, typer.Argument(help="Only files at or below this path.")] = "",
    db: Db = None,
    json: Json = False,
) -> None:
    """The files of a version."""
    version, entries = _service(db).ls(ref, path)
    if json:
        print_json([{"path": e.path, "digest": e.digest, "size": e.size} for e in entries])
        return
    rows = [(e.path, format_size(e.size), e.digest[7:19]) for e in entries]
    table(f"{version.ref} ({version.path})", ("path", "size", "digest"), rows)


@app.command("diff")
def diff(before: Ref, after: Ref, db: Db = None, json: Json = False) -> None:
    """What changed between two versions: files, and columns and rows of tables."""
    found = _service(db).diff(before, after)
    if json:
        print_json({**dataclasses.asdict(found), "tables": [_table_dict(t) for t in found.tables]})
        return
    console.print(
        f"{found.before} → {found.after}: {len(found.added)} added, {len(found.removed)} "
        f"removed, {len(found.modified)} modified, {found.unchanged} unchanged"
    )
    for label, paths in (
        ("added", found.added),
        ("removed", found.removed),
        ("modified", found.modified),
    ):
        for path in paths[:20]:
            console.print(f"  {label}: {path}")
        if len(paths) > 20:
            console.print(f"  … and {len(paths) - 20} more {label}")
    for table_change in found.tables:
        console.print(f"  table {table_change.path}: {_table_line(table_change)}")


def _table_dict(change: TableChange) -> dict[str, Any]:
    before, after = change.before, change.after
    return {
        "path": change.path,
        "rows_before": before.rows if before else None,
        "rows_after": after.rows if after else None,
        "columns_added": change.columns_added,
        "columns_removed": change.columns_removed,
        "columns_retyped": {c: list(types) for c, types in change.columns_retyped.items()},
        "errors": [side.error for side in (before, after) if side and side.error],
    }


def _table_line(change: TableChange) -> str:
    before, after = change.before, change.after
    unreadable = [side.error for side in (before, after) if side and side.error]
    if unreadable:
        return f"not readable as a table ({unreadable[0]})"
    if before is None or after is None:
        shape = after or before
        assert shape is not None  # one side exists
        state = "new" if before is None else "removed"
        return f"{state}, {shape.rows:,} rows, {len(shape.columns)} columns"
    parts = [f"rows {before.rows:,} → {after.rows:,}"]
    if change.columns_added:
        parts.append(f"columns added: {', '.join(change.columns_added)}")
    if change.columns_removed:
        parts.append(f"columns removed: {', '.join(change.columns_removed)}")
    for column, (old, new) in change.columns_retyped.items():
        parts.append(f"{column}: {old} → {new}")
    return "; ".join(parts)


@app.command("checkout")
def checkout(
    ref: Ref,
    to: Annotated[
        Path | None, typer.Option(help="Write it here instead of where it was added from.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite local changes.")] = False,
    link: Annotated[
        LinkMode,
        typer.Option(
            help="copy; or link files of 1 MiB and more to the local store: reflink "
            "(copy-on-write, where the file system can) or hardlink (read-only files; "
            "copied where that stops nothing, as for root)."
        ),
    ] = LinkMode.COPY,
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
    found = read_remotes(workspace(load_settings()))
    rows = [(n, u, "yes" if n == found.default else "") for n, u in sorted(found.urls.items())]
    if json:
        print_json([{"name": n, "url": u, "default": d == "yes"} for n, u, d in rows])
        return
    table("Data remotes", ("name", "url", "default"), rows)


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
    force: Annotated[bool, typer.Option("--force", help="Overwrite local changes.")] = False,
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
    done = session(db).collect_garbage(dry_run, grace_minutes * 60)
    if json:
        print_json(dataclasses.asdict(done))
        return
    verb = "would remove" if dry_run else "removed"
    console.print(f"{verb} {done.removed} objects ({format_size(done.bytes)}); kept {done.kept}")


def _remote(service: DataService, name: str | None) -> tuple[str, ArtifactStore]:
    chosen, url = read_remotes(service.workspace).url(name)
    return chosen, open_artifact_store(url)
