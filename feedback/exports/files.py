"""Export files on disk: temporary names, the rename that publishes them, checksums, and the zip
a directory is downloaded as (no Django imports).

An export is written under a temporary name beside its final path (``.incoming-<random>-<name>``)
and renamed into place only when complete, so a reader never sees a half-written file and a failed
export leaves nothing behind.
"""
from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

READ_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    """SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def directory_files(path: Path) -> list[Path]:
    """Every regular file under ``path``, sorted by relative POSIX path. Symbolic links are skipped
    (to files and to directories alike: ``find -type f`` does the same), so a link planted in an
    export folder never puts a file from elsewhere into its checksum, size or zip."""
    return sorted(
        (p for p in path.rglob("*") if p.is_file() and not p.is_symlink()), key=lambda p: p.relative_to(path).as_posix()
    )


def checksum(path: Path) -> str:
    """A file's SHA-256; for a directory, the SHA-256 of its ``sha256sum`` listing: one line
    ``"<sha256>  <relative path>\\n"`` per file, sorted by path. Reproduce with
    ``(cd DIR && find . -type f -printf '%P\\n' | LC_ALL=C sort | xargs -d '\\n' sha256sum) | sha256sum``."""
    if not path.is_dir():
        return file_sha256(path)
    listing = "".join(f"{file_sha256(p)}  {p.relative_to(path).as_posix()}\n" for p in directory_files(path))
    return hashlib.sha256(listing.encode("utf-8")).hexdigest()


def size_bytes(path: Path) -> int:
    """A file's size, or the total size of a directory's files."""
    if not path.is_dir():
        return path.stat().st_size
    return sum(p.stat().st_size for p in directory_files(path))


def remove(path: Path) -> None:
    """Remove a file or directory if it is there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def directory_fsync(path: Path) -> None:
    """Make a rename inside the directory ``path`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def published(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; when the block ends without error, rename it to
    ``final`` (a file replaces nothing but a file; a directory must not exist yet); on any error,
    remove it and re-raise. What was written is fsynced before the rename.

    Raises:
        FileExistsError: ``final`` exists and is a directory, or both are directories.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.parent / f".incoming-{secrets.token_hex(6)}-{final.name}"
    try:
        yield temporary
        if final.is_dir() or (temporary.is_dir() and final.exists()):
            raise FileExistsError(f"{final} already exists")
        if temporary.is_file():
            with open(temporary, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(temporary, final)
        directory_fsync(final.parent)
    except BaseException:
        remove(temporary)
        raise


class _Spool:
    """A write-only, unseekable sink that hands what ``zipfile`` wrote to a generator."""

    def __init__(self):
        self.parts: list[bytes] = []

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def directory_zip_chunks(path: Path, *, root_name: str) -> Iterator[bytes]:
    """The directory as a zip archive (stored, not compressed: Arrow files), produced piece by piece
    in constant memory; every member is under ``root_name/``. Symbolic links are left out (see
    ``directory_files``)."""
    spool = _Spool()
    with zipfile.ZipFile(spool, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for file in directory_files(path):
            name = f"{root_name}/{file.relative_to(path).as_posix()}"
            try:  # O_NOFOLLOW: a file swapped for a link since the listing is skipped, not followed
                source = os.fdopen(os.open(file, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb")
            except OSError:
                continue
            with source, archive.open(name, mode="w", force_zip64=True) as member:
                while chunk := source.read(READ_CHUNK):
                    member.write(chunk)
                    yield spool.take()
            yield spool.take()
    yield spool.take()
