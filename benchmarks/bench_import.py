"""Median of 3: read_survey + import_survey on a 1,000,000-row CSV and a 300,000-row XLSX.

The inputs are synthetic surveys of the built-in programme (30 items, 10 task
columns, 48 columns in all), made once with ``trainmatch.synth`` (seed 0) and
cached under benchmarks/cache/ (git-ignored). Targets (issue 6): CSV ≤ 4 s,
XLSX ≤ 20 s, read + validate.

    python benchmarks/bench_import.py            # both
    python benchmarks/bench_import.py csv        # or only one
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

CACHE = Path(__file__).parent / "cache"
CSV_ROWS, XLSX_ROWS = 1_000_000, 300_000


def csv_input() -> Path:
    path = CACHE / f"survey-{CSV_ROWS}.csv"
    if not path.exists():
        from trainmatch.outputs import write_csv
        from trainmatch.programme import load_programme
        from trainmatch.synth import synthesize

        print(f"making {path} (once; about a minute) …", flush=True)
        survey, _ = synthesize(load_programme(), CSV_ROWS, seed=0)
        write_csv(survey, path)
    return path


def xlsx_input() -> Path:
    path = CACHE / f"survey-{XLSX_ROWS}.xlsx"
    if not path.exists():
        from trainmatch.programme import load_programme
        from trainmatch.synth import synthesize

        print(f"making {path} (once; a minute or two) …", flush=True)
        survey, _ = synthesize(load_programme(), XLSX_ROWS, seed=0)
        write_xlsx_like_excel(survey, path)
    return path


def write_xlsx_like_excel(frame, path: Path) -> None:
    """Write a one-sheet workbook as Excel saves it: text in the shared-strings table, codes and ids
    without leading zeros as numbers. (xlsxwriter's low-memory mode would write inline strings, which
    Excel itself never does, and its normal mode needs gigabytes for 14 million cells.)"""
    import zipfile
    from xml.sax.saxutils import escape

    from trainmatch.xlsx import column_letter


    strings: dict[str, int] = {}
    letters = [column_letter(j) for j in range(frame.shape[1])]
    columns = [frame[c].astype(str).tolist() for c in frame.columns]
    tmp = path.with_suffix(".part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as fh:
            fh.write(b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">')
            fh.write(f'<dimension ref="A1:{letters[-1]}{len(frame) + 1}"/><sheetData>'.encode())
            rows = [list(frame.columns)] + [None] * len(frame)
            for i in range(len(frame) + 1):
                cells = []
                values = rows[0] if i == 0 else [col[i - 1] for col in columns]
                for j, v in enumerate(values):
                    if not v:
                        continue
                    ref = f"{letters[j]}{i + 1}"
                    if i and v.isdigit() and (v == "0" or not v.startswith("0")):
                        cells.append(f'<c r="{ref}"><v>{v}</v></c>')
                    else:
                        k = strings.setdefault(v, len(strings))
                        cells.append(f'<c r="{ref}" t="s"><v>{k}</v></c>')
                fh.write(f'<row r="{i + 1}">{"".join(cells)}</row>'.encode("utf-8"))
            fh.write(b"</sheetData></worksheet>")
        sst = "".join(f"<si><t>{escape(s)}</t></si>" for s in strings)
        z.writestr("xl/sharedStrings.xml", f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="{len(strings)}" uniqueCount="{len(strings)}">{sst}</sst>')
        z.writestr("xl/workbook.xml", '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Responses" sheetId="1" r:id="rId1"/></sheets></workbook>')
        z.writestr("xl/_rels/workbook.xml.rels", '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>')
        z.writestr("_rels/.rels", '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
        z.writestr("[Content_Types].xml", '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>')
    tmp.replace(path)


def bench(path: Path, repeat: int = 3) -> None:
    from trainmatch.io import read_survey
    from trainmatch.programme import load_programme
    from trainmatch.survey import import_survey

    programme = load_programme()
    reads, imports, totals = [], [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        raw = read_survey(path)
        t1 = time.perf_counter()
        result = import_survey(raw, programme, consume=True)  # as the commands do
        t2 = time.perf_counter()
        reads.append(t1 - t0)
        imports.append(t2 - t1)
        totals.append(t2 - t0)
        del raw
    fmt = lambda xs: f"{[round(x, 2) for x in xs]} median {statistics.median(xs):.2f} s"  # noqa: E731
    print(f"{path.name}: {result.n_read} rows, {result.n_accepted} accepted, {result.n_rejected} rejected")
    print(f"  read_survey   {fmt(reads)}")
    print(f"  import_survey {fmt(imports)}")
    print(f"  total         {fmt(totals)}", flush=True)


def main(which: list[str]) -> None:
    CACHE.mkdir(exist_ok=True)
    if not which or "csv" in which:
        bench(csv_input())
    if not which or "xlsx" in which:
        bench(xlsx_input())


if __name__ == "__main__":
    main(sys.argv[1:])
