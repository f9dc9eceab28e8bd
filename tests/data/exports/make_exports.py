"""Write the survey-tool export fixtures in this folder (run it after changing a case).

Each file imitates what one survey tool (or Excel) really writes: its metadata
columns, header syntax, answer codes, multi-select joining, timestamps, line
ends and encoding. All fit the tiny programme in ../programmes/tiny (items
ict1–3, rem1–3; tasks video_visits, ehr_documentation, chat_service; roles
nurse, physician; formats elearning, workshop). The same four people answer in
every file, so tests can check the same values whatever the tool:

    person  role       ict1 ict2 ict3 rem1 rem2 rem3  tasks                       hours formats
    0001    nurse       5    1    4    2    3    4    video_visits, chat_service   8     workshop
    0002    physician   5    4    -    dk   -    1    ehr_documentation            2,5   elearning;workshop
    0003    nurse       4    2    3    5    4    1    (none)                       -     -
    0004    physician   1    5    1    dk   3    4    video_visits, chat_service   12    workshop

    python tests/data/exports/make_exports.py
"""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).parent

ITEMS = ["ict1", "ict2", "ict3", "rem1", "rem2", "rem3"]
TEXT_EN = ["I can start up the devices.", "I need help to log in.", "I can save files.",
           "I can run a video visit.", "I can counsel in a chat.", "I feel unsure counselling remotely."]
TASKS = ["video_visits", "ehr_documentation", "chat_service"]
TASK_EN = ["Video visits", "EHR documentation", "Chat service"]
LABEL_EN = ["Strongly disagree", "Disagree", "Neither agree nor disagree", "Agree", "Strongly agree"]
DK = "Don't know"

PEOPLE = [
    # id, role id, role label, site, language, answers (0 = empty, -1 = don't know), tasks, hours, formats, name, email
    ("0001", "nurse", "Registered nurse", "Keskussairaala", "fi", [5, 1, 4, 2, 3, 4], [1, 0, 1], "8", ["workshop"], "Aino Virtanen", "aino.virtanen@example.fi"),
    ("0002", "physician", "Physician", "Terveysasema Itä", "sv", [5, 4, 0, -1, 0, 1], [0, 1, 0], "2,5", ["elearning", "workshop"], "Erik Lindqvist", "erik.lindqvist@example.fi"),
    ("0003", "nurse", "Registered nurse", "Kotihoito Etelä", "en", [4, 2, 3, 5, 4, 1], [0, 0, 0], "", [], "Jane Smith", "jane.smith@example.org"),
    ("0004", "physician", "Physician", "Keskussairaala", "fi", [1, 5, 1, -1, 3, 4], [1, 0, 1], "12", ["workshop"], "Matti Mäkinen", "matti.makinen@example.fi"),
]
FORMAT_EN = {"elearning": "E-learning", "workshop": "Workshop"}


def csv_text(rows: list[list[str]], delimiter: str = ",", end: str = "\r\n", quote_all: bool = False) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=end, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL)
    writer.writerows(rows)
    return buffer.getvalue()


def label(answer: int) -> str:
    return "" if answer == 0 else DK if answer == -1 else LABEL_EN[answer - 1]


def code(answer: int, dk: str = "") -> str:
    return "" if answer == 0 else dk if answer == -1 else str(answer)


# --------------------------------------------------------------------------- Microsoft Forms (XLSX)


def ms_forms() -> None:
    """Microsoft Forms "Open results in Excel": one sheet, Id / Start time / Completion time / Email / Name,
    Likert statements as headers, label text answers, multi-select joined by ';' with a trailing ';'."""
    import xlsxwriter

    header = ["Id", "Start time", "Completion time", "Email", "Name", "Last modified time", "Person ID", "Role", "Site", "Language",
              *TEXT_EN, "Which of these services do you use in your work?", "Hours available", "Which training formats do you prefer?"]
    book = xlsxwriter.Workbook(str(HERE / "ms_forms.xlsx"))
    ws = book.add_worksheet("Sheet1")
    when = book.add_format({"num_format": "m/d/yy h:mm:ss"})
    ws.write_row(0, 0, header)
    for n, (pid, _rid, role, site, lang, answers, ticks, hours, formats, name, email) in enumerate(PEOPLE, 1):
        services = "".join(t + ";" for t, on in zip(TASK_EN, ticks) if on)
        row = [n, datetime(2026, 9, n, 8, n, 10), datetime(2026, 9, n, 8, 10 + n, 33), email, name, "", pid, role, site, lang,
               *[label(a) for a in answers], services, hours, "".join(FORMAT_EN[f] + ";" for f in formats)]
        for j, v in enumerate(row):
            if isinstance(v, datetime):  # Forms writes real Excel date-times
                ws.write_datetime(n, j, v, when)
            elif isinstance(v, int):
                ws.write_number(n, j, v)
            elif v:
                ws.write_string(n, j, v)
    book.close()


# --------------------------------------------------------------------------- Google Forms (CSV)


def google_forms() -> None:
    """Google Forms "Download responses (.csv)": UTF-8, every field quoted, Timestamp first,
    grid headers `Question [Row]`, checkbox answers joined by ", ". Person 0003 submitted twice:
    the later submission (row 5) supersedes the first (row 3)."""
    q = "How much do you agree with these statements?"
    header = ["Timestamp", "Email Address", "Person ID", "Role", "Site", "Language",
              *[f"{q} [{t}]" for t in TEXT_EN], "Which services do you use in your work?", "Hours available", "Preferred training formats"]
    rows = [header]
    stamps = ["2026/09/01 8:10:33 AM GMT+3", "2026/09/01 9:22:05 AM GMT+3", "2026/09/02 1:05:40 PM GMT+3", "2026/09/03 3:47:12 PM GMT+3"]
    for stamp, (pid, _rid, role, site, lang, answers, ticks, hours, formats, _name, email) in zip(stamps, PEOPLE):
        services = ", ".join(t for t, on in zip(TASK_EN, ticks) if on)
        rows.append([stamp, email, pid, role, site, lang, *[label(a) for a in answers], services, hours, ", ".join(FORMAT_EN[f] for f in formats)])
    # Person 0003 first answered a day earlier, with a different role and a disagreeing ict1.
    early = list(rows[3])
    early[0] = "2026/09/01 7:59:59 AM GMT+3"
    early[3] = "Physician"
    early[6] = "Strongly disagree"
    rows.insert(3, early)
    (HERE / "google_forms.csv").write_bytes(csv_text(rows, quote_all=True).encode("utf-8"))


# --------------------------------------------------------------------------- LimeSurvey (CSV)


def limesurvey() -> None:
    """LimeSurvey "Export responses" with answer codes and question code headers, `;` separated:
    id / submitdate / lastpage / startlanguage / seed / startdate / datestamp / ipaddr, array questions
    `ICT[ict1]`, answer codes A1–A5, multiple choice `services[video_visits]` = Y or empty, a
    response without a submit date (the person stopped at page 1), and the trailing empty record."""
    header = ["id", "submitdate", "lastpage", "startlanguage", "seed", "startdate", "datestamp", "ipaddr", "personid", "role", "site", "language",
              *[f"{'ICT' if i.startswith('ict') else 'REM'}[{i}]" for i in ITEMS], *[f"services[{t}]" for t in TASKS], "hoursavailable", "preferredformats"]
    rows = [header]
    for n, (pid, _rid, role, site, lang, answers, ticks, hours, formats, _name, _email) in enumerate(PEOPLE, 1):
        stamp = f"2026-09-0{n} 08:1{n}:00"
        rows.append([str(n), stamp, "3", lang, str(1000 + n), stamp, stamp, f"10.0.0.{n}", pid, role, site, lang,
                     *[("" if a == 0 else "-99" if a == -1 else f"A{a}") for a in answers], *["Y" if on else "" for on in ticks], hours, ";".join(formats)])
    rows.append(["5", "", "1", "fi", "1005", "2026-09-04 10:00:00", "2026-09-04 10:02:00", "10.0.0.5", "0005", "Sairaanhoitaja", "Keskussairaala", "fi",
                 "A3", "", "", "", "", "", "", "", "", "", ""])
    text = csv_text(rows, delimiter=";", quote_all=True) + csv_text([[""] * len(header)], delimiter=";", quote_all=True)
    (HERE / "limesurvey.csv").write_bytes(text.encode("utf-8"))


# --------------------------------------------------------------------------- Qualtrics (CSV)


def qualtrics() -> None:
    """Qualtrics "Download data table" CSV: UTF-8 with BOM, three header rows (export tags, question
    texts, ImportId JSON), metadata with personal data (IP, recipient, location), one unfinished response."""
    meta = ["StartDate", "EndDate", "Status", "IPAddress", "Progress", "Duration (in seconds)", "Finished", "RecordedDate", "ResponseId",
            "RecipientLastName", "RecipientFirstName", "RecipientEmail", "ExternalReference", "LocationLatitude", "LocationLongitude",
            "DistributionChannel", "UserLanguage"]
    meta_text = ["Start Date", "End Date", "Response Type", "IP Address", "Progress", "Duration (in seconds)", "Finished", "Recorded Date",
                 "Response ID", "Recipient Last Name", "Recipient First Name", "Recipient Email", "External Data Reference",
                 "Location Latitude", "Location Longitude", "Distribution Channel", "User Language"]
    tags = [*meta, "person_id", "role", "site", "language", *[f"Q1_{k}" for k in range(1, 7)], *[f"Q2_{k}" for k in range(1, 4)], "hours_available"]
    texts = [*meta_text, "Your person number", "Your role", "Your unit", "Language",
             *[f"How much do you agree? - {t}" for t in TEXT_EN], *[f"Which services do you use? - {t}" for t in TASK_EN], "Hours available for training"]
    import_ids = [f'{{"ImportId":"{m[0].lower() + m[1:]}"}}' for m in meta] + [f'{{"ImportId":"QID{k}"}}' for k in range(1, len(tags) - len(meta) + 1)]
    rows = [tags, texts, import_ids]
    for n, (pid, _rid, role, site, lang, answers, ticks, hours, _formats, name, email) in enumerate(PEOPLE, 1):
        first, last = name.split(" ", 1)
        rows.append([f"2026-09-0{n} 08:00:00", f"2026-09-0{n} 08:1{n}:00", "IP Address", f"192.0.2.{n}", "100", "640", "True", f"2026-09-0{n} 08:1{n}:01",
                     f"R_{n}aBcDeFgHiJkLmN", last, first, email, "", "60.19", "24.94", "anonymous", "EN",
                     pid, role, site, lang, *[code(a, "-99") for a in answers], *["1" if on else "" for on in ticks], hours.replace(",", ".")])
    rows.append(["2026-09-05 09:00:00", "2026-09-05 09:03:00", "IP Address", "192.0.2.9", "40", "180", "False", "2026-09-06 09:03:00",
                 "R_9zYxWvUtSrQpOnM", "Nieminen", "Liisa", "liisa.nieminen@example.fi", "", "60.45", "22.26", "anonymous", "EN",
                 "0009", "nurse", "Keskussairaala", "fi", "3", "", "", "", "", "", "", "", "", ""])
    (HERE / "qualtrics.csv").write_bytes(csv_text(rows, quote_all=False).encode("utf-8-sig"))


# --------------------------------------------------------------------------- REDCap (CSV)


def redcap() -> None:
    """REDCap "CSV / Microsoft Excel (raw data)": record_id, survey identifier and timestamp, raw codes,
    checkbox fields as `field___code` columns (0/1), the instrument's `_complete` status (2 = Complete)."""
    header = ["record_id", "redcap_survey_identifier", "digital_competence_timestamp", "role", "site", "language", *ITEMS,
              *[f"services___{t}" for t in TASKS], "hours_available", "formats___elearning", "formats___workshop", "digital_competence_complete"]
    rows = [header]
    for n, (pid, rid, _role, site, lang, answers, ticks, hours, formats, _name, _email) in enumerate(PEOPLE, 1):
        rows.append([pid, "", f"2026-09-0{n} 08:1{n}:00", rid, site, lang, *[code(a, "-99") for a in answers], *[str(t) for t in ticks],
                     hours.replace(",", "."), "1" if "elearning" in formats else "0", "1" if "workshop" in formats else "0", "2"])
    rows.append(["0005", "", "[not completed]", "nurse", "Keskussairaala", "fi", "3", "", "", "", "", "", "0", "0", "0", "", "0", "0", "0"])
    (HERE / "redcap.csv").write_bytes(csv_text(rows, end="\n").encode("utf-8"))


# --------------------------------------------------------------------------- another tool, with a mapping file


def webropol() -> None:
    """A Webropol-style export (a tool trainmatch does not know) as Excel saves it on a Finnish Windows:
    cp1252, `;`, CRLF, Finnish question texts as headers, role as codes, answers numbered the other way
    round (1 = Täysin samaa mieltä), 99 = no answer, services as one `;`-joined column; read with webropol.toml."""
    header = ["Vastaajan nimi", "Vastausaika", "Henkilönumero", "Ammattinimike", "Toimipiste", "Vastauskieli",
              "Osaan käynnistää laitteet.", "Tarvitsen apua kirjautumisessa.", "Osaan tallentaa tiedostot.",
              "Osaan pitää videovastaanoton.", "Osaan ohjata chatissa.", "Olen epävarma etäohjauksessa.",
              "Mitä palveluja käytät työssäsi?", "Koulutukseen käytettävissä (h)"]
    langs = {"fi": "suomi", "sv": "svenska", "en": "english"}
    roles = {"nurse": "1", "physician": "2"}
    fi_task = ["Videovastaanotot", "Kirjaaminen", "Chat-palvelu"]
    rows = [header]
    for n, (pid, rid, _role, site, lang, answers, ticks, hours, _formats, name, _email) in enumerate(PEOPLE, 1):
        reversed_codes = ["" if a == 0 else "99" if a == -1 else str(6 - a) for a in answers]
        rows.append([name, f"0{n}.09.2026 08:1{n}", pid, roles[rid], site, langs[lang], *reversed_codes,
                     ";".join(t for t, on in zip(fi_task, ticks) if on), hours])
    (HERE / "webropol.csv").write_bytes(csv_text(rows, delimiter=";").encode("cp1252"))
    (HERE / "webropol.toml").write_text(
        """# Mapping of a Webropol export onto the tiny test programme.
[survey]
tool = "Webropol"
timestamp = "Vastausaika"
timestamp_format = "%d.%m.%Y %H:%M"
personal = ["Vastaajan nimi"]

[columns]
person_id = "Henkilönumero"
role = "Ammattinimike"
site = "Toimipiste"
language = "Vastauskieli"
hours_available = "Koulutukseen käytettävissä (h)"
ict1 = "Osaan käynnistää laitteet."
ict2 = "Tarvitsen apua kirjautumisessa."
ict3 = "Osaan tallentaa tiedostot."
rem1 = "Osaan pitää videovastaanoton."
rem2 = "Osaan ohjata chatissa."
rem3 = "Olen epävarma etäohjauksessa."

[scale]
reverse = true
missing = ["99"]

[values.role]
"1" = "nurse"
"2" = "physician"

[values.language]
suomi = "fi"
svenska = "sv"
english = "en"

[[multi]]
column = "Mitä palveluja käytät työssäsi?"
separator = ";"
target = "tasks"
""",
        encoding="utf-8",
    )


# --------------------------------------------------------------------------- Excel quirks


def excel_resaved() -> None:
    """An export re-saved in Excel: an instructions sheet first, answers on 'Vastaukset', ids and codes
    stored as numbers (4512.0), formatted but empty rows between and after the answers."""
    import xlsxwriter

    header = ["person_id", "role", "site", "language", *ITEMS, *TASKS, "hours_available", "preferred_formats"]
    book = xlsxwriter.Workbook(str(HERE / "excel_resaved.xlsx"))
    book.add_worksheet("Ohjeet").write(0, 0, "Digitaalisen osaamisen kysely 2026 – vastaukset ovat välilehdellä Vastaukset")
    ws = book.add_worksheet("Vastaukset")
    shade = book.add_format({"bg_color": "#DDEEFF", "border": 1})
    ws.write_row(0, 0, header)
    r = 1
    for n, (pid, rid, _role, site, lang, answers, ticks, hours, formats, _name, _email) in enumerate(PEOPLE):
        if n == 2:
            for j in range(len(header)):
                ws.write_blank(r, j, None, shade)
            r += 1
        ws.write_number(r, 0, float(4512 if pid == "0001" else int(pid)))
        ws.write_string(r, 1, rid)
        ws.write_string(r, 2, site)
        ws.write_string(r, 3, lang)
        for j, a in enumerate(answers):
            if a > 0:
                ws.write_number(r, 4 + j, float(a))
            elif a == -1:
                ws.write_string(r, 4 + j, "En osaa sanoa")
        for j, t in enumerate(ticks):
            ws.write_number(r, 10 + j, t)
        if hours:
            ws.write_number(r, 13, float(hours.replace(",", ".")))
        ws.write_string(r, 14, ";".join(formats)) if formats else None
        r += 1
    for rr in range(r, r + 20):
        for j in range(len(header)):
            ws.write_blank(rr, j, None, shade)
    book.close()


def malicious_xlsx() -> None:
    """A workbook whose shared strings declare an external entity (XXE) and nested entities
    ("billion laughs"): a safe reader neither fetches the file nor expands the entities."""
    import xlsxwriter

    path = HERE / "malicious.xlsx"
    book = xlsxwriter.Workbook(str(path))
    ws = book.add_worksheet("Responses")
    ws.write_row(0, 0, ["person_id", "role"])
    ws.write_row(1, 0, ["0001", "PLACEHOLDER"])
    book.close()
    with zipfile.ZipFile(path) as z:
        parts = {name: z.read(name) for name in z.namelist()}
    doctype = (
        '<!DOCTYPE sst [<!ENTITY xxe SYSTEM "file:///etc/passwd">'
        '<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">'
        '<!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;"><!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">]>'
    )
    sst = parts["xl/sharedStrings.xml"].decode("utf-8")
    head, rest = sst.split("?>", 1)
    sst = head + "?>" + doctype + rest.replace("PLACEHOLDER", "&xxe;&e;")
    parts["xl/sharedStrings.xml"] = sst.encode("utf-8")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)


# --------------------------------------------------------------------------- encodings, delimiters, labels, ids


PLAIN_HEADER = ["submitted_at", "person_id", "role", "site", "language", *ITEMS, *TASKS, "hours_available", "preferred_formats"]


def plain_rows() -> list[list[str]]:
    rows = []
    for n, (pid, rid, _role, site, lang, answers, ticks, hours, formats, _name, _email) in enumerate(PEOPLE, 1):
        rows.append([f"2026-09-0{n} 08:1{n}", pid, rid, site, lang, *[code(a, "En osaa sanoa") for a in answers], *[str(t) for t in ticks], hours, ";".join(formats)])
    return rows


def encodings_and_delimiters() -> None:
    rows = [PLAIN_HEADER, *plain_rows()]
    # Pipe-separated, as some HR systems write; the first line alone would also split on `;`
    # (a header that holds one), so the delimiter is decided over several lines.
    header = list(PLAIN_HEADER)
    header[0] = "submitted_at;utc"
    (HERE / "pipe.csv").write_bytes(csv_text([header, *rows[1:]], delimiter="|", end="\n").encode("utf-8"))
    # A file that mixes encodings: written in UTF-8, then answers appended from a cp1252 file (line 5).
    good = csv_text(rows[:4], delimiter=";").encode("utf-8")
    bad = csv_text(rows[4:], delimiter=";").encode("cp1252")
    (HERE / "mixed_encoding.csv").write_bytes(good + bad.replace(b"Keskussairaala", "Keskussairaala Pääkonttori".encode("cp1252")))


def labels() -> None:
    """Answers as people and tools write labels: case, spaces, non-breaking spaces, "5 - label" forms,
    fi/sv/en, a declared missing code -99, and one unknown label (row 4) that must be a cell error."""
    rows = [PLAIN_HEADER]
    base = plain_rows()
    forms = [
        ["5 - Täysin samaa mieltä", "  strongly DISAGREE ", "4 = Agree", "Jokseenkin\u00a0eri mieltä", "3", "Delvis av samma åsikt"],
        ["Helt av samma åsikt", "-99", "", "Vet inte", "", "1. Täysin eri mieltä"],
        ["AGREE", "disagree", "Neither agree nor disagree", "Strongly Agree", "Agree", "Strongly disagree"],
        ["Täysin eri mieltä", "Täysin samaa mieltä", "1", "En osaa sanoa", "Samaa mieltä", "Jokseenkin samaa mieltä"],
    ]
    for r, f in zip(base, forms):
        r[5:11] = f
        rows.append(r)
    (HERE / "labels.csv").write_bytes(csv_text(rows).encode("utf-8"))


def ids() -> None:
    """Ids as Excel leaves them: one turned into a date, one into 1.23E+11, and two that differ
    only by surrounding spaces (rows 4 and 5) — maybe two people, so both are rejected."""
    rows = [PLAIN_HEADER]
    base = plain_rows()
    values = ["1.9.2026", "1.23457E+11", "0003", " 0004 ", "0004"]
    for n, pid in enumerate(values):
        r = list(base[min(n, 3)])
        r[1] = pid
        r[0] = f"2026-09-0{n + 1} 09:00"
        rows.append(r)
    (HERE / "excel_ids.csv").write_bytes(csv_text(rows).encode("utf-8"))


def duplicates() -> None:
    """Resubmissions in a plain file with a submission time: 0002 three times (the latest is row 5),
    0003 twice at the same minute (a tie: both rejected)."""
    base = plain_rows()
    rows = [PLAIN_HEADER, base[0], base[1], base[2]]
    again = list(base[1]); again[0] = "2026-09-05 10:00"; again[7] = "1"
    rows.append(again)
    latest = list(base[1]); latest[0] = "2026-09-07 16:45"; latest[5] = "2"
    rows.append(latest)
    tie = list(base[2]); tie[5] = "1"
    rows.append(tie)
    rows.append(base[3])
    (HERE / "duplicates.csv").write_bytes(csv_text(rows).encode("utf-8"))


def main() -> None:
    ms_forms()
    google_forms()
    limesurvey()
    qualtrics()
    redcap()
    webropol()
    excel_resaved()
    malicious_xlsx()
    encodings_and_delimiters()
    labels()
    ids()
    duplicates()


if __name__ == "__main__":
    main()
