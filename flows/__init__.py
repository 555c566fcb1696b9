"""liucun (留存): Prefect flows that ingest touchpoints, build dbt marts, gate them with GX and publish.

Importing the package pins the runtime so nothing phones home and Prefect's local server has time
to start on a small machine; explicit environment settings still win. It also makes every log
record redacted at creation (flows/runtime/redact.py): no phone, email or password reaches a log.
"""

import os
import warnings

for _key, _value in {
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "GX_ANALYTICS_ENABLED": "false",
}.items():
    os.environ.setdefault(_key, _value)

# pyspark (the Spark engine's extra) warns on import that it does not fully support pandas 3; GX
# imports it in every gate. liucun's Spark code never converts to or from pandas.
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)

from flows.runtime.redact import install as _install_redaction  # noqa: E402

_install_redaction()
