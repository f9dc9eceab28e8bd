"""Write the survey fixture files in this folder (run it after changing a case).

The files are committed; this script documents exactly how each was made
(encoding, delimiter, line ends), which matters more than their content.
All surveys fit the tiny programme in ../programmes/tiny.

    python tests/data/surveys/make_surveys.py
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent

HEADER = [
    "submitted_at", "person_id", "name", "email", "role", "site", "language",
    "ict1", "ict2", "ict3", "rem1", "rem2", "rem3",
    "video_visits", "ehr_documentation", "chat_service", "hours_available", "preferred_formats",
]

# The scoring fixture: four people whose scores are computed by hand in test_scoring.py.
TINY = [
    ["2026-09-01 08:10", "0001", "Aino Virtanen", "aino.virtanen@example.fi", "nurse", "Keskussairaala", "fi",
     "5", "1", "4", "2", "3", "4", "1", "0", "1", "8", "workshop"],
    ["2026-09-01 09:22", "0002", "Erik Lindqvist", "erik.lindqvist@example.fi", "physician", "Terveysasema Itä", "sv",
     "5", "4", "", "En osaa sanoa", "", "1", "0", "1", "0", "2,5", "elearning;workshop"],
    ["2026-09-02 13:05", "0003", "Jane Smith", "jane.smith@example.org", "Registered nurse", "Kotihoito Etelä", "en",
     "Agree", "Disagree", "Neither agree nor disagree", "Strongly agree", "Agree", "Strongly disagree",
     "0", "0", "0", "", ""],
    ["2026-09-03 15:47", "0004", "Matti Mäkinen", "matti.makinen@example.fi", "Lääkäri", "Keskussairaala", "fi",
     "Täysin eri mieltä", "Täysin samaa mieltä", "1", "Vet inte", "3", "Jokseenkin samaa mieltä",
     "x", "", "kyllä", "12", "Työpaja"],
]


def quote(cell: str, delim: str) -> str:
    if any(ch in cell for ch in (delim, '"', "\n", "\r")):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def text(rows: list[list[str]], delim: str = ",", end: str = "\n") -> str:
    return "".join(delim.join(quote(c, delim) for c in r) + end for r in rows)


def write(name: str, data: bytes) -> None:
    (HERE / name).write_bytes(data)


def main() -> None:
    rows = [HEADER, *TINY]
    write("tiny.csv", text(rows).encode("utf-8"))
    # Excel "CSV (semicolon)" on a Finnish Windows: cp1252, CRLF.
    write("semicolon_cp1252.csv", text(rows, ";", "\r\n").encode("cp1252"))
    # Excel "CSV UTF-8": byte-order mark.
    write("bom_utf8.csv", text(rows).encode("utf-8-sig"))
    # Excel "Unicode text": UTF-16 little-endian with BOM, tab-separated, CRLF.
    write("utf16_tab.csv", text(rows, "\t", "\r\n").encode("utf-16"))
    # A `sep=;` first line, as some tools write for Excel.
    write("sep_line.csv", ("sep=;\r\n" + text(rows, ";", "\r\n")).encode("utf-8"))

    # Row 2 ends with a delimiter the header does not have; row 3 has an unquoted
    # `;` inside the site, which shifts its later cells; a blank line and a row of
    # bare delimiters sit between answers.
    lines = text([HEADER, TINY[0]], ";")
    lines += text([TINY[1]], ";").rstrip("\n") + ";\n"
    shifted = list(TINY[2])
    shifted[5] = "Kotihoito; Etelä"
    shifted[-1] = "elearning"
    lines += ";".join(shifted) + "\n"
    lines += "\n" + ";" * (len(HEADER) - 1) + "\n"
    lines += text([TINY[3]], ";")
    write("trailing_delimiter.csv", lines.encode("utf-8"))

    # A free-text column whose answer spans three lines, then a bad code.
    header = [*HEADER, "comments"]
    first = [*TINY[0], "Toivon lisää koulutusta.\nErityisesti videovastaanotoista.\nKiitos!"]
    second = [*TINY[1], ""]
    second[HEADER.index("rem2")] = "7"
    third = [*TINY[2], "ok"]
    write("embedded_newline.csv", text([header, first, second, third]).encode("utf-8"))

    write("empty.csv", b"")
    write("header_only.csv", text([HEADER]).encode("utf-8"))

    def person(pid: str, **cells: str) -> list[str]:
        row = list(TINY[0])
        row[HEADER.index("person_id")] = pid
        row[HEADER.index("name")] = f"Person {pid}"
        row[HEADER.index("email")] = f"p{pid}@example.fi"
        for key, value in cells.items():
            row[HEADER.index(key)] = value
        return row

    bad = [
        HEADER,
        person("0101"),
        person("0102", ict1="Sometimes"),
        person("0103", ict2="7"),
        person("", site="Keskussairaala"),
        person("0105"),
        person("0105", site="Kotihoito Etelä"),
        person("0107", role="Nurse practitioner"),
        person("0108", rem1="kolme"),
        person("0109", ict1="Don’t know", rem2="Don't know"),
        person("0110", ict3="2.5"),
    ]
    write("bad_cells.csv", text(bad).encode("utf-8"))

    loose = [
        " Person_ID ", "ROLE", "Site", "language", "ICT1", "ict2", "Ict3", "REM1", "rem2", "Rem3",
        "Video_Visits", "ehr_documentation", "CHAT_SERVICE", "Hours_Available", "preferred_formats", "Department", "E-mail",
    ]
    keep = [HEADER.index(h) for h in (
        "person_id", "role", "site", "language", "ict1", "ict2", "ict3", "rem1", "rem2", "rem3",
        "video_visits", "ehr_documentation", "chat_service", "hours_available", "preferred_formats",
    )]
    body = [[r[i] for i in keep] + ["Sisätautien osasto", r[HEADER.index("email")]] for r in TINY]
    write("loose_headers.csv", text([loose, *body]).encode("utf-8"))

    missing = [("person_idd" if h == "person_id" else h) for h in HEADER if h != "rem3"]
    body = [[c for h, c in zip(HEADER, r) if h != "rem3"] for r in TINY]
    write("missing_column.csv", text([missing, *body]).encode("utf-8"))


if __name__ == "__main__":
    main()
