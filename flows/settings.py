"""Runtime settings, read once from the environment (prefix ``LIUCUN_``). No secrets in files."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]
PREFECT_SALT_SECRET_BLOCK = "liucun-pii-salt"


def default_ingest_memory_mb() -> int:
    """1.5 GB, or a quarter of this machine's memory when that is less. Ingest's one DuckDB instance
    (the extracts running at once and the merge) spills to the run's folder beyond it, so ingest's
    memory stays near this cap (plus the Python process's own, about 1 GB in a flow run) whatever
    the size of the data; more makes large loads spill less."""
    try:
        machine_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1 << 20)
    except (ValueError, OSError, AttributeError):  # not a POSIX system: the fixed default
        return 1536
    return min(1536, machine_mb // 4)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIUCUN_")

    pii_salt: SecretStr | None = None
    dbt_project_dir: Path = REPO_ROOT / "dbt_project"
    demo_config: Path = REPO_ROOT / "flows" / "demo" / "liucun.yml"
    # memory DuckDB may use while sources are ingested (LIUCUN_INGEST_MEMORY_MB): one cap for the
    # extracts running at once and the merge, which share one DuckDB instance (flows/ingest/load.py,
    # ExtractStore); past it DuckDB spills to the run's folder instead of growing. Spilled pages of an extract can hold raw values of the rows being read
    # (phones, emails) until the extract ends: a low cap trades memory for that exposure.
    ingest_memory_mb: int = Field(default_factory=default_ingest_memory_mb)
    # the dbt docs site the report's mart links point into (LIUCUN_DOCS_URL, e.g. a team's hosted
    # docs); default: the site `make docs` builds in this checkout (flows/report/build.py)
    docs_url: str | None = None


class SaltMissing(RuntimeError):
    pass


def resolve_pii_salt(settings: Settings, warehouse_root: Path, allow_generated: bool) -> str:
    """The secret salt for PII hashes: LIUCUN_PII_SALT, else the Prefect Secret block
    ``liucun-pii-salt``, else (demo only) a random salt kept beside the warehouse (mode 0600)."""
    if settings.pii_salt is not None and settings.pii_salt.get_secret_value():
        return settings.pii_salt.get_secret_value()
    try:
        from prefect.blocks.system import Secret

        return str(Secret.load(PREFECT_SALT_SECRET_BLOCK).get())
    except Exception:  # noqa: BLE001 - no such block / no API: fall through
        pass
    if not allow_generated:
        raise SaltMissing(
            "no PII salt: set LIUCUN_PII_SALT (a long random string, kept secret and stable) or "
            f"create a Prefect Secret block named {PREFECT_SALT_SECRET_BLOCK!r}"
        )
    path = warehouse_root / ".secrets" / "pii_salt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip()
