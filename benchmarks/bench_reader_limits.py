"""Peak memory and time of reading hostile workbooks at the reader's limits.

Run: ``.venv/bin/python benchmarks/bench_reader_limits.py``. Each case runs in a fresh
subprocess (``resource.getrusage`` max RSS), so one case's memory does not hide another's.

Cases
-----
* ``dense``: one sheet part of small numeric cells, all inside the header's columns, that
  unpacks to just under ``MAX_UNCOMPRESSED_BYTES`` (the worst case the limit admits).
* ``extent``: the example workbook with one value at ``studies!XFD1048576`` (recipe 2).
* ``shared strings``: a shared-strings part of tiny distinct strings under the limit.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    "</Types>"
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="outcomes" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
)


def write_dense_workbook(path: Path, target_bytes: int, columns: int = 20) -> int:
    """A minimal .xlsx whose one sheet holds numeric cells up to ``target_bytes`` of XML."""
    letters = [chr(65 + i) for i in range(columns)]
    head = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        '<row r="1">'
        + "".join(f'<c r="{c}1" t="inlineStr"><is><t>h{c}</t></is></c>' for c in letters)
        + "</row>"
    )
    tail = "</sheetData></worksheet>"
    written = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _RELS)
        archive.writestr("xl/workbook.xml", _WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(head.encode())
            written += len(head)
            row = 2
            while written < target_bytes - 10_000:
                text = (
                    f'<row r="{row}">' + "".join(f'<c r="{c}{row}"><v>1</v></c>' for c in letters) + "</row>"
                )
                sheet.write(text.encode())
                written += len(text)
                row += 1
            sheet.write(tail.encode())
    return row - 2


_MEASURE = """
import resource, sys, time
from evmeta.sheets.reader import read_raw, UnreadableInput
start = time.perf_counter()
try:
    book = read_raw(sys.argv[1])
    outcome = f"read {sum(len(s.rows) for s in book.sheets.values())} rows"
except UnreadableInput as exc:
    outcome = f"refused: {str(exc)[:90]}"
usage = resource.getrusage(resource.RUSAGE_SELF)
print(f"{time.perf_counter() - start:.1f} s wall ({usage.ru_utime:.1f} s CPU incl. imports), "
      f"peak {usage.ru_maxrss / 1024:.0f} MB, {outcome}")
"""


def measure(path: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path)], capture_output=True, text=True, cwd=ROOT, check=False
    )
    return (done.stdout or done.stderr).strip().splitlines()[-1]


def main() -> None:
    from evmeta.sheets.reader import MAX_UNCOMPRESSED_BYTES

    with tempfile.TemporaryDirectory() as folder:
        dense = Path(folder) / "dense.xlsx"
        rows = write_dense_workbook(dense, MAX_UNCOMPRESSED_BYTES - 1_000_000)
        size = dense.stat().st_size / 1e6
        print(f"dense ({rows:,} rows x 20 cells, {size:.1f} MB on disk): {measure(dense)}")
        import openpyxl

        extent = Path(folder) / "extent.xlsx"
        book = openpyxl.load_workbook(ROOT / "extraction" / "example.xlsx")
        book["studies"]["XFD1048576"] = "x"
        book.save(extent)
        print(f"extent (x at studies!XFD1048576): {measure(extent)}")


if __name__ == "__main__":
    main()
