"""The project config (``liucun.yml``): which sources to pull and how they map onto the contracts.

Example::

    business_timezone: Asia/Shanghai
    data_dir: ${LIUCUN_DATA_DIR}          # relative paths resolve against this file's folder
    sources:
      crm_customers:
        kind: customers                    # a contract in flows/contracts.py
        files: {path: "crm/*.csv", format: csv}
        timezone: Asia/Shanghai            # for timestamps written without an offset
        primary_key: [crm_id]              # default: the contract's
        columns: {crm_id: CustomerNo}      # canonical <- source column; default: same name

Every value that reaches SQL is validated here (names) or bound/quoted at use (paths, timezones).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from flows.contracts import CONTRACTS

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_SOURCE_COLUMN_RE = re.compile(r"^[^\"\x00]{1,128}$")
FILE_FORMATS = ("csv", "jsonl", "parquet")
ENCODINGS = ("utf-8", "utf-16", "latin-1")


class ConfigError(ValueError):
    """The config file is wrong; the message says where and what to do."""


@dataclass(frozen=True)
class SourceConfig:
    name: str
    kind: str
    path: str  # glob, relative to data_dir
    format: str
    timezone: str
    columns: dict[str, str]  # canonical column -> source column
    primary_key: tuple[str, ...]
    encoding: str = "utf-8"

    def source_column(self, canonical: str) -> str:
        return self.columns.get(canonical, canonical)


@dataclass(frozen=True)
class ProjectConfig:
    path: Path
    data_dir: Path
    business_timezone: str
    sources: list[SourceConfig] = field(default_factory=list)


def _expand(value: str, where: str) -> str:
    def repl(m: re.Match[str]) -> str:
        var = m.group(1)
        if var not in os.environ:
            raise ConfigError(f"{where}: environment variable {var} is not set; export it or edit the config")
        return os.environ[var]

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", repl, value)


def _source(name: str, raw: dict, cfg_path: Path, default_tz: str) -> SourceConfig:
    where = f"{cfg_path}: sources.{name}"
    if not _NAME_RE.match(name):
        raise ConfigError(f"{where}: a source name must be lower_snake_case (a-z, 0-9, _)")
    kind = raw.get("kind")
    if kind not in CONTRACTS:
        raise ConfigError(f"{where}.kind is {kind!r}; use one of: {', '.join(CONTRACTS)}")
    contract = CONTRACTS[kind]
    files = raw.get("files")
    if not isinstance(files, dict) or "path" not in files:
        raise ConfigError(f"{where}: needs `files: {{path: <glob>, format: csv|jsonl|parquet}}`")
    fmt = files.get("format") or Path(files["path"]).suffix.lstrip(".")
    if fmt not in FILE_FORMATS:
        raise ConfigError(f"{where}.files.format is {fmt!r}; use one of: {', '.join(FILE_FORMATS)}")
    encoding = str(files.get("encoding", "utf-8")).lower()
    if encoding not in ENCODINGS:
        raise ConfigError(f"{where}.files.encoding {encoding!r} unsupported; use {ENCODINGS}")
    columns = dict(raw.get("columns") or {})
    for canonical, src in columns.items():
        if canonical not in contract.column_names:
            raise ConfigError(
                f"{where}.columns: {canonical!r} is not a column of the {kind} contract "
                f"({', '.join(contract.column_names)})"
            )
        if not isinstance(src, str) or not _SOURCE_COLUMN_RE.match(src):
            raise ConfigError(f"{where}.columns.{canonical}: {src!r} is not a valid column name")
    pk = tuple(raw.get("primary_key") or contract.primary_key)
    for col in pk:
        if col not in contract.column_names:
            raise ConfigError(f"{where}.primary_key: {col!r} is not a column of {kind}")
    return SourceConfig(
        name=name,
        kind=kind,
        path=_expand(str(files["path"]), where),
        format=fmt,
        timezone=str(raw.get("timezone", default_tz)),
        columns=columns,
        primary_key=pk,
        encoding=encoding,
    )


def load_config(path: Path | str) -> ProjectConfig:
    """Read and validate ``liucun.yml``; raise :class:`ConfigError` naming the bad key."""
    cfg_path = Path(path).resolve()
    if not cfg_path.is_file():
        raise ConfigError(f"config file {cfg_path} does not exist")
    try:
        raw = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{cfg_path}: not valid YAML: {exc}") from exc
    tz = str(raw.get("business_timezone", "Asia/Shanghai"))
    data_dir = Path(_expand(str(raw.get("data_dir", ".")), f"{cfg_path}: data_dir"))
    if not data_dir.is_absolute():
        data_dir = (cfg_path.parent / data_dir).resolve()
    sources_raw = raw.get("sources") or {}
    if not isinstance(sources_raw, dict) or not sources_raw:
        raise ConfigError(f"{cfg_path}: `sources:` must map source names to their settings")
    sources = [_source(n, s or {}, cfg_path, tz) for n, s in sources_raw.items()]
    return ProjectConfig(cfg_path, data_dir, tz, sources)
