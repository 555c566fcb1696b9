"""JSON lines read in 8 MB blocks keep exactly what line-by-line reading keeps, line for line."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest

from flows.ingest.textfiles import BLOCK_BYTES, prescan

blocks_seen: list[int] = []


def _read(path: Path, tmp_path: Path, blocks: bool) -> tuple[list[tuple[int, str]], object]:
    got: list[tuple[int, str]] = []

    def on_block(first: int, texts: list[str]) -> None:
        got.extend(zip(range(first, first + len(texts)), texts, strict=True))
        blocks_seen.append(first)

    scan = prescan(str(path), fmt="jsonl", encoding="utf-8", scratch=tmp_path / "clean", max_line_bytes=1000,
                   on_line=lambda n, t: got.append((n, t)), on_block=on_block if blocks else None)
    return got, scan


@pytest.mark.parametrize("bom", [False, True])
def test_blocks_and_lines_keep_and_set_aside_the_same(tmp_path: Path, bom: bool):
    lines = [json.dumps({"event_id": f"e{i}", "n": i, "text": "x" * (i % 90)}).encode() for i in range(200_000)]
    lines[99] = b""  # a blank line
    lines[50_000] = b'{"event_id": "bad\x00"}'  # NUL: set aside
    lines[70_000] = b'{"event_id": "\xff\xfe"}'  # not UTF-8: set aside
    lines[90_000] = b'{"event_id": "crlf"}\r'  # one CRLF line among LF lines
    lines[110_000] = b'{"pad": "' + b"y" * 2000 + b'"}'  # over max_line_bytes
    lines[150_000] = "{\"city\": \"上海\"}".encode()  # multi-byte characters near a block edge do not matter
    body = b"\n".join(lines)  # no newline after the last line
    path = tmp_path / "events.jsonl"
    path.write_bytes((codecs.BOM_UTF8 if bom else b"") + body)
    assert path.stat().st_size > 2 * BLOCK_BYTES  # several blocks, most of them plain

    blocks_seen.clear()
    by_line, scan_lines = _read(path, tmp_path, blocks=False)
    assert not blocks_seen
    by_block, scan_blocks = _read(path, tmp_path, blocks=True)
    assert blocks_seen, "no block was plain enough to take whole: the test checks nothing"
    assert by_block == by_line
    assert [(r.line, r.reason) for r in scan_blocks.removed] == [(r.line, r.reason) for r in scan_lines.removed] == [
        (50_001, "control_character"), (70_001, "invalid_encoding"), (110_001, "oversized_line")]
    for field in ("lines", "lf_lines", "crlf_lines", "size"):
        assert getattr(scan_blocks, field) == getattr(scan_lines, field), field
    assert scan_blocks.lines == 200_000 and by_line[0] == (1, lines[0].decode())  # the BOM is not in the text
    assert (100, "") in by_line and (90_001, '{"event_id": "crlf"}') in by_line


@pytest.mark.parametrize("last_newline", [False, True])
def test_csv_blocks_and_lines_find_the_same(tmp_path: Path, last_newline: bool):
    """A CSV file is checked in 8 MB blocks where no line needs a look (counted at C speed, not
    split into Python strings); it finds exactly what reading every line finds."""
    import flows.ingest.textfiles as textfiles

    lines = [f'C{i},"Wang, {i}",{"x" * (i % 70)},"say ""hi""",{i % 9}'.encode() for i in range(450_000)]
    lines[0] = b"crm_id,name,pad,quote,n"
    lines[40_000] = b'C40000,"a record that spans'  # a quoted line break: one record on two lines
    lines[40_001] = b'two lines",x,y,1'
    lines[120_000] = b'C120000,"never closed,x,y,1'  # set aside; the next line is read on its own
    lines[150_000] = b"C150000,bad\x00,x,y,1"
    lines[170_000] = "C170000,坏,x,y,1".encode("gbk")  # not UTF-8
    lines[190_000] = b"C190000,crlf,x,y,1\r"
    lines[400_000] = b"C400000," + b"z" * 3000 + b",x,y,1"  # over max_line_bytes, in a block of its own
    lines[230_000] = "C230000,上海,x,y,1".encode()
    path = tmp_path / "customers.csv"
    path.write_bytes(b"\n".join(lines) + (b"\n" if last_newline else b""))
    assert path.stat().st_size > 2 * textfiles.BLOCK_BYTES

    def scan(by_line: bool):  # a line callback makes prescan read every line on its own
        return prescan(str(path), fmt="csv", encoding="utf-8", scratch=tmp_path / f"clean{by_line}",
                       max_line_bytes=1000, on_line=(lambda n, t: None) if by_line else None)

    plain: list[int] = []
    real = textfiles._csv_plain

    def spy(block: bytes, quote: bytes, limit: int) -> int | None:
        got = real(block, quote, limit)
        plain.append(got is not None)
        return got

    textfiles._csv_plain = spy  # type: ignore[assignment]
    try:
        blocks = scan(by_line=False)
    finally:
        textfiles._csv_plain = real  # type: ignore[assignment]
    assert any(plain) and not all(plain), "blocks were all taken whole, or none: the test checks too little"
    lines_ = scan(by_line=True)
    assert [(r.line, r.reason) for r in blocks.removed] == [(r.line, r.reason) for r in lines_.removed] == [
        (120_001, "unbalanced_quote"), (150_001, "control_character"), (170_001, "invalid_encoding"),
        (400_001, "oversized_line")]
    for field in ("lines", "lf_lines", "crlf_lines", "size", "header", "delimiter", "multiline_records",
                  "first_fields"):
        assert getattr(blocks, field) == getattr(lines_, field), field
    assert blocks.lines == 450_000 and blocks.multiline_records == 1 and blocks.crlf_lines == 1
    assert blocks.clean_path is not None  # lines were set aside: DuckDB reads a copy without them
