"""Where the Spark engine keeps its files: a local folder, or a URI that Spark and this process reach.

Spark is given the location as written in ``spark.location``: a local or mounted folder, or
``s3a://``, ``abfss://``, ``gs://``, ``hdfs://``, ``file://`` (its cluster must have the matching
Hadoop connector, as for any of its jobs). This process reaches the same files through pyarrow's
file systems (S3, Azure, GCS, HDFS, local) for the few it writes and reads itself: the run's new
rows as Parquet (typed by DuckDB in a local file, then copied), the fit's distinct-row scores,
``audit.publications``, ``state.json`` and the ``CURRENT`` pointer; and to list and remove what a
failed run left. Credentials for an object store come from the environment, as for each library
(``AWS_*``, ``AZURE_STORAGE_*``, Google's application default credentials), never from liucun.yml.

Object stores have no rename. Where the file system renames (a local folder, HDFS), the pointer
and the state are written under a temporary name and renamed into place, and a publication is
written into a hidden folder that is renamed once complete; on an object store a small object is
written by a single PUT, which readers see whole or not at all, and a publication is written
straight into its version folder, which no reader follows until ``CURRENT`` names it.
"""

from __future__ import annotations

import contextlib
import posixpath
from pathlib import Path
from typing import Any

# URI scheme as Spark (Hadoop) writes it -> as pyarrow's file systems read it
_SCHEMES = {"s3a": "s3", "s3n": "s3", "s3": "s3", "abfs": "abfs", "abfss": "abfss", "gs": "gs",
            "hdfs": "hdfs", "viewfs": "hdfs", "file": "file"}


class Location:
    """The engine's location: ``spark(...)`` names a file or folder for Spark SQL, the other
    methods reach it from this process. ``filesystem``: a pyarrow file system to use instead of
    the one the URI names (tests give an in-memory one, which has no rename, as object stores)."""

    def __init__(self, where: str | Path, filesystem: Any = None) -> None:
        import pyarrow.fs as pafs

        text = str(where)
        if "://" in text:
            scheme = text.split("://", 1)[0].lower()
            if scheme not in _SCHEMES:
                raise ValueError(f"spark.location {text!r}: liucun reaches {', '.join(sorted(_SCHEMES))} "
                                 "locations, or a local or mounted folder")
            self.uri = text.rstrip("/")
            if filesystem is None:
                fs, root = pafs.FileSystem.from_uri(_SCHEMES[scheme] + self.uri[len(scheme):])
            else:
                fs, root = filesystem, self.uri.split("://", 1)[1]
        else:
            self.uri = str(Path(text).resolve())
            fs, root = (filesystem or pafs.LocalFileSystem()), self.uri
        self.fs = fs
        self.root = root.rstrip("/")
        self.local = fs.type_name == "local"
        self.renames = fs.type_name in ("local", "hdfs")

    def __repr__(self) -> str:
        return f"Location({self.uri!r})"

    # ---- names ----------------------------------------------------------------------------------

    def spark(self, *parts: str) -> str:
        """The name Spark is given for ``parts`` under the location."""
        return "/".join([self.uri, *parts])

    def path(self, *parts: str) -> str:
        """The name pyarrow's file system is given for ``parts``."""
        return "/".join([self.root, *parts])

    def relative(self, name: str) -> str | None:
        """``name`` (as Spark was given it, perhaps by an earlier run that spelled the location
        another way: a path, or a ``file://`` URI of it) relative to the location; None when it is
        not under it."""
        spellings = [self.uri]
        if self.local:
            spellings += [self.root, "file://" + self.root, "file:" + self.root]
        for prefix in spellings:
            if name.startswith(prefix + "/"):
                return name[len(prefix) + 1:]
        return None

    def local_path(self, *parts: str) -> Path | None:
        """``parts`` as a local path (None on a remote file system)."""
        return Path(self.path(*parts)) if self.local else None

    def display(self, *parts: str) -> Path | str:
        """What a message or a summary shows for ``parts`` (a Path where it is one)."""
        return self.local_path(*parts) or self.spark(*parts)

    # ---- reading and listing --------------------------------------------------------------------

    def _info(self, *parts: str) -> Any:
        return self.fs.get_file_info(self.path(*parts))

    def exists(self, *parts: str) -> bool:
        import pyarrow.fs as pafs

        return self._info(*parts).type != pafs.FileType.NotFound

    def names(self, *parts: str, dirs_only: bool = False) -> list[str]:
        """The names in folder ``parts`` (none when it does not exist)."""
        import pyarrow.fs as pafs

        if not self.exists(*parts):
            return []
        infos = self.fs.get_file_info(pafs.FileSelector(self.path(*parts), allow_not_found=True))
        return sorted(posixpath.basename(i.path.rstrip("/")) for i in infos
                      if not dirs_only or i.type == pafs.FileType.Directory)

    def read_text(self, *parts: str) -> str | None:
        if not self.exists(*parts):
            return None
        with self.fs.open_input_stream(self.path(*parts)) as f:
            return f.read().decode("utf-8")

    def read_table(self, *parts: str, columns: list[str] | None = None) -> Any:
        """A Parquet file or folder as an Arrow table (files named ``_*`` or ``.*`` are skipped)."""
        import pyarrow.parquet as pq

        return pq.read_table(self.path(*parts), filesystem=self.fs, columns=columns)

    def dataset(self, *parts: str) -> Any:
        """A Parquet folder as a lazy Arrow dataset (DuckDB scans it with projection and filter
        pushdown; files named ``_*`` or ``.*`` are skipped)."""
        import pyarrow.dataset as ds

        return ds.dataset(self.path(*parts), filesystem=self.fs, format="parquet")

    # ---- writing and removing -------------------------------------------------------------------

    def makedirs(self, *parts: str) -> None:
        self.fs.create_dir(self.path(*parts), recursive=True)

    def remove(self, *parts: str) -> None:
        """Remove a file or a folder with everything in it; nothing when it is not there."""
        import pyarrow.fs as pafs

        kind = self._info(*parts).type
        with contextlib.suppress(FileNotFoundError):
            if kind == pafs.FileType.Directory:
                self.fs.delete_dir(self.path(*parts))
            elif kind == pafs.FileType.File:
                self.fs.delete_file(self.path(*parts))

    def move(self, source: tuple[str, ...], target: tuple[str, ...]) -> None:
        """Rename (only where the file system renames: :attr:`renames`)."""
        if not self.renames:
            raise RuntimeError(f"{self.uri} is on an object store, which has no rename")
        self.fs.move(self.path(*source), self.path(*target))

    def write_text(self, parts: tuple[str, ...], text: str, tag: str) -> None:
        """Replace a small file so that a reader sees the old text or the new, never a part: a
        temporary ``.<name>.<tag>`` renamed into place (local: fsynced first), or one PUT."""
        if len(parts) > 1:
            self.makedirs(*parts[:-1])
        if self.local:
            from flows.publish.warehouse import write_atomically

            write_atomically(Path(self.path(*parts)), text, tag)
            return
        data = text.encode("utf-8")
        if self.renames:
            tmp = (*parts[:-1], f".{parts[-1]}.{tag}")
            with self.fs.open_output_stream(self.path(*tmp)) as f:
                f.write(data)
            self.fs.move(self.path(*tmp), self.path(*parts))
        else:
            with self.fs.open_output_stream(self.path(*parts)) as f:
                f.write(data)

    def write_table(self, table: Any, *parts: str) -> None:
        """An Arrow table as the Parquet file ``parts`` (its folder made as needed)."""
        import pyarrow.parquet as pq

        self.makedirs(*parts[:-1])
        pq.write_table(table, self.path(*parts), filesystem=self.fs)

    def put_file(self, local: Path, *parts: str) -> None:
        """Copy the local file ``local`` to ``parts`` (a no-op when it is that file already)."""
        if self.local and Path(self.path(*parts)) == local:
            return
        self.makedirs(*parts[:-1])
        with local.open("rb") as src, self.fs.open_output_stream(self.path(*parts)) as dst:
            while chunk := src.read(8 << 20):
                dst.write(chunk)

    def fsync(self, *parts: str, tree: bool = True) -> None:
        """Flush a local folder to disk: with ``tree``, every file and folder in it too (other file
        systems make a written object durable when it is closed)."""
        if not self.local:
            return
        import os

        from flows.publish.warehouse import fsync_path

        if not tree:
            fsync_path(Path(self.path(*parts)))
            return
        for folder, _, files in os.walk(self.path(*parts)):
            for f in files:
                fsync_path(Path(folder) / f)
            fsync_path(Path(folder))
