"""What the run's process needs around the pipeline: the Prefect API it reports to (``prefect_api``),
stopping cleanly on signals (``stopping``), memory sampling (``memwatch``), redaction of personal data
in every message (``redact``) and the terminal/debug logs (``clilog``).
"""
