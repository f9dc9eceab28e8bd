"""Personal data on request: `person`, `erase`, `share`, `keygen`, small cells in the report, retention.

The run is the golden survey's (tests/golden/survey.csv: 38 accepted people, 4 rejected rows, a letter per
person, plans.xlsx). Erasure is checked by scanning every byte of every file of the folder (inside the XLSX
zip and the report's embedded SVG charts too, and every file name) for the erased ids.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import stat
import zipfile
from pathlib import Path

import pandas as pd
import pytest

GOLDEN = Path(__file__).parent / "golden" / "survey.csv"
ERASED = ["g003", "g101"]  # g003 was planned; g101 has only a rejected row


@pytest.fixture(scope="module")
def golden_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from trainmatch.jobs import assign

    out = tmp_path_factory.mktemp("golden") / "run"
    assign(GOLDEN, out, seed=0)
    return out


@pytest.fixture
def run(golden_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(golden_run, copy)
    return copy


def _contents(folder: Path) -> dict[str, bytes]:
    """Every file's bytes by its path, with XLSX members and the report's base64 charts decoded into them."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.suffix == ".xlsx":
            with zipfile.ZipFile(path) as book:
                data += b"".join(book.read(name) for name in book.namelist())
        if path.suffix == ".html":
            data += b"".join(base64.b64decode(m) for m in re.findall(rb"base64,([A-Za-z0-9+/=]+)", data))
        out[path.relative_to(folder).as_posix()] = data
    return out


def _holding(folder: Path, person_id: str) -> list[str]:
    """The files whose name or bytes hold the id as a whole token."""
    token = re.compile(rb"(?<![0-9A-Za-z])" + re.escape(person_id.encode()) + rb"(?![0-9A-Za-z])")
    return [name for name, data in _contents(folder).items() if token.search(name.encode()) or token.search(data)]


def _digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _text_table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


# --------------------------------------------------------------------------- erase


def test_erase_leaves_no_byte_of_the_people_and_keeps_everyone_else(cli, run: Path, golden_run: Path) -> None:
    for pid in ERASED:
        assert _holding(run, pid), f"{pid} should be in the run before erasure"
    result = cli("erase", run, "--id", ERASED[0], "--id", ERASED[1])
    assert result.exit_code == 0, result.output
    assert "Erased 2 person(s)" in result.output
    for pid in ERASED:
        assert _holding(run, pid) == []
    # The remaining people's rows are unchanged, byte for byte in the CSV tables.
    for name in ("people.csv", "plans.csv", "deferred.csv", "rejects.csv"):
        before = _text_table(golden_run / name)
        after = _text_table(run / name)
        kept = before[~before["person_id"].isin(ERASED)].reset_index(drop=True)
        pd.testing.assert_frame_equal(after, kept)
        lines = (golden_run / name).read_text(encoding="utf-8").splitlines()
        assert (run / name).read_text(encoding="utf-8").splitlines() == [ln for ln in lines if not any(f'"{p}"' in ln for p in ERASED)]
    # Every other letter is the same file; the person's letter is gone.
    letters = sorted(p.name for p in (golden_run / "plans").iterdir())
    assert sorted(p.name for p in (run / "plans").iterdir()) == [n for n in letters if n != "plan-g003.html"]
    for name in letters:
        if name != "plan-g003.html":
            assert (run / "plans" / name).read_bytes() == (golden_run / "plans" / name).read_bytes()
    # The workbook was rewritten from the remaining rows.
    from python_calamine import CalamineWorkbook

    sheet = CalamineWorkbook.from_path(str(run / "plans.xlsx")).get_sheet_by_name("people").to_python()
    assert [row[0] for row in sheet[1:]] == _text_table(run / "people.csv")["person_id"].tolist()
    # Counts were rebuilt, and the run records the erasure without ids.
    record = json.loads((run / "run.json").read_text(encoding="utf-8"))
    assert record["counts"]["accepted"] == 37 and record["counts"]["rejected"] == 3 and record["counts"]["rows_read"] == 40
    assert record["counts"]["reconciles"] is True
    assert [set(e) for e in record["erasures"]] == [{"at", "people"}] and record["erasures"][0]["people"] == 2
    cohorts = _text_table(run / "cohorts.csv")
    people = _text_table(run / "people.csv")
    assert cohorts.set_index("cohort")["size"].astype(int).to_dict() == people["cohort"].value_counts().to_dict()
    capacity = _text_table(run / "capacity.csv")
    assert int(capacity.loc[capacity["site"] == "all", "people"].iloc[0]) == 37
    assert "were erased from this run on request" in (run / "report.html").read_text(encoding="utf-8")


def test_erase_an_id_not_in_the_run_suggests_the_closest_and_changes_nothing(cli, run: Path) -> None:
    before = _digest(run)
    result = cli("erase", run, "--id", "g003", "--id", "g03")
    assert result.exit_code == 1
    assert "person_id 'g03' is not in" in result.output and "Did you mean" in result.output
    assert "Traceback" not in result.output
    assert _digest(run) == before


def test_erase_refuses_a_folder_that_is_not_a_run(cli, tmp_path: Path) -> None:
    (tmp_path / "people.csv").write_text("person_id\nx\n", encoding="utf-8")
    result = cli("erase", tmp_path, "--id", "x")
    assert result.exit_code == 1
    assert "is not a trainmatch run" in result.output
    assert (tmp_path / "people.csv").read_text(encoding="utf-8") == "person_id\nx\n"


def test_erase_refuses_a_file_it_does_not_know(cli, run: Path) -> None:
    (run / "notes.txt").write_text("g003 asked for a session on Tuesdays\n", encoding="utf-8")
    before = _digest(run)
    result = cli("erase", run, "--id", "g003")
    assert result.exit_code == 1
    assert "notes.txt" in result.output and "Nothing was changed" in result.output
    assert _digest(run) == before


def test_erase_that_fails_midway_leaves_the_run_as_it_was(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trainmatch import privacy

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device", str(run / "report.html"))

    monkeypatch.setattr(privacy, "rebuild", broken)
    before = _digest(run)
    with pytest.raises(OSError):
        privacy.erase(run, ["g003"])
    assert _digest(run) == before
    assert [p.name for p in run.parent.iterdir() if p.name.startswith(".run")] == []


def test_erase_with_an_ids_file(cli, run: Path, tmp_path: Path) -> None:
    ids = tmp_path / "leavers.txt"
    ids.write_text("# leavers in November\ng003\n\ng101\n", encoding="utf-8")
    result = cli("erase", run, "--ids-file", ids)
    assert result.exit_code == 0, result.output
    assert all(_holding(run, pid) == [] for pid in ERASED)


def test_erase_usage_errors(cli, run: Path, tmp_path: Path) -> None:
    assert cli("erase", run).exit_code == 2
    ids = tmp_path / "ids.txt"
    ids.write_text("g003\n", encoding="utf-8")
    assert cli("erase", run, "--id", "g003", "--ids-file", ids).exit_code == 2
    result = cli("erase", run, "--id", "  ")
    assert result.exit_code == 2 and "must not be empty" in result.output


# --------------------------------------------------------------------------- the registry's kinds, on hand-made files


SESSIONS = (
    '"session","group","support_person","attendees","n_attendees"\n'
    '"S1","C1-G01","g003","g001;g003;g004",3\n'
    '"S2","C2-G01","g005","g005;g006",2\n'
    '"S3","C3-G01","g007","g007;g008;g009","3"\n'
)
FLATFILE = "add, student, g001, ehr.intermediate\nadd, student, g003, ehr.intermediate, 1767225600, 1769904000\nadd, student, g0031, ehr.advanced\n"
CALENDAR = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//trainmatch//EN\r\n"
    "BEGIN:VEVENT\r\nUID:S1@trainmatch\r\nSUMMARY:EHR workshop\r\n"
    "DESCRIPTION:Peer support: g003. Bring your questions about the patient record and the e-prescripti\r\n on view.\r\n"
    "ATTENDEE;CN=g003:mailto:support@example.org\r\nEND:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:S2@trainmatch\r\nSUMMARY:Security webinar\r\nDESCRIPTION:Peer support: g005\r\nEND:VEVENT\r\n"
    "END:VCALENDAR\r\n"
)


@pytest.fixture
def extended(run: Path) -> tuple[Path, tuple]:
    """The run with a hand-made sessions table listing ids, a Moodle flat file and a calendar naming people, and
    registry entries for them (ahead of the built-in ones): the table, flatfile and ics kinds on their own."""
    from trainmatch.runfiles import RUN_FILES, RunFile

    (run / "handmade").mkdir()
    (run / "handmade" / "sessions.csv").write_text(SESSIONS, encoding="utf-8")
    (run / "handmade" / "moodle-flatfile.txt").write_text(FLATFILE, encoding="utf-8")
    (run / "handmade" / "C1-G01.ics").write_bytes(CALENDAR.encode("utf-8"))
    registry = (
        RunFile("handmade/sessions.csv", "table", named=("support_person",), lists=("attendees",), counts={"attendees": "n_attendees"}),
        RunFile("handmade/moodle-flatfile.txt", "flatfile", share="drop"),
        RunFile("handmade/*.ics", "ics", drop=("ATTENDEE",), share="drop"),
    ) + RUN_FILES
    return run, registry


def test_erase_covers_sessions_enrolments_and_calendars(extended: tuple[Path, tuple]) -> None:
    from trainmatch.privacy import erase

    run, registry = extended
    done = erase(run, ["g003"], registry=registry)
    assert _holding(run, "g003") == []
    assert (run / "handmade" / "sessions.csv").read_text(encoding="utf-8") == (
        '"session","group","support_person","attendees","n_attendees"\n'
        '"S1","C1-G01","to be named","g001;g004",2\n'
        '"S2","C2-G01","g005","g005;g006",2\n'
        '"S3","C3-G01","g007","g007;g008;g009","3"\n'
    )
    assert (run / "handmade" / "moodle-flatfile.txt").read_text(encoding="utf-8") == (
        "add, student, g001, ehr.intermediate\nadd, student, g0031, ehr.advanced\n"
    )
    calendar = (run / "handmade" / "C1-G01.ics").read_bytes().decode("utf-8")
    assert "ATTENDEE" not in calendar
    assert "DESCRIPTION:Peer support: to be named. Bring" in calendar
    assert "DESCRIPTION:Peer support: g005\r\n" in calendar  # another event's lines keep their bytes
    assert all(len(line.encode()) <= 75 for line in calendar.split("\r\n"))
    unfolded = calendar.replace("\r\n ", "")
    assert "e-prescription view." in unfolded
    assert done.removed["handmade/moodle-flatfile.txt"] == 1 and done.changed["handmade/C1-G01.ics"] == 2


def test_person_finds_every_mention(extended: tuple[Path, tuple]) -> None:
    from trainmatch.privacy import person

    run, registry = extended
    doc = person(run, "g003", registry=registry)
    files = doc["runs"][0]["files"]
    assert files["people.csv"]["rows"][0]["site"] == "Keskussairaala"
    assert "plans.csv" not in files  # g003 needs no training
    assert files["plans/plan-g003.html"]["file"] == "plans/plan-g003.html"
    assert files["handmade/sessions.csv"]["named_in"][0]["session"] == "S1"
    assert files["handmade/moodle-flatfile.txt"]["lines"] == ["add, student, g003, ehr.intermediate, 1767225600, 1769904000"]
    assert any(line.startswith("EHR workshop: DESCRIPTION:Peer support: g003") for line in files["handmade/C1-G01.ics"]["lines"])


# --------------------------------------------------------------------------- person


def test_person_prints_json_with_every_file_that_holds_them(cli, run: Path) -> None:
    result = cli("person", run, "--id", "g001")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    files = doc["runs"][0]["files"]
    assert set(files) == {"people.csv", "plans.csv", "deferred.csv", "plans/plan-g001.html", "sessions.csv",
                          "lms/enrolments.csv", "lms/moodle-flatfile.txt", "lms/moodle-cohorts.csv"}
    row = files["people.csv"]["rows"][0]
    assert row["person_id"] == "g001" and row["cohort"] == "C2" and row["score_ict_basics"] == 3.333 and row["score_remote_care"] is None
    for name in ("plans.csv", "deferred.csv"):
        table = _text_table(run / name)
        assert len(files[name]["rows"]) == int((table["person_id"] == "g001").sum()) > 0


def test_person_of_a_rejected_row_only(cli, run: Path) -> None:
    doc = json.loads(cli("person", run, "--id", "g101").stdout)
    assert list(doc["runs"][0]["files"]) == ["rejects.csv"]


def test_person_unknown_id_suggests_the_closest(cli, run: Path) -> None:
    result = cli("person", run, "--id", "g0003")
    assert result.exit_code == 1
    assert "person_id 'g0003' is not in" in result.output and "Did you mean 'g003'?" in result.output


def test_person_html_page_and_a_folder_of_runs(cli, run: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    shutil.copytree(run, runs / "round1")
    shutil.copytree(run, runs / "round2")
    page = tmp_path / "g003.html"
    result = cli("person", runs, "--id", "g003", "-o", page)
    assert result.exit_code == 0, result.output
    html = page.read_text(encoding="utf-8")
    assert html.count("<h2>Run ") == 2 and "Keskussairaala" in html
    again = cli("person", runs, "--id", "g003", "-o", page)
    assert again.exit_code == 2 and "already exists" in again.output
    assert cli("person", runs, "--id", "g003", "-o", tmp_path / "x.txt").exit_code == 2


def test_person_escapes_html(run: Path) -> None:
    from trainmatch.privacy import person, person_html

    doc = person(run, "g003")
    doc["runs"][0]["files"]["people.csv"]["rows"][0]["site"] = "<script>alert(1)</script>"
    html = person_html(doc)
    assert "<script>alert" not in html and "&lt;script&gt;" in html


# --------------------------------------------------------------------------- share and keygen


@pytest.fixture
def key(tmp_path: Path, cli) -> Path:
    path = tmp_path / "secret.key"
    assert cli("keygen", path).exit_code == 0
    return path


def test_keygen_writes_a_private_key_and_never_overwrites(cli, key: Path) -> None:
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(bytes.fromhex(key.read_text().strip())) == 32
    before = key.read_bytes()
    result = cli("keygen", key)
    assert result.exit_code == 2 and "never overwritten" in result.output
    assert key.read_bytes() == before


def test_share_has_no_identities_and_pairs_rounds(cli, run: Path, key: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "shared1", tmp_path / "shared2"
    assert cli("share", run, "-o", first, "--key", key).exit_code == 0
    assert cli("share", run, "-o", second, "--key", key).exit_code == 0
    ids = _text_table(run / "people.csv")["person_id"].tolist() + _text_table(run / "rejects.csv")["person_id"].tolist()
    for pid in {i for i in ids if i}:
        assert _holding(first, pid) == [], pid
    assert not (first / "plans").exists()
    people1, people2 = _text_table(first / "people.csv"), _text_table(second / "people.csv")
    assert people1["person_id"].tolist() == people2["person_id"].tolist()  # the same key: the same pseudonyms
    assert people1["person_id"].str.fullmatch(r"p[0-9a-f]{20}").all() and people1["person_id"].is_unique
    plans = _text_table(first / "plans.csv")
    assert set(plans["person_id"]) <= set(people1["person_id"])  # tables still join
    assert "value" not in _text_table(first / "rejects.csv")
    # Small cells: the cohort of 4 people and every site of fewer than 5 people.
    cohorts = _text_table(first / "cohorts.csv").set_index("cohort")
    assert cohorts.loc["C2", "size"] == "< 5" and cohorts.loc["C2", "mean_ehr"] == ""
    sites = people1["site"].value_counts()
    assert (sites[sites.index != "other sites (each under 5 people)"] >= 5).all()
    assert "other sites (each under 5 people)" in sites
    report = (first / "report.html").read_text(encoding="utf-8")
    assert "&lt; 5" in report and "shared copy without identities" in report
    record = json.loads((first / "run.json").read_text(encoding="utf-8"))
    assert record["shared"]["min_cell"] == 5
    assert record["shared"]["left_out"] == ["lms/enrolments.csv", "lms/moodle-cohorts.csv", "lms/moodle-flatfile.txt",
                                            "model/*", "plans/plan-*.html"]
    assert sorted(p.name for p in first.iterdir() if p.is_dir()) == []  # no letters, LMS files nor model


def test_share_with_another_key_gives_other_pseudonyms(cli, run: Path, key: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.key"
    assert cli("keygen", other).exit_code == 0
    assert cli("share", run, "-o", tmp_path / "a", "--key", key).exit_code == 0
    assert cli("share", run, "-o", tmp_path / "b", "--key", other).exit_code == 0
    a, b = _text_table(tmp_path / "a" / "people.csv"), _text_table(tmp_path / "b" / "people.csv")
    assert not set(a["person_id"]) & set(b["person_id"])


def test_share_refuses_bad_keys_and_an_existing_output(cli, run: Path, key: Path, tmp_path: Path) -> None:
    out = tmp_path / "shared"
    missing = cli("share", run, "-o", out, "--key", tmp_path / "nokey")
    assert missing.exit_code == 2 and "does not exist" in missing.output
    os.chmod(key, 0o644)
    readable = cli("share", run, "-o", out, "--key", key)
    assert readable.exit_code == 1 and "chmod 600" in readable.output
    os.chmod(key, 0o600)
    short = tmp_path / "short.key"
    short.write_text("0123456789abcdef\n")
    os.chmod(short, 0o600)
    result = cli("share", run, "-o", out, "--key", short)
    assert result.exit_code == 1 and "at least 32" in result.output
    assert not out.exists()
    assert cli("share", run, "-o", out, "--key", key).exit_code == 0
    again = cli("share", run, "-o", out, "--key", key)
    assert again.exit_code == 2 and "--force" in again.output
    assert cli("share", run, "-o", out, "--key", key, "--force").exit_code == 0
    inside = cli("share", run, "-o", run / "shared", "--key", key)
    assert inside.exit_code == 1 and "input" in inside.output


# --------------------------------------------------------------------------- small cells in every report


def test_the_report_suppresses_small_cells(golden_run: Path) -> None:
    html = (golden_run / "report.html").read_text(encoding="utf-8")
    cohort_row = re.search(r"<tr><td>C2</td>(.*?)</tr>", html, re.S).group(1)
    assert "&lt; 5" in cohort_row and ">4<" not in cohort_row


def test_min_cell_one_shows_every_cell(golden_run: Path, default_programme) -> None:
    from trainmatch.privacy import render_run_report

    record = json.loads((golden_run / "run.json").read_text(encoding="utf-8"))
    html = render_run_report(golden_run, default_programme, record, notes=[], min_cell=1)
    cohort_row = re.search(r"<tr><td>C2</td>(.*?)</tr>", html, re.S).group(1)
    assert "&lt; 5" not in html and re.search(r">\s*4\s*<", cohort_row)


def test_min_cell_is_checked_when_the_programme_loads(tmp_path: Path) -> None:
    from trainmatch.errors import ProgrammeError
    from trainmatch.programme import load_programme

    folder = tmp_path / "prog"
    shutil.copytree(Path(__file__).parent / "data" / "programmes" / "tiny", folder)
    settings = folder / "programme.toml"
    settings.write_text(settings.read_text(encoding="utf-8") + "\n[privacy]\nmin_cell = 0\nretain_months = 24\n", encoding="utf-8")
    with pytest.raises(ProgrammeError, match="privacy.min_cell"):
        load_programme(folder)
    settings.write_text(settings.read_text(encoding="utf-8").replace("min_cell = 0", "min_cell = 10"), encoding="utf-8")
    loaded = load_programme(folder)
    assert loaded.min_cell == 10 and loaded.retain_months == 24


# --------------------------------------------------------------------------- retention


def test_erase_expired_removes_only_runs_older_than_the_retention(cli, golden_run: Path, tmp_path: Path) -> None:
    from trainmatch.programme import default_programme_files

    root = tmp_path / "runs"
    root.mkdir()
    old, new = root / "2023", root / "2026"
    shutil.copytree(golden_run, old)
    shutil.copytree(golden_run, new)
    three_years = 3 * 365 * 24 * 3600
    stamp = (old / "run.json").stat().st_mtime - three_years
    os.utime(old / "run.json", (stamp, stamp))
    programme = tmp_path / "prog"
    programme.mkdir()
    for name, data in default_programme_files().items():
        (programme / name).write_bytes(data)
    no_limit = cli("erase", root, "--expired", "--programme", programme)
    assert no_limit.exit_code == 2 and "retain_months" in no_limit.output
    settings = programme / "programme.toml"
    settings.write_text(settings.read_text(encoding="utf-8") + "\n[privacy]\nretain_months = 24\n", encoding="utf-8")
    result = cli("erase", root, "--expired", "--programme", programme)
    assert result.exit_code == 0, result.output
    assert not old.exists() and new.is_dir()
    assert sorted(p.name for p in root.iterdir()) == ["2026"]


def test_erase_keeps_the_run_date_for_retention(run: Path) -> None:
    from trainmatch.privacy import erase

    stamp = 1_600_000_000
    os.utime(run / "run.json", (stamp, stamp))
    erase(run, ["g003"])
    assert int((run / "run.json").stat().st_mtime) == stamp


# --------------------------------------------------------------------------- invariants of the byte-exact removal


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_TEXT = st.text(alphabet=st.sampled_from(list('ab ,"\n\r;xé=')), max_size=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.tuples(st.sampled_from(["a1", "a2", "a10", "b 1", "x"]), _TEXT, st.one_of(st.none(), st.floats(-5, 5)), _TEXT),
                  max_size=25),
    erased=st.sets(st.sampled_from(["a1", "a2", "a10", "b 1", "x"]), min_size=1),
)
def test_erasing_rows_equals_writing_the_remaining_rows(tmp_path: Path, rows: list, erased: set) -> None:
    """Removing rows from a written table gives the bytes of writing only the other rows: quotes, commas and
    line breaks inside cells never shift a row, and no other row changes."""
    from trainmatch.outputs import write_csv_fast
    from trainmatch.runfiles import RunFile, erase_table

    frame = pd.DataFrame(rows, columns=["person_id", "note", "score", "other"]).astype({"person_id": object, "note": object, "other": object})
    source, target, expected = tmp_path / "t.csv", tmp_path / "out.csv", tmp_path / "expected.csv"
    write_csv_fast(frame, source)
    write_csv_fast(frame[~frame["person_id"].isin(erased)].reset_index(drop=True), expected)
    removed = erase_table(source, target, RunFile("t.csv", "table", owner=("person_id",)), set(erased))
    assert removed == int(frame["person_id"].isin(erased).sum())
    if len(frame) == int(frame["person_id"].isin(erased).sum()):
        assert target.read_bytes().splitlines()[0] == expected.read_bytes().splitlines()[0]
    else:
        assert target.read_bytes() == expected.read_bytes()


def test_erase_of_everyone_is_refused(run: Path) -> None:
    from trainmatch.errors import DataError
    from trainmatch.privacy import erase

    everyone = _text_table(run / "people.csv")["person_id"].tolist()
    before = _digest(run)
    with pytest.raises(DataError, match="delete the run folder"):
        erase(run, everyone)
    assert _digest(run) == before


def test_pseudonyms_are_the_documented_hmac_and_cover_lists(extended: tuple[Path, tuple], key: Path, tmp_path: Path) -> None:
    """Anyone holding the key can recompute a pseudonym (HMAC-SHA256 of the id, first 20 hex digits after 'p');
    ids inside lists and named cells get the same pseudonym as in people.csv."""
    import hmac

    from trainmatch.sharing import load_key, share

    run, registry = extended
    share(run, tmp_path / "shared", key, registry=registry)
    secret = load_key(key)
    expected = "p" + hmac.new(secret, b"g003", "sha256").hexdigest()[:20]
    people = _text_table(tmp_path / "shared" / "people.csv")
    assert expected in set(people["person_id"])
    sessions = _text_table(tmp_path / "shared" / "handmade" / "sessions.csv")
    assert sessions.loc[0, "support_person"] == expected
    assert sessions.loc[0, "attendees"].split(";")[1] == expected
    assert not (tmp_path / "shared" / "lms").exists() and not (tmp_path / "shared" / "calendar").exists()
    assert _holding(tmp_path / "shared", "g003") == []


def test_a_derived_file_erase_cannot_rebuild_is_kept(run: Path) -> None:
    from trainmatch.privacy import erase
    from trainmatch.runfiles import RUN_FILES, RunFile

    (run / "effects.csv").write_text('"site","n","mean_change"\n"all",38,0.4\n', encoding="utf-8")
    erase(run, ["g003"], registry=RUN_FILES + (RunFile("effects.csv", "derived", share="aggregate"),))
    assert (run / "effects.csv").read_text(encoding="utf-8") == '"site","n","mean_change"\n"all",38,0.4\n'


def test_share_and_person_refuse_a_folder_that_is_not_a_run(cli, tmp_path: Path, key: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "people.csv").write_text("person_id\nx\n", encoding="utf-8")
    for args in (("share", plain, "-o", tmp_path / "out", "--key", key), ("person", plain, "--id", "x")):
        result = cli(*args)
        assert result.exit_code == 1 and "is not a trainmatch run" in result.output
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- a full run: sessions, calendar, LMS, follow-up


@pytest.fixture(scope="module")
def rounds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two rounds made as the README says: assign with a start date (sessions, calendar/) and --lms-users (lms/ with
    moodle-users.csv), then a follow-up round with completions and feedback (change.csv, leavers.csv, effects.csv …).
    Usernames are 'user-<id>', so a username left behind is found by the byte scan as its id."""
    from click.testing import CliRunner

    from trainmatch.cli import main

    base = tmp_path_factory.mktemp("rounds")
    runner = CliRunner()

    def run(*args: object) -> None:
        result = runner.invoke(main, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == 0, result.output

    run("synth", "--n", 300, "--seed", 3, "-o", base / "s.csv")
    ids = pd.read_csv(base / "s.csv", dtype=str, keep_default_na=False)["person_id"]
    pd.DataFrame({"person_id": ids, "username": "user-" + ids}).to_csv(base / "users.csv", index=False)
    run("assign", base / "s.csv", "-o", base / "r1", "--start", "2027-01-11", "--lms-users", base / "users.csv")
    run("synth", "--followup-of", base / "r1", "--seed", 4, "-o", base / "s2.csv", "--completions-out", base / "c.csv",
        "--feedback-out", base / "f.csv")
    ids2 = pd.read_csv(base / "s2.csv", dtype=str, keep_default_na=False)["person_id"]
    pd.DataFrame({"person_id": ids2, "username": "user-" + ids2}).to_csv(base / "users2.csv", index=False)
    run("followup", base / "r1", base / "s2.csv", "-o", base / "r2", "--completions", base / "c.csv", "--feedback", base / "f.csv",
        "--start", "2027-06-01", "--lms-users", base / "users2.csv")
    return base / "r1", base / "r2"


def _chosen(run: Path) -> tuple[str, str]:
    """A support person of a group (whose members' letters name them) and an attendee of a session who supports no
    one and is no one's support person's group mate by chance: the two people the erasure tests erase."""
    people = _text_table(run / "people.csv")
    helper = people.loc[people["support_person"] != "", "support_person"].value_counts().index[0]
    plans = _text_table(run / "plans.csv")
    attending = set(plans.loc[plans["session_id"] != "", "person_id"])
    candidates = people[people["person_id"].isin(attending) & (people["supports"] == "") & (people["person_id"] != helper)]
    return helper, candidates["person_id"].iloc[0]


def _descriptions(folder: Path) -> dict[str, int]:
    """Each calendar event's attendee count by its session id, from the unfolded DESCRIPTION lines."""
    out = {}
    for path in (folder / "calendar").glob("*.ics"):
        text = path.read_bytes().decode("utf-8").replace("\r\n ", "")
        for sid, n in re.findall(r"DESCRIPTION:Session (.*?)\\, group .*?\\, (\d+) attendees", text):
            out[sid.replace("\\", "")] = int(n)
    return out


@pytest.fixture(params=["r1", "r2"])
def full_run(request: pytest.FixtureRequest, rounds: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the first round (with lms/moodle-users.csv) or of the follow-up round, and the original."""
    original = rounds[0] if request.param == "r1" else rounds[1]
    copy = tmp_path / request.param
    shutil.copytree(original, copy)
    return original, copy


def test_erase_from_a_run_with_sessions_calendar_lms_and_a_follow_up(cli, full_run: tuple[Path, Path]) -> None:
    original, run = full_run
    helper, attendee = _chosen(original)
    erased = {helper, attendee}
    for sub in ("calendar", "lms", "sessions.csv"):
        assert (run / sub).exists()
    if run.name == "r1":
        assert (run / "lms" / "moodle-users.csv").is_file()
    else:
        assert (run / "change.csv").is_file() and (run / "effects.csv").is_file()
    for pid in erased:
        assert _holding(run, pid), pid
    result = cli("erase", run, "--id", helper, "--id", attendee)
    assert result.exit_code == 0, result.output
    for pid in erased:
        assert _holding(run, pid) == [], pid

    people_before, people = _text_table(original / "people.csv"), _text_table(run / "people.csv")
    # The support person is "to be named" in groups.csv, in people.csv and in the letters of the people they supported.
    supported = people_before.loc[people_before["support_person"] == helper, "person_id"].tolist()
    assert supported
    groups_before, groups = _text_table(original / "groups.csv"), _text_table(run / "groups.csv")
    was_support = groups_before.loc[(groups_before["support_1"] == helper) | (groups_before["support_2"] == helper), "group"]
    assert len(was_support)
    merged = groups.set_index("group")
    for g in was_support:
        assert "to be named" in (merged.loc[g, "support_1"], merged.loc[g, "support_2"])
    assert (people.set_index("person_id").loc[[p for p in supported if p != attendee], "support_person"] == "to be named").all()
    from trainmatch.letters import TEXT, plan_filename

    languages = set()
    for pid in supported:
        if pid != attendee:
            letter = (run / "plans" / plan_filename(pid)).read_text(encoding="utf-8")
            lang = re.search(r'<html lang="([a-z]+)"', letter).group(1)
            languages.add(lang)
            assert TEXT[lang]["to_be_named"] in letter  # in the letter's own language
            assert lang == "en" or "to be named" not in letter
    assert languages == {"fi", "sv", "en"}  # the supported people write in all three
    # Everyone else's rows are unchanged (people.csv: but for a support person who is now to be named) …
    kept_before = people_before[~people_before["person_id"].isin(erased)].reset_index(drop=True)
    kept_before.loc[kept_before["support_person"] == helper, "support_person"] = "to be named"
    pd.testing.assert_frame_equal(people, kept_before)
    for name in ("plans.csv", "deferred.csv", "lms/enrolments.csv", "change.csv", "leavers.csv"):
        if (original / name).is_file():
            before = _text_table(original / name)
            pd.testing.assert_frame_equal(_text_table(run / name),
                                          before[~before["person_id"].isin(erased)].reset_index(drop=True))
    flat_before = (original / "lms" / "moodle-flatfile.txt").read_text(encoding="utf-8").splitlines()
    assert (run / "lms" / "moodle-flatfile.txt").read_text(encoding="utf-8").splitlines() == [
        line for line in flat_before if line.split(", ")[2] not in erased]
    if (original / "lms" / "moodle-users.csv").is_file():
        users_before = _text_table(original / "lms" / "moodle-users.csv")
        pd.testing.assert_frame_equal(_text_table(run / "lms" / "moodle-users.csv"),
                                      users_before[~users_before["username"].isin({f"user-{p}" for p in erased})].reset_index(drop=True))
    # … and every other letter is the same file.
    rewritten = {plan_filename(p) for p in erased | set(supported)}
    for path in (original / "plans").iterdir():
        if path.name not in rewritten:
            assert (run / "plans" / path.name).read_bytes() == path.read_bytes()
    # Counts: session attendees from the remaining plan steps, the calendar's descriptions from the sessions, the
    # Moodle cohorts' and groups' members from the remaining people.
    sessions = _text_table(run / "sessions.csv")
    plans = _text_table(run / "plans.csv")
    attendees = plans.loc[plans["session_id"] != "", "session_id"].value_counts()
    expected = sessions["session_id"].map(attendees).fillna(0).astype(int)
    assert sessions["attendees"].astype(int).tolist() == expected.tolist()
    before = _text_table(original / "sessions.csv")
    assert (before["attendees"].astype(int) != expected).sum() >= 1  # the attendee's sessions lost one
    scheduled = sessions[sessions["status"] == "scheduled"]
    assert _descriptions(run) == dict(zip(scheduled["session_id"], scheduled["attendees"].astype(int)))
    assert all(len(line.encode()) <= 75 for p in (run / "calendar").glob("*.ics") for line in p.read_bytes().decode().split("\r\n"))
    members = people["group"][people["group"] != ""].value_counts()
    assert groups.set_index("group")["members"].astype(int).to_dict() == members.to_dict()
    moodle = pd.read_csv(run / "lms" / "moodle-cohorts.csv", dtype=str, keep_default_na=False)
    assert {g: int(d.split(" ")[0]) for g, d in zip(moodle["idnumber"], moodle["description"])} == members.to_dict()
    record = json.loads((run / "run.json").read_text(encoding="utf-8"))
    assert record["counts"]["enrolments"] == len(_text_table(run / "lms" / "enrolments.csv"))
    if "followup" in record:
        assert record["followup"]["counts"]["reconciles"] is True
        assert "<h2>Follow-up" in (run / "report.html").read_text(encoding="utf-8")


def test_erasing_everyone_in_a_session_removes_the_session_and_its_event(cli, rounds: tuple[Path, Path], tmp_path: Path) -> None:
    """A session nobody is left in is no session: its row leaves sessions.csv, its event the group's calendar (and
    a calendar left without events goes), run.json counts one session less; the other sessions keep their rows."""
    import icalendar

    original = rounds[0]
    run = tmp_path / "r1"
    shutil.copytree(original, run)
    plans = _text_table(original / "plans.csv")
    sessions = _text_table(original / "sessions.csv")
    scheduled = sessions[sessions["status"] == "scheduled"]
    target = scheduled.sort_values(["attendees", "session_id"], key=lambda c: c.astype(int) if c.name == "attendees" else c).iloc[0]
    erased = set(plans.loc[plans["session_id"] == target["session_id"], "person_id"])
    assert len(erased) == int(target["attendees"]) >= 1
    attended = plans[plans["session_id"] != ""].groupby("session_id")["person_id"].agg(set)
    emptied = {sid for sid, people in attended.items() if people <= erased}
    assert target["session_id"] in emptied

    result = cli("erase", run, *[a for pid in sorted(erased) for a in ("--id", pid)])
    assert result.exit_code == 0, result.output
    after = _text_table(run / "sessions.csv")
    assert not set(after["session_id"]) & emptied
    kept_before = sessions[~sessions["session_id"].isin(emptied)].reset_index(drop=True)
    pd.testing.assert_frame_equal(after.drop(columns="attendees"), kept_before.drop(columns="attendees"))
    assert (after["attendees"].astype(int) > 0).all()
    events = {}
    for path in (run / "calendar").glob("*.ics"):
        calendar = icalendar.Calendar.from_ical(path.read_bytes())
        found = [str(e.get("DESCRIPTION")) for e in calendar.walk("VEVENT")]
        assert found, path  # no calendar is left without an event
        events[path.name] = found
    described = " ".join(d for found in events.values() for d in found)
    assert all(f"Session {sid}," not in described for sid in emptied)
    assert _descriptions(run) == dict(zip(after.loc[after["status"] == "scheduled", "session_id"],
                                          after.loc[after["status"] == "scheduled", "attendees"].astype(int)))
    record = json.loads((run / "run.json").read_text(encoding="utf-8"))
    assert record["counts"]["sessions"] == len(after) == len(sessions) - len(emptied)
    for pid in erased:
        assert _holding(run, pid) == [], pid


def test_person_lists_sessions_calendar_lms_and_follow_up(rounds: tuple[Path, Path]) -> None:
    from trainmatch.privacy import person

    first, second = rounds
    helper, attendee = _chosen(first)
    files = person(first, attendee)["runs"][0]["files"]
    plans = _text_table(first / "plans.csv")
    mine = set(plans.loc[(plans["person_id"] == attendee) & (plans["session_id"] != ""), "session_id"])
    assert {row["session_id"] for row in files["sessions.csv"]["rows"]} == mine
    events = [e for name, item in files.items() if name.startswith("calendar/") for e in item["lines"]]
    assert len(events) == len(mine) and all("SUMMARY" in e for e in events)
    assert files["lms/moodle-users.csv"]["rows"][0]["username"] == f"user-{attendee}"
    assert len(files["lms/enrolments.csv"]["rows"]) == int((_text_table(first / "lms" / "enrolments.csv")["person_id"] == attendee).sum())
    group = _text_table(first / "people.csv").set_index("person_id").loc[attendee, "group"]
    assert [row["idnumber"] for row in files["lms/moodle-cohorts.csv"]["rows"]] == [group]
    # A support person: the groups they support, and the people.csv rows naming them show only how (no one else's scores).
    helped = person(first, helper)["runs"][0]["files"]
    groups = _text_table(first / "groups.csv")
    theirs = groups.loc[(groups["support_1"] == helper) | (groups["support_2"] == helper), "group"]
    assert sorted(row["group"] for row in helped["groups.csv"]["named_in"]) == sorted(theirs)
    assert all("support_2" not in row for row in helped["groups.csv"]["named_in"])  # not the other support person's id
    assert all(set(row) == {"group", "support_person"} for row in helped["people.csv"]["named_in"])
    # A follow-up round: change.csv rows; a leaver: leavers.csv.
    paired = _text_table(second / "change.csv")["person_id"].iloc[0]
    assert person(second, paired)["runs"][0]["files"]["change.csv"]["rows"]
    leaver = _text_table(second / "leavers.csv")["person_id"].iloc[0]
    assert list(person(second, leaver)["runs"][0]["files"]) == ["leavers.csv"]


def test_share_of_a_follow_up_round(rounds: tuple[Path, Path], key: Path, tmp_path: Path) -> None:
    from trainmatch.sharing import share

    first, second = rounds
    out = tmp_path / "shared"
    done = share(second, out, key)
    assert {"calendar/*.ics", "lms/enrolments.csv", "lms/moodle-flatfile.txt", "model/*", "plans/plan-*.html"} <= set(done.left_out)
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == []
    ids = set()
    for name in ("people.csv", "change.csv", "leavers.csv"):
        ids |= set(_text_table(second / name)["person_id"])
    contents = _contents(out)
    for pid in ids:
        token = re.compile(rb"(?<![0-9A-Za-z])" + re.escape(pid.encode()) + rb"(?![0-9A-Za-z])")
        assert not any(token.search(data) for data in contents.values()), pid
    people = _text_table(out / "people.csv")
    pseudonyms = set(people["person_id"])
    assert set(people["support_person"]) - {""} <= pseudonyms and (people["support_person"] != "").any()
    groups = _text_table(out / "groups.csv")
    assert set(groups["support_1"]) - {""} <= pseudonyms
    assert set(_text_table(out / "change.csv")["person_id"]) <= pseudonyms
    leavers = _text_table(out / "leavers.csv")["person_id"]
    assert leavers.str.fullmatch(r"p[0-9a-f]{20}").all()
    for name in ("completions-rejects.csv", "feedback-rejects.csv"):
        assert "value" not in _text_table(out / name)
    sessions = _text_table(out / "sessions.csv")
    small = sessions["attendees"] == "< 5"
    assert small.any() and (sessions.loc[~small, "attendees"].astype(int) >= 5).all()
    assert (sessions.loc[small, "reason"] == "").all()
    assert sessions["start"].tolist() == _text_table(second / "sessions.csv")["start"].tolist()  # as written
    effects = _text_table(out / "effects.csv")
    shown = effects[effects["suppressed"] != "yes"]  # the follow-up round suppressed its own small cells already
    assert ((shown["n"] == "< 5") | (shown["n"].str.isdigit() & (shown["n"] != ""))).all()
    assert (effects.loc[effects["suppressed"] == "yes", "n"] == "").all()
    assert "<h2>Follow-up" in (out / "report.html").read_text(encoding="utf-8")


def test_erase_refuses_moodle_users_it_cannot_match_and_changes_nothing(cli, rounds: tuple[Path, Path], tmp_path: Path) -> None:
    """moodle-users.csv names people only by username, in the order of lms/enrolments.csv: when its rows cannot be
    matched to the people there (here a row removed and another's course edited), erase cannot tell whose row is
    whose and refuses."""
    run = tmp_path / "r1"
    shutil.copytree(rounds[0], run)
    users = run / "lms" / "moodle-users.csv"
    lines = users.read_text(encoding="utf-8").splitlines(keepends=True)
    edited = lines[3].split(",")
    edited[2] = "edited.course"
    users.write_text("".join(lines[:2] + [",".join(edited)] + lines[4:]), encoding="utf-8")
    before = _digest(run)
    _, attendee = _chosen(run)
    result = cli("erase", run, "--id", attendee)
    assert result.exit_code == 1, result.output
    assert "moodle-users.csv" in result.output and "cannot be matched" in result.output and "Nothing was changed" in result.output
    assert "Traceback" not in result.output
    assert _digest(run) == before
    from trainmatch.privacy import person

    assert "note" in person(run, attendee)["runs"][0]["files"]["lms/moodle-users.csv"]


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=32, max_size=200), st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=5))
def test_pseudonyms_are_hmac_sha256_for_any_key_length(secret: bytes, ids: list[str]) -> None:
    """The HMAC written out with two SHA-256 states equals the standard library's, for keys shorter and longer than
    SHA-256's 64-byte block."""
    import hmac

    from trainmatch.sharing import PSEUDONYM_HEX, _pseudonyms

    expected = ["p" + hmac.new(secret, i.encode("utf-8"), "sha256").hexdigest()[:PSEUDONYM_HEX] for i in ids]
    assert _pseudonyms(ids, secret) == expected


_IDS = st.sampled_from(["a1", "a2", " a1", "a3 ", "", "  ", "b", "ö", None]) | st.text(max_size=4)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_IDS, max_size=30), min_size=1, max_size=5))
def test_pseudonyms_of_columns_match_one_id_at_a_time(columns: list[list[str | None]]) -> None:
    """Mapping columns one after another (the ids met so far are remembered, and looked up from either side
    depending on the sizes) gives each cell its own pseudonym: of the id without edge spaces, "" for a blank id,
    missing for a missing one."""
    import pyarrow as pa

    from trainmatch.sharing import Pseudonyms, pseudonym

    secret = b"k" * 32
    mapper = Pseudonyms(secret)
    for column in columns:
        got = mapper.arrow(pa.array(column, type=pa.string())).to_pylist()
        assert got == [None if i is None else (pseudonym(i.strip(), secret) if i.strip() else "") for i in column]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.lists(st.sampled_from(["c1", "c2", "c3"]), min_size=1, max_size=3), st.sampled_from(["", "G1"]),
                          st.booleans()), min_size=1, max_size=12))
def test_moodle_users_rows_are_found_by_courses_or_refused_never_guessed(tmp_path_factory, people: list) -> None:
    """A run whose --lms-users file lacked some people (``False`` below): each person's row of moodle-users.csv is
    found, or the person has none, or the look-up is refused; it never gives a person someone else's row. With
    everyone in the file every row is found."""
    import csv

    from trainmatch.errors import DataError
    from trainmatch.runfiles import lms_user_rows

    folder = tmp_path_factory.mktemp("lms")
    width = max(len(courses) for courses, _, _ in people)
    with open(folder / "enrolments.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["person_id", "module", "lms_course", "format", "group", "session_id", "start", "end"])
        for k, (courses, group, _) in enumerate(people):
            for c in courses:
                w.writerow([f"P{k}", c, c, "webinar", group, "", "", ""])
    with open(folder / "moodle-users.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["username", "cohort1"] + [x for n in range(1, width + 1) for x in (f"course{n}", f"group{n}")])
        for k, (courses, group, known) in enumerate(people):
            if known:
                cells = [x for c in courses for x in (c, group)]
                w.writerow([f"user{k}", group] + cells + [""] * (2 * width - len(cells)))
    usernames = [row[0] for row in csv.reader(open(folder / "moodle-users.csv", encoding="utf-8"))][1:]
    for k, (_, _, known) in enumerate(people):
        try:
            rows = lms_user_rows(folder / "moodle-users.csv", folder / "enrolments.csv", [f"P{k}"])
        except DataError:
            assert not all(known for _, _, known in people)  # refused only when someone is missing
            continue
        if known:
            assert rows == {f"P{k}": usernames.index(f"user{k}")}
        else:
            assert rows == {}
