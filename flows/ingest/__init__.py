"""Ingestion: configured sources (files, PostgreSQL) into the raw layer, every row loaded or quarantined.

``load`` runs a source end to end (read what is new, type, hash PII, quarantine, merge); ``readers``
turns each format into varchar rows, ``textfiles`` prescans line-based exports, ``typing_checks``
types rows against ``contracts``, ``pii`` normalises and hashes personal data.
"""
