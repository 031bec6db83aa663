"""Every output l3prune writes goes through here: checked first, written beside the target, then swapped in.

The rules (one place, so no command can lose a user's data):

* An existing output is replaced only with ``overwrite=True``, and only when l3prune wrote all of it: a
  folder whose every file is listed in the manifest l3prune wrote into it (``.l3prune-manifest.json``; a run
  folder, written step by step, instead holds only the names a run writes), or a single file of the kind
  being written (same suffix and, for binary formats, the same signature). A folder with a file l3prune did
  not write (a user's own sentence-transformers folder, a note dropped into an output) is refused, naming the
  files, and nothing changes.
* Never the current folder, one of its parents, the home folder or ``/``.
* The new output is written to a temporary sibling and swapped in at the end, so a crash or a kill
  midway leaves the old output intact. Temporary names follow one scheme,
  ``.<name>.l3prune-tmp-<pid><suffix>``, so a later run recognises a dead run's leftovers and removes them.

Library messages name the Python parameter (``overwrite=True``); the CLI maps it to its flag.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from l3prune.errors import L3PruneError
from l3prune.files.strict_json import dumps

TEMP_TAG = ".l3prune-tmp-"
OLD_TAG = ".l3prune-old-"
#: The list of the files l3prune wrote into a folder, written last; a folder without it is not l3prune's.
MANIFEST = ".l3prune-manifest.json"
#: For folders that are l3prune's own whatever they hold (its caches): every name.
EVERYTHING = ("*",)
#: A dead writer's temporary files, which a later run cleans up.
_LEFTOVERS = (f"*{TEMP_TAG}*", f"*{OLD_TAG}*")
OVERWRITE_HINT = "overwrite=True"
#: Leading bytes of the binary formats l3prune writes; a file of that suffix without them is not ours.
_SIGNATURES = {".npy": b"\x93NUMPY", ".png": b"\x89PNG\r\n\x1a\n", ".pt": b"PK\x03\x04"}


def already_exists(path: Path) -> L3PruneError:
    """The one wording for an output that is in the way."""
    return L3PruneError(f"{path} already exists; choose another path or pass {OVERWRITE_HINT} to replace it")


def _protected(path: Path) -> str | None:
    """Why ``path`` may never be replaced (the current folder, a parent of it, home or the root), else None."""
    cwd = Path.cwd().resolve()
    if path == cwd:
        return "it is the current folder"
    if path in cwd.parents:
        return "it is a parent of the current folder"
    if path == Path.home().resolve():
        return "it is the home folder"
    if path == Path(path.anchor):
        return "it is the root folder"
    return None


def _describe(folder: Path) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return f"{len(names)} entr{'y' if len(names) == 1 else 'ies'} ({shown})"


def _is_our_file(path: Path, suffix: str) -> bool:
    if path.suffix.lower() != suffix.lower():
        return False
    signature = _SIGNATURES.get(suffix.lower())
    if signature is not None:
        with path.open("rb") as handle:
            return handle.read(len(signature)) == signature
    if suffix.lower() == ".json":
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, ValueError):
            return False
    return True


def _check_parent(path: Path) -> None:
    """The nearest existing ancestor must be a folder (a file there would make mkdir fail obscurely)."""
    for ancestor in path.parents:
        if ancestor.exists():
            if not ancestor.is_dir():
                raise L3PruneError(f"cannot write {path}: {ancestor} is a file, not a folder; choose another path")
            if not os.access(ancestor, os.W_OK | os.X_OK):
                raise L3PruneError(f"cannot write {path}: {ancestor} is not writable; choose another path")
            return


def _readable_as_umask_allows(folder: Path) -> None:
    """Give every file the mode a plain ``open`` would (0666 less the umask): some writers (safetensors) make
    their files 0600, and a model folder shared with others would be unreadable to them."""
    umask = os.umask(0)
    os.umask(umask)
    for file in folder.rglob("*"):
        if file.is_file() and not file.is_symlink():
            file.chmod(0o666 & ~umask)


def written_files(folder: Path) -> list[str]:
    """Every file below ``folder`` (relative, with ``/``), the manifest itself excepted."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if (p.is_file() or p.is_symlink()) and p.name != MANIFEST)


def write_manifest(folder: Path) -> None:
    """Record the files l3prune wrote into ``folder`` (called once they are all there)."""
    (folder / MANIFEST).write_text(dumps({"written_by": "l3prune", "files": written_files(folder)}) + "\n",
                                   encoding="utf-8")


def foreign_files(folder: Path, owned: Sequence[str] | None = None) -> list[str] | None:
    """The files in ``folder`` that l3prune did not write; None when it holds no manifest at all.

    ``owned`` (name patterns) replaces the manifest for folders written step by step, such as a run folder.
    """
    files = written_files(folder)
    if owned is not None:
        patterns = (*owned, *_LEFTOVERS)
        return [f for f in files if not any(fnmatch.fnmatchcase(f, pattern) for pattern in patterns)]
    try:
        listed = set(json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return [f for f in files if f not in listed and not any(fnmatch.fnmatchcase(f, p) for p in _LEFTOVERS)]


def check_output(path: str | os.PathLike, *, overwrite: bool = False, kind: str = "file",
                 owned: Sequence[str] | None = None) -> Path:
    """Fail now, before any work, if writing ``path`` would break the rules above; return it as a Path.

    ``kind`` is ``"file"`` or ``"folder"``; ``owned`` (name patterns) says which files a folder written step by
    step may hold (default: those its manifest lists).
    """
    if kind not in ("file", "folder"):
        raise ValueError(f"kind must be 'file' or 'folder', got {kind!r}")
    path = Path(path).expanduser()
    resolved = path.resolve()
    why = _protected(resolved)
    if why is not None:
        raise L3PruneError(f"refusing to write to {path}: {why}; choose a new path for the output")
    _check_parent(resolved)
    if not (path.exists() or path.is_symlink()):
        return path
    if kind == "file":
        if path.is_dir():
            raise L3PruneError(f"{path} is a folder, but the output is a file; choose a file path")
        if not path.is_file():
            raise L3PruneError(f"{path} is not a regular file (a device or pipe); choose a file path")
        if not overwrite:
            raise already_exists(path)
        if not _is_our_file(path, path.suffix):
            raise L3PruneError(f"refusing to replace {path}: it does not look like a {path.suffix or 'plain'} file "
                               "l3prune wrote; choose another path or remove it yourself")
        return path
    if not path.is_dir():
        what = "a file" if path.is_file() else "not a folder (a device or pipe)"
        raise L3PruneError(f"{path} is {what}, but the output is a folder; choose another path")
    if not overwrite:
        raise already_exists(path)
    if not any(path.iterdir()):
        return path
    foreign = foreign_files(path, owned)
    if foreign is None:
        raise L3PruneError(
            f"refusing to replace {path}: it holds {_describe(path)} and no l3prune manifest ({MANIFEST}), so "
            "l3prune did not write it (or an older l3prune did); choose another path or remove it yourself"
        )
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise L3PruneError(f"refusing to replace {path}: it holds files l3prune did not write ({shown}); move them "
                           "out or choose another path; nothing was changed")
    return path


def temp_sibling(path: Path, *, tag: str = TEMP_TAG) -> Path:
    """``.<name>.l3prune-tmp-<pid><suffix>`` beside ``path``: the suffix stays, for writers that read it."""
    return path.with_name(f".{path.name}{tag}{os.getpid()}{path.suffix}")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(path: Path) -> None:
    """Remove the temporary leftovers of dead runs that wrote ``path``; put back an old output a swap left aside."""
    if not path.parent.is_dir():
        return
    for tag in (OLD_TAG, TEMP_TAG):
        prefix = f".{path.name}{tag}"
        for leftover in path.parent.glob(f"{glob_escape(prefix)}*"):
            pid = leftover.name[len(prefix):].removesuffix(path.suffix) if path.suffix else leftover.name[len(prefix):]
            if not pid.isdigit() or _pid_alive(int(pid)):
                continue
            if tag == OLD_TAG and not path.exists():
                leftover.replace(path)  # killed between the two renames of a swap: the old output returns
            elif leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)


def glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, overwrite: bool = False, kind: str = "file",
                  owned: Sequence[str] | None = None) -> Iterator[Path]:
    """Yield a temporary sibling to write into; on success it replaces ``path``, on error it is removed.

    ``kind="folder"`` yields an empty, existing folder, whose manifest is written once the caller is done;
    ``kind="file"`` a path with the target's suffix. The rules of :func:`check_output` are applied first, so
    nothing is written when they refuse.
    """
    path = check_output(path, overwrite=overwrite, kind=kind, owned=owned)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(path)
    except OSError as exc:
        raise L3PruneError(f"cannot write {path}: {exc.strerror or exc}; choose another path") from None
    tmp = temp_sibling(path)
    _remove(tmp)
    if kind == "folder":
        tmp.mkdir()
    try:
        yield tmp
        if kind == "file" and not tmp.exists():
            raise RuntimeError(f"nothing was written to the temporary file {tmp}")
        if kind == "folder":
            _readable_as_umask_allows(tmp)
            write_manifest(tmp)
        _swap(tmp, path, overwrite=overwrite, kind=kind, owned=owned)
    finally:
        _remove(tmp)


def _swap(tmp: Path, path: Path, *, overwrite: bool, kind: str, owned: Sequence[str] | None) -> None:
    """Move ``tmp`` to ``path``: one atomic rename for a file; for a folder, old aside, new in, old removed."""
    check_output(path, overwrite=overwrite, kind=kind, owned=owned)  # the target may have changed meanwhile
    if kind == "file" or not path.exists():
        os.replace(tmp, path)
        return
    old = temp_sibling(path, tag=OLD_TAG)
    _remove(old)
    os.replace(path, old)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.replace(old, path)
        raise
    _remove(old)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def write_json(path: str | os.PathLike, value: Any, *, overwrite: bool = False) -> Path:
    """Write ``value`` as strict JSON through :func:`atomic_output`."""
    text = dumps(value) + "\n"  # fails before the target is touched
    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_text(path: str | os.PathLike, text: str, *, overwrite: bool = False) -> Path:
    """Write ``text`` (UTF-8) through :func:`atomic_output`: a stopped writer leaves the old file or none."""
    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
