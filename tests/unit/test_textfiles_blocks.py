"""JSON lines read in 8 MB blocks keep exactly what line-by-line reading keeps, line for line."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest

from flows.textfiles import BLOCK_BYTES, prescan

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
