"""Write the survey-tool fixtures of issue 14: exports as each tool documents them, each read with a short mapping.

Made here from the tools' documented export formats (never copied from a real
export). The same four people of make_exports.py answer, on the tiny programme
(items ict1–3, rem1–3; tasks video_visits, ehr_documentation, chat_service):

- redcap_instruments.csv + .toml: a REDCap project with a screening form
  (consent, role, site) before the questionnaire ("CSV (raw data)": each
  instrument's fields, then its ``<instrument>_complete``); the project names
  its fields ``dig_1`` …, roles as codes 1/2, checkbox codes ``services___1``
  …. Person 0002's screening is Incomplete (0) but the questionnaire Complete
  (2): accepted. Record 0005 has a complete screening and an empty, Incomplete
  questionnaire: rejected for that alone.
- limesurvey_fulltext.csv + .toml: LimeSurvey "Export responses" with
  "Full question text" headings and full answers (Response ID, Date submitted,
  Last page, Start language, …; ``Question [subquestion]``; multiple choice
  "Yes" or empty). rem3 was not in this questionnaire. Records 5 and 6 have no
  submit date (incomplete).
- surveymonkey.csv + .toml: SurveyMonkey "All responses data", CSV,
  expanded: two header rows (the question in row 1 over its first column
  only, each matrix row and checkbox option labelled in row 2), cp1252 with
  CR-only line ends (as written on an old Mac), "N/A" as a matrix column,
  checkbox cells holding the option's text.
- qualtrics_7point.csv + .toml: Qualtrics "Download data table" with three
  header rows, the items on a 1–7 scale and rem3 on 0–10 (rescaled by the
  mapping), numeric choice values.
- google_forms_noid.csv + .toml: Google Forms responses without an id or
  e-mail column, sent to one ward of nurses (role and site are constants),
  chat_service not asked; ids are generated from the row number.

    python tests/data/exports/make_tool_exports.py
"""

from __future__ import annotations

from pathlib import Path

from make_exports import FORMAT_EN, LABEL_EN, PEOPLE, TASK_EN, TASKS, TEXT_EN, csv_text, label

HERE = Path(__file__).parent

# Seven-point codes each person gave in the Qualtrics fixture (ict1 … rem2), and rem3 on 0–10;
# None = not answered. What they decode to: 1 + (x - 1) * 4 / 6, and 1 + x * 4 / 10 for rem3.
SEVEN_POINT = {
    "0001": [7, 1, 5, 2, 4, 6],
    "0002": [6, 5, None, None, None, None],
    "0003": [4, 3, 4, 7, 5, 0],
    "0004": [1, 7, 2, None, 3, 10],
}
SURVEYMONKEY_STATEMENTS = ["My work devices: I can switch them on", "Logging in: I often need help", "Work files: I can save them",
                           "Video visits: I can run one", "Chat: I can counsel clients", "Remote counselling: I feel unsure"]
ROLE_CODES = {"nurse": "1", "physician": "2"}


def write(name: str, text: str, encoding: str = "utf-8") -> None:
    (HERE / name).write_bytes(text.encode(encoding))


# --------------------------------------------------------------------------- REDCap, two instruments


def redcap_instruments() -> None:
    header = ["record_id", "screening_timestamp", "consent", "role", "site", "screening_complete",
              "digital_competence_timestamp", "language", *[f"dig_{k}" for k in range(1, 7)],
              "services___1", "services___2", "services___3", "hours_available", "formats___elearning", "formats___workshop",
              "digital_competence_complete"]
    rows = [header]
    for n, (pid, rid, _role, site, lang, answers, ticks, hours, formats, _name, _email) in enumerate(PEOPLE, 1):
        screening = "0" if pid == "0002" else "2"
        rows.append([pid, f"2026-08-2{n} 09:00:00", "1", ROLE_CODES[rid], site, screening, f"2026-09-0{n} 08:1{n}:00", lang,
                     *[("" if a == 0 else "-99" if a == -1 else str(a)) for a in answers], *[str(t) for t in ticks],
                     hours.replace(",", "."), "1" if "elearning" in formats else "0", "1" if "workshop" in formats else "0", "2"])
    # Screened (role and site known), questionnaire never filled in: Incomplete and empty.
    rows.append(["0005", "2026-08-25 09:00:00", "1", "1", "Keskussairaala", "2", "[not completed]", "", "", "", "", "", "", "",
                 "0", "0", "0", "", "0", "0", "0"])
    write("redcap_instruments.csv", csv_text(rows, end="\n"))
    write("redcap_instruments.toml", """# REDCap project with its own field names (dig_1 …) and raw codes.
[survey]
tool = "REDCap"

[columns]
ict1 = "dig_1"
ict2 = "dig_2"
ict3 = "dig_3"
rem1 = "dig_4"
rem2 = "dig_5"
rem3 = "dig_6"
video_visits = "services___1"
ehr_documentation = "services___2"
chat_service = "services___3"

[values.role]
"1" = "nurse"
"2" = "physician"
""")


# --------------------------------------------------------------------------- LimeSurvey, full-text headings


def limesurvey_fulltext() -> None:
    q_ict, q_rem, q_services = "How much do you agree? (ICT)", "How much do you agree? (remote work)", "Which services do you use in your work?"
    header = ["Response ID", "Date submitted", "Last page", "Start language", "Seed", "Date started", "Date last action", "IP address",
              "Person ID", "Role", "Site", "Language",
              *[f"{q_ict} [{t}]" for t in TEXT_EN[:3]], *[f"{q_rem} [{t}]" for t in TEXT_EN[3:5]],
              *[f"{q_services} [{t}]" for t in TASK_EN], "Hours available", "Preferred formats"]
    rows = [header]
    for n, (pid, _rid, role, site, lang, answers, ticks, hours, formats, _name, _email) in enumerate(PEOPLE, 1):
        stamp = f"2026-09-0{n} 08:1{n}:00"
        rows.append([str(n), stamp, "4", lang, str(2000 + n), f"2026-09-0{n} 08:0{n}:00", stamp, f"10.1.0.{n}", pid, role, site, lang,
                     *[label(a) for a in answers[:5]], *["Yes" if on else "" for on in ticks], hours,
                     ";".join(FORMAT_EN[f] for f in formats)])
    # Two responses never submitted: one left on page 1, one on page 2 with answers.
    rows.append(["5", "", "1", "fi", "2005", "2026-09-04 10:00:00", "2026-09-04 10:02:00", "10.1.0.5", "0005", "Registered nurse",
                 "Keskussairaala", "fi", "Agree", "", "", "", "", "", "", "", "", ""])
    rows.append(["6", "", "2", "en", "2006", "2026-09-04 11:00:00", "2026-09-04 11:09:00", "10.1.0.6", "0006", "Physician",
                 "Keskussairaala", "en", "Agree", "Disagree", "Agree", "Agree", "Agree", "Yes", "", "", "", ""])
    write("limesurvey_fulltext.csv", csv_text(rows, quote_all=True))
    write("limesurvey_fulltext.toml", """# LimeSurvey, full question texts: rem3 was not in this questionnaire.
[survey]
tool = "LimeSurvey"
not_asked = ["rem3"]
""")


# --------------------------------------------------------------------------- SurveyMonkey, two header rows


def surveymonkey() -> None:
    meta = ["Respondent ID", "Collector ID", "Start Date", "End Date", "IP Address", "Email Address", "First Name", "Last Name", "Custom Data 1"]
    row1 = [*meta, "What is your person number?", "What is your role?", "", "Where do you work?", "Which language do you prefer?",
            "How much do you agree with these statements?", "", "", "", "", "",
            "Which of these services do you use in your work?", "", "", "How many hours could you spend on training?"]
    row2 = [""] * len(meta) + ["Open-Ended Response", "Response", "Other (please specify)", "Open-Ended Response", "Response",
                               *SURVEYMONKEY_STATEMENTS, *TASK_EN, "Open-Ended Response"]
    rows = [row1, row2]
    languages = {"fi": "Suomi", "sv": "Svenska", "en": "English"}
    for n, (pid, _rid, role, site, lang, answers, ticks, hours, _formats, name, email) in enumerate(PEOPLE, 1):
        first, last = name.split(" ", 1)
        matrix = ["" if a == 0 else "N/A" if a == -1 else LABEL_EN[a - 1] for a in answers]
        rows.append([str(11400000000 + n), "401234567", f"09/0{n}/2026 08:0{n}:10 AM", f"09/0{n}/2026 08:1{n}:33 AM", f"198.51.100.{n}",
                     email, first, last, "", pid, role, "", site, languages[lang], *matrix,
                     *[t if on else "" for t, on in zip(TASK_EN, ticks)], hours])
    write("surveymonkey.csv", csv_text(rows, end="\r"), encoding="cp1252")
    write("surveymonkey.toml", """# SurveyMonkey, expanded CSV: matrix rows are addressed by their labels in header row 2
# (their row-1 header is blank), one by its position.
[survey]
tool = "SurveyMonkey"
personal = ["Custom Data 1"]

[columns]
person_id = "What is your person number?"
role = "What is your role?"
site = "Where do you work?"
language = "Which language do you prefer?"
hours_available = "How many hours could you spend on training?"
ict1 = { header = "My work devices: I can switch them on", row = 2 }
ict2 = { header = "Logging in: I often need help", row = 2 }
ict3 = { header = "Work files: I can save them", row = 2 }
rem1 = { header = "Video visits: I can run one", row = 2 }
rem2 = { header = "Chat: I can counsel clients", row = 2 }
rem3 = { column_number = 20 }

[scale]
missing = ["N/A"]
""")


# --------------------------------------------------------------------------- Qualtrics, seven-point scale


def qualtrics_7point() -> None:
    meta = ["StartDate", "EndDate", "Status", "IPAddress", "Progress", "Duration (in seconds)", "Finished", "RecordedDate", "ResponseId",
            "DistributionChannel", "UserLanguage"]
    meta_text = ["Start Date", "End Date", "Response Type", "IP Address", "Progress", "Duration (in seconds)", "Finished", "Recorded Date",
                 "Response ID", "Distribution Channel", "User Language"]
    tags = [*meta, "person_id", "role", "site", "language", *[f"Q1_{k}" for k in range(1, 6)], "Q3", *[f"Q2_{k}" for k in range(1, 4)]]
    texts = [*meta_text, "Your person number", "Your role", "Your unit", "Language",
             *[f"How much do you agree? (1 = not at all, 7 = completely) - {t}" for t in TEXT_EN[:5]],
             f"From 0 to 10: {TEXT_EN[5]}", *[f"Which services do you use? - {t}" for t in TASK_EN]]
    import_ids = [f'{{"ImportId":"{m[0].lower() + m[1:]}"}}' for m in meta] + [f'{{"ImportId":"QID{k}"}}' for k in range(1, len(tags) - len(meta) + 1)]
    rows = [tags, texts, import_ids]
    for n, (pid, rid, _role, site, lang, _answers, ticks, _hours, _formats, _name, _email) in enumerate(PEOPLE, 1):
        codes = ["" if c is None else str(c) for c in SEVEN_POINT[pid]]
        rows.append([f"2026-09-0{n} 08:00:00", f"2026-09-0{n} 08:1{n}:00", "IP Address", f"192.0.2.{n}", "100", "640", "True",
                     f"2026-09-0{n} 08:1{n}:01", f"R_{n}xYzAbCdEfGhIj", "anonymous", "EN", pid, rid, site, lang, *codes,
                     *["1" if on else "" for on in ticks]])
    write("qualtrics_7point.csv", csv_text(rows), encoding="utf-8-sig")
    write("qualtrics_7point.toml", """# Qualtrics with numeric choice values: a 1-7 agreement scale, and one item on 0-10.
[survey]
tool = "Qualtrics"
header_rows = 3

[columns]
rem3 = { header = "Q3", scale = { from = [0, 10] } }

[scale]
from = [1, 7]
""")


# --------------------------------------------------------------------------- Google Forms without ids


def google_forms_noid() -> None:
    q = "How much do you agree with these statements?"
    header = ["Timestamp", "Language", *[f"{q} [{t}]" for t in TEXT_EN], "Which services do you use in your work?", "Hours available"]
    rows = [header]
    stamps = ["2026/09/01 8:10:33 AM GMT+3", "2026/09/01 9:22:05 AM GMT+3", "2026/09/02 1:05:40 PM GMT+3", "2026/09/03 3:47:12 PM GMT+3"]
    for stamp, (_pid, _rid, _role, _site, lang, answers, ticks, hours, _formats, _name, _email) in zip(stamps, PEOPLE):
        services = ", ".join(t for t, on, task in zip(TASK_EN, ticks, TASKS) if on and task != "chat_service")
        rows.append([stamp, lang, *[label(a) for a in answers], services, hours])
    write("google_forms_noid.csv", csv_text(rows, quote_all=True))
    write("google_forms_noid.toml", """# Google Forms sent to the nurses of one ward, without an id question; chat service not asked.
[survey]
tool = "Google Forms"
not_asked = ["chat_service"]

[columns]
person_id = { generate = "row", prefix = "GF" }

[constants]
role = "nurse"
site = "Ward 5"
""")


def main() -> None:
    redcap_instruments()
    limesurvey_fulltext()
    surveymonkey()
    qualtrics_7point()
    google_forms_noid()


if __name__ == "__main__":
    main()
