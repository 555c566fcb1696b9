"""Line-based exports (CSV, JSON lines) as they really arrive: one streaming pass per file.

Before DuckDB reads a text file, :func:`prescan` reads it once, line by line, and finds what would
make DuckDB abort the whole file or misread it:

- a line longer than ``max_line_bytes`` (DuckDB's reader gives up on the whole file at 2 MB and
  quotes the line in its error) -> ``oversized_line``;
- bytes that are not valid in the file's encoding -> ``invalid_encoding`` (with a hint when the
  line decodes as GB18030, the usual Chinese export encoding);
- control characters other than tab / CR / LF (NUL and friends) -> ``control_character``;
- CSV: a quote that is never closed -> ``unbalanced_quote``. A line with an odd number of quotes
  starts a record that may legitimately span lines (a quoted field with a newline); it is joined
  with the following lines until the quotes balance and the record parses with the header's field
  count. If that fails within a few lines, only the first line is quarantined and reading resumes
  at the next line, so one stray quote never swallows the rest of the file.

Lines are never read whole into memory beyond one line (plus a bounded record for multi-line CSV
records). When a file needs it — lines removed, or an encoding other than UTF-8 (decoded here, e.g.
GBK/GB18030), or whitespace-delimited text — a clean UTF-8 copy is written into the extract's
scratch folder; the copy's lines are the original lines minus the removed ones, so loaded and
quarantined rows keep the file's own line numbers. Removed lines become reject rows with
their reason, line number and the masked text (phones and emails replaced): a bad row never stops
a good file, and nothing is lost.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from flows.ingest.pii import mask_text
from flows.runtime import stopping

DEFAULT_MAX_LINE_BYTES = 1_000_000  # below DuckDB's 2,000,000-byte line limit
MAX_RECORD_LINES = 20  # a quoted field may span at most this many physical lines
DELIMITER_CANDIDATES = (",", ";", "\t", "|")
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_WIDE = ("utf-16", "utf-32")
csv.field_size_limit(2_000_000)  # a field may be as long as a line (max_line_bytes)  # encodings where b"\n" is not a line boundary by itself


@dataclass
class Removed:
    line: int
    reason: str
    detail: str
    record: str  # masked, truncated


@dataclass
class Prescan:
    path: str
    size: int  # bytes of content (decompressed, for .gz)
    lines: int  # physical lines, counting a last line without newline
    header: list[str] | None  # CSV header fields (None: empty file, or header: false / jsonl)
    first_fields: int | None  # fields of the first record (CSV), for header: false
    delimiter: str | None
    removed: list[Removed] = field(default_factory=list)
    multiline_records: int = 0
    encoding_hint: str | None = None
    clean_path: str | None = None  # the UTF-8 copy DuckDB reads instead, when one was needed
    newline: str = "\n"  # of the file DuckDB reads: "\r\n" when every line ends so
    crlf_lines: int = 0
    lf_lines: int = 0

    @property
    def read_path(self) -> str:
        return self.clean_path or self.path

    @property
    def empty(self) -> bool:
        return self.size == 0 or self.lines == 0


def open_binary(path: str):  # noqa: ANN201 - a binary file object
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")  # noqa: SIM115


def _physical_lines(path: str, encoding: str) -> Iterator[bytes]:
    """The file's lines as UTF-8 bytes-or-raw: raw bytes for byte-oriented encodings; for UTF-16/32
    the decoded text re-encoded as UTF-8 (bad sequences become U+FFFD and are flagged later)."""
    with open_binary(path) as fh:
        if encoding.replace("_", "-").startswith(_WIDE):
            text = io.TextIOWrapper(fh, encoding=encoding, errors="replace", newline="")
            for line in text:
                yield line.encode("utf-8")
        else:
            yield from fh


BLOCK_BYTES = 8 << 20
# control bytes and CR: a block holding one is read line by line. One memchr per byte value is
# about ten times faster than a regular expression's character class over 8 MB.
_BLOCK_NEEDS_LINES = tuple(bytes([b]) for b in (*range(0x00, 0x09), *range(0x0b, 0x20), 0x7f))


def _blocks(fh) -> Iterator[bytes]:  # noqa: ANN001 - a binary file object
    """The rest of an open file in blocks of about 8 MB, each ending on a line break (the last
    block may end without one)."""
    carry = b""
    while True:
        chunk = fh.read(BLOCK_BYTES)
        block = carry + chunk
        if not block:
            return
        cut = block.rfind(b"\n") + 1 if chunk else len(block)
        if cut == 0:  # no line break in 8 MB: one long line; keep reading
            carry = block
            continue
        block, carry = block[:cut], block[cut:]
        yield block


def _lines_or_blocks(path: str, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[bytes | list]:
    """A UTF-8 file in blocks that end on a line break: ``[texts, ends_with_newline]`` for a block
    whose every line is plainly fine, else the block's physical lines one by one (bytes)."""
    with open_binary(path) as fh:
        first = True
        for block in _blocks(fh):
            plain = (not (first and block.startswith(codecs.BOM_UTF8))
                     and not any(b in block for b in _BLOCK_NEEDS_LINES))
            first = False
            if plain:
                try:
                    text = block.decode("utf-8")
                except UnicodeDecodeError:
                    plain = False
            if plain:
                texts = text.split("\n")
                ends = block.endswith(b"\n")
                if ends:
                    texts.pop()
                # a line's bytes are at most four times its characters: count bytes only when that
                # bound does not already keep every line within the limit
                longest = max(map(len, texts))
                if 4 * longest + 1 > max_line_bytes:
                    longest = max(len(t.encode("utf-8")) for t in texts)
                plain = longest + 1 <= max_line_bytes
            if plain:
                yield [texts, ends]
            else:
                yield from io.BytesIO(block)


@dataclass
class PlainBlock:
    """Lines of a CSV file that need no second look, counted, not split (see :func:`_csv_lines_or_blocks`)."""

    block: bytes
    lines: int
    ends_with_newline: bool


def _csv_plain(block: bytes, quote: bytes, max_line_bytes: int) -> int | None:
    """The number of lines of a UTF-8 CSV block when none needs a second look: no control byte or
    carriage return, valid UTF-8, no line over the limit, and an even number of quotes on every
    line (so none opens or closes a record spanning lines). None otherwise."""
    import numpy as np

    if any(b in block for b in _BLOCK_NEEDS_LINES):
        return None
    try:
        block.decode("utf-8")
    except UnicodeDecodeError:
        return None
    data = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(data == 10)  # the last line of the file may have no line break
    bounds = np.append(ends, len(block) - 1) if not block.endswith(b"\n") else ends
    lengths = np.diff(bounds, prepend=-1)  # bytes of each line with its line break
    if len(lengths) and int(lengths.max()) > max_line_bytes:
        return None
    if quote and quote in block:
        quotes = np.flatnonzero(data == quote[0])
        per_line = np.diff(np.searchsorted(quotes, bounds, side="right"), prepend=0)
        if np.any(per_line % 2):
            return None
    return len(bounds)


def _csv_lines_or_blocks(path: str, quote: str | None, max_line_bytes: int) -> Iterator[bytes | PlainBlock]:
    """A UTF-8 CSV file: its first line (the header, or the first record) alone, then blocks of
    about 8 MB ending on a line break, each a :class:`PlainBlock` when :func:`_csv_plain` finds no
    line in it to look at, else its physical lines one by one (bytes)."""
    qb = (quote or "").encode("utf-8")
    with open_binary(path) as fh:
        first = fh.readline()
        if not first:
            return
        yield first
        for block in _blocks(fh):
            lines = _csv_plain(block, qb, max_line_bytes)
            if lines is not None:
                yield PlainBlock(block, lines, block.endswith(b"\n"))
            else:
                yield from io.BytesIO(block)


def _decoded(line: bytes, encoding: str, first: bool) -> tuple[str | None, bool]:
    """(text without the line break, was a BOM stripped); text None when it does not decode."""
    body = line.rstrip(b"\n").rstrip(b"\r")
    bom = False
    if first and body.startswith(codecs.BOM_UTF8):
        body, bom = body[len(codecs.BOM_UTF8):], True
    enc = "utf-8" if encoding.replace("_", "-").startswith(_WIDE) else encoding
    try:
        text = body.decode(enc)
    except UnicodeDecodeError:
        return None, bom
    if "\ufffd" in text and enc != encoding:  # a wide encoding's replacement character
        return None, bom
    return text, bom


def _shape_hint(body: bytes) -> str | None:
    try:
        body.decode("gb18030")
    except UnicodeDecodeError:
        return None
    return "gb18030"


def _snippet(text: str) -> str:
    return mask_text(text[:500])


def sniff_delimiter(header_line: str, expected: tuple[str, ...] = ()) -> str:
    """The first candidate delimiter under which the header holds every ``expected`` column; else
    the one that splits the header into the most fields (',' on a tie)."""
    for d in DELIMITER_CANDIDATES:
        if expected and set(expected) <= {f.strip() for f in split_fields(header_line, d, '"')}:
            return d
    best, best_n = ",", 1
    for d in DELIMITER_CANDIDATES:
        n = len(next(csv.reader([header_line], delimiter=d), []))
        if n > best_n:
            best, best_n = d, n
    return best


def split_fields(text: str, delimiter: str, quote: str | None) -> list[str]:
    if delimiter == "whitespace":
        return text.split()
    if not quote:
        return text.split(delimiter)
    try:  # the first record of the text, which may span lines inside quotes
        return next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar=quote,
                               doublequote=True, strict=True), [])
    except csv.Error:  # e.g. a quote in the middle of an unquoted field: not a well-formed record
        return []


def _content_size(path: str) -> int:
    """Bytes of the file's content: its size on disk, or for a .gz file its decompressed size. (The
    content hash that decides whether a file is new is taken once, before, by ingest.)"""
    if not path.endswith(".gz"):
        return os.path.getsize(path)
    size = 0
    with open_binary(path) as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            stopping.check()  # a stopped run ends here, not at the end of a large file
            size += len(chunk)
    return size


def prescan(path: str, *, fmt: str, encoding: str, scratch: Path, delimiter: str | None = None,
            quote: str | None = '"', header: bool = True,
            max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, expect_columns: tuple[str, ...] = (),
            on_line: Callable[[int, str], None] | None = None,
            on_block: Callable[[int, list[str]], None] | None = None) -> Prescan:
    """Count and check a text export; write a clean UTF-8 copy when needed.

    ``delimiter`` None means detect it from the header line (CSV); ``"whitespace"`` splits on
    runs of spaces and tabs (fixed-width text exports, e.g. CDNOW) and rewrites the copy as
    tab-delimited. Memory stays bounded by one line (or one multi-line record).

    ``on_line(line_number, text)`` receives every kept line, decoded, as it is read (JSON lines are
    loaded this way, in one pass); no clean copy is written then: the caller has the lines. With
    ``on_block(first_line_number, texts)`` as well, a UTF-8 JSON-lines file is read in blocks of
    about 8 MB: a block in which no line needs a second look (no control byte, no carriage return,
    no byte-order mark, no line over the limit, valid UTF-8 throughout — checked on the whole block
    at C speed) goes to ``on_block`` whole; any other block is read line by line as before, so what
    is kept and what is set aside is the same either way.
    """
    scan = Prescan(path, _content_size(path), 0, None, None, delimiter)
    if scan.size == 0:
        return scan
    utf8 = codecs.lookup(encoding).name == "utf-8"
    whitespace = delimiter == "whitespace"
    q = quote or ""
    removed: list[Removed] = []
    pending: list[tuple[int, str]] = []  # an open multi-line CSV record: (line, text)
    expected: list[int | None] = [None]

    def remove(n: int, reason: str, detail: str, text: str) -> None:
        removed.append(Removed(n, reason, detail, _snippet(text)))

    def close_pending(give_up: bool) -> None:
        if not pending:
            return
        joined = "\n".join(t for _, t in pending)
        fields = split_fields(joined, scan.delimiter or ",", quote)
        if not give_up and joined.count(q) % 2 == 0 and expected[0] in (None, len(fields)):
            scan.multiline_records += 1
            pending.clear()
            return
        first_n, first_text = pending[0]
        remove(first_n, "unbalanced_quote",
               f"a quote ({q}) opened on this line is not closed; the line was set aside and "
               "reading resumed on the next line", first_text)
        rest = pending[1:]
        pending.clear()
        for n, t in rest:  # the following lines are examined again on their own
            add(n, t)

    def add(n: int, text: str) -> None:
        if pending:
            pending.append((n, text))
            if text.count(q) % 2 == 1:
                close_pending(False)
            elif len(pending) >= MAX_RECORD_LINES:
                close_pending(True)
        elif fmt == "csv" and q and text.count(q) % 2 == 1:
            pending.append((n, text))

    def one_line(raw: bytes, n: int) -> None:  # a physical line read on its own
        if n % 65536 == 0:
            stopping.check()
        if raw.endswith(b"\r\n"):
            scan.crlf_lines += 1
        elif raw.endswith(b"\n"):
            scan.lf_lines += 1
        text = check_line(raw, n, encoding, utf8, max_line_bytes, remove, scan)
        if text is None:
            return
        if n == 1 and fmt == "csv":
            if scan.delimiter is None:
                scan.delimiter = sniff_delimiter(text, expect_columns if header else ())
            fields = split_fields(text, scan.delimiter, quote)
            if header:
                scan.header = [f.strip() for f in fields]
            scan.first_fields = expected[0] = len(fields)
        if on_line is not None:
            on_line(n, text)
        add(n, text)

    n = 0
    blocks = on_block is not None and on_line is not None and fmt == "jsonl" and utf8
    csv_blocks = fmt == "csv" and utf8 and not whitespace and on_line is None
    if blocks:
        source: Iterator[bytes | list | PlainBlock] = _lines_or_blocks(path, max_line_bytes)
    elif csv_blocks:
        source = _csv_lines_or_blocks(path, quote, max_line_bytes)
    else:
        source = _physical_lines(path, "utf-8" if utf8 else encoding)
    for item in source:
        if isinstance(item, list):  # a whole block that passed the block check
            stopping.check()
            texts, ends_with_newline = item[0], item[1]
            scan.lf_lines += len(texts) - (0 if ends_with_newline else 1)
            on_block(n + 1, texts)  # type: ignore[misc]
            n += len(texts)
            continue
        if isinstance(item, PlainBlock):
            stopping.check()
            if not pending:  # lines with balanced quotes and no open record: nothing to do
                scan.lf_lines += item.lines - (0 if item.ends_with_newline else 1)
                n += item.lines
                continue
            lines: Iterator[bytes] = io.BytesIO(item.block)  # an open record may close in it
        else:
            lines = iter((item,))
        for raw in lines:
            n += 1
            one_line(raw, n)
    scan.lines = n
    while pending:
        close_pending(True)
    scan.removed = sorted(removed, key=lambda r: r.line)
    mixed_newlines = scan.crlf_lines and scan.lf_lines  # DuckDB reads one kind of line break per file
    if on_line is not None:
        return scan
    if scan.removed or not utf8 or whitespace or mixed_newlines:
        scan.clean_path = _write_clean_copy(path, scan, encoding, utf8, whitespace, scratch)
    elif scan.crlf_lines:
        scan.newline = "\r\n"
    return scan


def check_line(raw: bytes, n: int, encoding: str, utf8: bool, max_line_bytes: int, remove, scan: Prescan
               ) -> str | None:  # noqa: ANN001
    """The line's text, or None after recording why it was set aside."""
    body = raw.rstrip(b"\n").rstrip(b"\r")
    if len(raw) > max_line_bytes:
        remove(n, "oversized_line", f"line is {len(raw):,} bytes, over the limit of {max_line_bytes:,} "
               "(files.max_line_bytes)", body[:500].decode("utf-8", errors="replace"))
        return None
    text, _bom = _decoded(raw, encoding, n == 1)
    if text is None:
        hint = _shape_hint(body) if utf8 else None
        scan.encoding_hint = scan.encoding_hint or hint
        remove(n, "invalid_encoding",
               f"not valid {encoding}" + (f"; it decodes as {hint}: set files.encoding: {hint}" if hint else ""),
               body[:500].decode("utf-8", errors="replace"))
        return None
    if _CONTROL.search(text.encode("utf-8")):
        remove(n, "control_character", "the line holds a control character (NUL or another byte below "
               "0x20 other than tab); fix the export", text.replace("\x00", "\\0"))
        return None
    return text


def _write_clean_copy(path: str, scan: Prescan, encoding: str, utf8: bool, whitespace: bool,
                      scratch: Path) -> str:
    """Second pass: every kept line, decoded to UTF-8 (tab-delimited for whitespace text)."""
    scratch.mkdir(parents=True, exist_ok=True)
    clean = scratch / (hashlib.sha1(path.encode()).hexdigest()[:16] + "-" + Path(path).name.removesuffix(".gz"))
    skip = {r.line for r in scan.removed}
    with open(clean, "w", encoding="utf-8", newline="\n") as out:
        for n, raw in enumerate(_physical_lines(path, "utf-8" if utf8 else encoding), start=1):
            if n in skip:
                continue
            text, _ = _decoded(raw, encoding, n == 1)
            assert text is not None  # lines that do not decode were removed in the first pass
            out.write(("\t".join(text.split()) if whitespace else text) + "\n")
    return str(clean)
