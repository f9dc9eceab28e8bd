"""A copy of a run without identities, for a steering group or a researcher, and the key it needs.

:func:`share` writes the run's tables with every person id replaced by a keyed
pseudonym (HMAC-SHA256 with the organisation's secret key, so the same key
gives the same pseudonym in every round and rounds still pair, while without
the key nothing maps a pseudonym back), sites with fewer than ``min_cell``
people merged into one, the survey's raw cell values left out of the rejects,
and every aggregate of fewer than ``min_cell`` people suppressed in the tables
and the report. Letters, LMS and calendar files are not copied. :func:`keygen`
makes a key file readable by its owner only.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from .errors import DataError, UsageError
from .runfiles import RUN_FILES, RunFile, WORKBOOK_SHEETS, run_files

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from .programme import Programme

KEY_BYTES = 32  # a new key: 256 random bits, written as 64 hex digits
MIN_KEY_BYTES = 32  # shorter keys are refused: HMAC-SHA256's security rests on the key's length
PSEUDONYM_HEX = 20  # hex digits kept of the HMAC (80 bits: no two of a national population's ids collide in practice)
SMALL = "< {n}"  # how a suppressed count is shown
OTHER_SITES = "other sites (each under {n} people)"


# --------------------------------------------------------------------------- keys


def keygen(path: str | Path) -> Path:
    """Write a new random key to ``path`` (mode 0600); an existing file is never overwritten."""
    from .staging import check_name

    path = Path(path)
    check_name(path, "KEYFILE")
    if os.path.lexists(path):
        raise UsageError(f"{str(path)!r} already exists; a key is never overwritten (the pseudonyms made with it would no "
                         "longer pair). Choose another name, or remove the old key yourself if you really mean to.")
    if not path.parent.is_dir():
        raise UsageError(f"The folder {str(path.parent)!r} for KEYFILE does not exist. Create it first.")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, 0o600)  # whatever the umask
            os.write(fd, (secrets.token_hex(KEY_BYTES) + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        path.unlink(missing_ok=True)  # never leave half a key behind
        raise
    return path


def load_key(path: str | Path) -> bytes:
    """The key in ``path``: refused when missing (UsageError), readable by others or too short (DataError)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"Invalid value for '--key': the key file {str(path)!r} does not exist. "
                         "Make one with `trainmatch keygen KEYFILE` and keep it safe: the same key pairs later rounds.")
    mode = path.stat().st_mode
    if os.name != "nt" and mode & (stat.S_IROTH | stat.S_IWOTH):
        raise DataError(f"{path}: the key file can be read or written by every user of this computer (mode {stat.filemode(mode)}), "
                        f"so anyone could map the pseudonyms back. Run `chmod 600 {path}` and try again.")
    raw = path.read_bytes().strip()
    try:
        text = raw.decode("ascii")
        key = bytes.fromhex(text) if len(text) % 2 == 0 and all(c in "0123456789abcdefABCDEF" for c in text) else raw
    except UnicodeDecodeError:
        key = raw
    if len(key) < MIN_KEY_BYTES:
        raise DataError(f"{path}: the key is {len(key)} bytes long; at least {MIN_KEY_BYTES} are needed. "
                        "Make a key with `trainmatch keygen KEYFILE`.")
    return key


def pseudonym(person_id: str, key: bytes) -> str:
    """The pseudonym of one id: ``p`` and the first hex digits of HMAC-SHA256(key, id)."""
    return _pseudonyms([person_id], key)[0]


def _pseudonyms(person_ids: Iterable[str], key: bytes) -> list[str]:
    """:func:`pseudonym` of each id. HMAC (RFC 2104) written out with two SHA-256 states keyed once and copied per
    id: half the time of copying an ``hmac`` object, which wraps the same two states in Python."""
    block = hashlib.sha256(key).digest() if len(key) > 64 else key  # SHA-256's block is 64 bytes
    block = block.ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
    out = []
    for person_id in person_ids:
        i = inner.copy()
        i.update(person_id.encode("utf-8"))
        o = outer.copy()
        o.update(i.digest())
        out.append("p" + o.hexdigest()[:PSEUDONYM_HEX])
    return out


class Pseudonyms:
    """Each id's pseudonym (:func:`pseudonym`), the HMAC of each distinct id computed once across all the tables.

    Works on Arrow text: the ids seen so far and their pseudonyms are two aligned Arrow arrays, and a column is
    mapped through its distinct values, so no Python string is made per cell."""

    def __init__(self, key: bytes):
        import pyarrow as pa

        self.key = key
        self.ids = pa.array([], type=pa.string())
        self.names = pa.array([], type=pa.string())

    def __call__(self, values: "pd.Series") -> "pd.Series":
        """The ids of ``values`` replaced by their pseudonyms, as Arrow-backed text (missing stays missing, an
        empty id stays empty)."""
        import pandas as pd

        from .columns import text_array

        return pd.Series(pd.arrays.ArrowStringArray(self.arrow(text_array(values))), index=values.index)

    def arrow(self, arr: "pa.Array") -> "pa.Array":
        """:meth:`__call__` on an Arrow string array: a string array of the pseudonyms."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        from .columns import index_in

        encoded = pc.dictionary_encode(arr)
        uniques = encoded.dictionary
        if len(uniques) * 4 < len(self.ids):  # few values (a groups table, no rows): hash them, not every id seen
            found = index_in(self.ids, uniques)
            seen = np.flatnonzero(found >= 0)
            where = np.full(len(uniques), -1, dtype=np.int64)
            where[found[seen]] = seen
        else:
            where = index_in(uniques, self.ids)
        new = where < 0
        if new.any():  # the ids not seen before get their HMAC and go after the known ones
            stripped = [t.strip() for t in uniques.filter(pa.array(new)).to_pylist()]
            digests = iter(_pseudonyms([t for t in stripped if t], self.key))
            made = [next(digests) if t else "" for t in stripped]
            where[new] = np.arange(len(self.ids), len(self.ids) + len(made))
            self.ids = pa.concat_arrays([self.ids, uniques.filter(pa.array(new))])
            self.names = pa.concat_arrays([self.names, pa.array(made, type=pa.string())])
        return self.names.take(pa.array(where)).take(encoded.indices)


def pseudonymise_lists(values: "pd.Series", pseudonyms: Pseudonyms, sep: str) -> "pd.Series":
    """Each id in ``sep``-separated lists replaced by its pseudonym (vectorised over the distinct ids)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pandas as pd

    from .columns import text_array

    items = pc.split_pattern(text_array(values), sep)
    mapped = pseudonyms.arrow(pc.utf8_trim_whitespace(pc.list_flatten(items)))
    rebuilt = pa.ListArray.from_arrays(items.offsets, mapped, mask=pc.is_null(items))
    return pd.Series(pd.arrays.ArrowStringArray(pc.binary_join(rebuilt, sep)), index=values.index)


# --------------------------------------------------------------------------- share


@dataclass(frozen=True)
class Shared:
    """What :func:`share` wrote: the folder, the files copied, the sites merged, and the threshold used."""

    output: Path
    files: tuple[str, ...]
    sites_merged: int
    min_cell: int
    left_out: tuple[str, ...]


def share(run: str | Path, output: str | Path, key: str | Path, *, force: bool = False,
          programme: "Programme | str | Path | None" = None, min_cell: int | None = None,
          registry: Iterable[RunFile] = RUN_FILES) -> Shared:
    """Write a copy of ``run`` to ``output`` without identities (see the module's description).

    ``output`` is checked before any work and written through a staging folder; an existing
    one is replaced only with ``force`` and only when trainmatch wrote it. The key must exist,
    be readable by its owner only and hold at least 32 bytes.
    """
    from .outputs import write_csv_fast, write_json, write_workbook
    from .privacy import ID_COLUMNS, REPORT_STEP_COLUMNS, check_outside, open_run, programme_for_run, render_run_report
    from .runfiles import read_table
    from .staging import MARKER, StagedFolder

    run = Path(run)
    record = open_run(run)
    check_outside(run, output, "-o")
    files = run_files(run, tuple(registry))
    secret = load_key(key)
    loaded = programme_for_run(record, programme, run)
    threshold = loaded.min_cell if min_cell is None else int(min_cell)
    if threshold < 1:
        raise UsageError(f"Invalid value for '--min-cell': must be at least 1, got {threshold}.")
    staged = StagedFolder(output, force=force, inputs=[run, key])
    staged.prepare()
    written: list[str] = []
    left_out: list[str] = []
    try:
        with staged as tmp:
            people = read_table(run / "people.csv", ID_COLUMNS, arrow_text=True)
            sites = generalised_sites(people["site"], threshold) if "site" in people else {}
            pseudonyms = Pseudonyms(secret)
            shared_people = None
            for_report: dict[str, "pd.DataFrame"] = {}
            for relative, entry in files:
                if entry.share != "pseudonymise" or entry.kind != "table":
                    continue
                frame = people if relative == "people.csv" else read_table(run / relative, (*ID_COLUMNS, *entry.owner, *entry.named,
                                                                                            *entry.lists, *AS_WRITTEN), arrow_text=True)
                frame = shared_table(frame, entry, pseudonyms, sites, relative)
                if relative == "people.csv":
                    shared_people = frame
                elif relative in ("plans.csv", "deferred.csv"):  # what the report aggregates, not read again for it
                    for_report[relative] = frame[[c for c in REPORT_STEP_COLUMNS if c in frame]]
                target = tmp / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                write_csv_fast(frame, target)
                written.append(relative)
            del people
            if shared_people is None:
                raise DataError(f"{run}: has no people.csv; it is not the output of `trainmatch assign`.")
            aggregates = shared_aggregates(run, shared_people, loaded, sites, pseudonyms,
                                           [relative for relative, e in files if e.share == "aggregate"])
            for name, frame in aggregates.items():  # unsuppressed, for the report (which suppresses itself)
                write_csv_fast(frame, tmp / name)
            counts = dict(record["counts"])
            shared_record = {key_: value for key_, value in record.items() if key_ not in ("model", "erasures")}
            shared_record["counts"] = counts
            shared_record["shared"] = {
                "at": datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
                "pseudonyms": "HMAC-SHA256 of each person_id with the organisation's key",
                "min_cell": threshold,
                "sites_merged": sum(1 for a, b in sites.items() if a != b),
                "left_out": left_out,
            }
            cohort_model = shared_record.get("cohort_model")
            if isinstance(cohort_model, dict):  # paths of model folders say nothing the reader needs
                shared_record["cohort_model"] = {k: v for k, v in cohort_model.items() if k not in ("reused", "saved")}
            note = (f"This is a shared copy without identities: person ids are keyed pseudonyms, sites with fewer than "
                    f"{threshold} people are merged, and every count or mean of fewer than {threshold} people is shown as "
                    f"\"{SMALL.format(n=threshold)}\".")
            if any(relative == "report.html" for relative, _ in files):
                (tmp / "report.html").write_text(render_run_report(tmp, loaded, shared_record, notes=[note], min_cell=threshold,
                                                                   people=shared_people, steps=for_report.get("plans.csv"),
                                                                   deferred=for_report.get("deferred.csv")),
                                                 encoding="utf-8")
                written.append("report.html")
            for name, frame in aggregates.items():
                write_csv_fast(suppress_table(frame, name, threshold), tmp / name)
                written.append(name)
            if (run / "plans.xlsx").is_file():
                sheets = {sheet: read_table(tmp / name) for sheet, name in WORKBOOK_SHEETS.items() if (tmp / name).is_file()}
                write_workbook(sheets, tmp / "plans.xlsx")
                written.append("plans.xlsx")
            # Named by their pattern, never file by file: a letter's name holds its person's id.
            left_out = sorted({e.pattern for relative, e in files
                               if relative not in written and relative not in ("run.json", MARKER)})
            shared_record["shared"]["left_out"] = left_out
            write_json(shared_record, tmp / "run.json")
            written.append("run.json")
    finally:
        staged.close()
    merged = sum(1 for a, b in sites.items() if a != b)
    return Shared(Path(output), tuple(sorted(written)), merged, threshold, tuple(left_out))


def generalised_sites(site: "pd.Series", min_cell: int) -> dict[str, str]:
    """Each site's name in the shared copy: itself, or one common name for sites of fewer than ``min_cell`` people."""
    counts = site.astype(str).value_counts()
    other = OTHER_SITES.format(n=min_cell)
    return {str(name): (other if n < min_cell else str(name)) for name, n in counts.items()}


def shared_table(frame: "pd.DataFrame", entry: RunFile, pseudonyms: Pseudonyms, sites: dict[str, str], name: str) -> "pd.DataFrame":
    """A table with its ids pseudonymised, its sites generalised, and the survey's raw cells left out."""
    from .columns import map_text

    out = frame.copy()
    for c in entry.owner:
        if c in out:
            out[c] = pseudonyms(out[c])
    for c in entry.named:  # "to be named" (an erased support person) stays so
        if c in out:
            named = out[c].astype(object)
            unnamed = named.astype(str).str.strip() == entry.replacement
            out[c] = pseudonyms(named.where(~unnamed, "")).astype(object).where(~unnamed, entry.replacement)
    for c in entry.lists:
        if c in out:
            out[c] = pseudonymise_lists(out[c], pseudonyms, entry.sep)
    if "site" in out and sites:
        out["site"] = map_text(out["site"], sites)
    raw = [c for c in entry.raw if c in out]
    if raw:
        out = out.drop(columns=raw)  # a survey or LMS cell as typed: it can be free text naming someone
    return out


def shared_aggregates(run: Path, people: "pd.DataFrame", programme: "Programme", sites: dict[str, str],
                      pseudonyms: "Pseudonyms | None" = None, names: Iterable[str] = ()) -> dict[str, "pd.DataFrame"]:
    """The aggregate tables of the shared copy (cohorts.csv, groups.csv, capacity.csv and the ``names`` of any
    other the run has: sessions, effects, modules), before suppression: sites generalised, and groups.csv's
    support persons pseudonymised like everyone else's ids."""
    from .exports import capacity_table
    from .privacy import ID_COLUMNS
    from .runfiles import RUN_FILES, TO_BE_NAMED, read_table, registry_entry

    small = {a: b for a, b in sites.items() if a != b}
    out = {}
    for name in dict.fromkeys(["cohorts.csv", "groups.csv", "capacity.csv", *names]):
        if not (run / name).is_file():
            continue
        if name == "capacity.csv":
            out[name] = capacity_table(people, programme)
            continue
        frame = read_table(run / name, (*ID_COLUMNS, *AS_WRITTEN))
        entry = registry_entry(name, RUN_FILES)
        for c in (entry.named if entry is not None and pseudonyms is not None else ()):
            if c in frame:
                named = frame[c].astype(object)
                unnamed = named.astype(str).str.strip() == TO_BE_NAMED
                frame[c] = pseudonyms(named.where(~unnamed, "")).astype(object).where(~unnamed, TO_BE_NAMED)
        if small and "site" in frame:  # a group's site can be "mixed: A, B"
            frame["site"] = frame["site"].astype(str).map(lambda text: _generalise_text(text, small))
        if small and {"by", "group"} <= set(frame.columns):  # effects.csv: rows per site name the site in "group"
            by_site = frame["by"].astype(str) == "site"
            frame.loc[by_site, "group"] = frame.loc[by_site, "group"].astype(str).map(lambda text: small.get(text, text))
        out[name] = frame
    return out


def _generalise_text(text: str, small: dict[str, str]) -> str:
    """A group's site text ("A" or "mixed: A, B") with small sites' names replaced (per group: a few)."""
    prefix = "mixed: "
    if text.startswith(prefix):
        names = list(dict.fromkeys(small.get(s, s) for s in text[len(prefix):].split(", ")))
        return prefix + ", ".join(names) if len(names) > 1 else names[0]
    return small.get(text, text)


AS_WRITTEN = ("start", "end", "due")  # dates and times: copied as the run wrote them, not re-formatted
# Columns of an aggregate table that describe the module, not its people: kept in a suppressed row.
_KEPT = {"sessions.csv": ("hours",), "modules.csv": ()}
# Text that counts a suppressed row's people ("only 1 at the site need it"): left empty in a suppressed row.
_COUNTING_TEXT = {"sessions.csv": ("reason",)}
_COUNT_COLUMNS = {"cohorts.csv": "size", "groups.csv": "members", "capacity.csv": "people", "sessions.csv": "attendees",
                  "effects.csv": "n", "modules.csv": "planned"}


def suppress_table(frame: "pd.DataFrame", name: str, min_cell: int) -> "pd.DataFrame":
    """An aggregate table with every row of fewer than ``min_cell`` people suppressed: the count shown as
    ``< n`` and the row's other numbers left empty."""
    import pandas as pd

    column = _COUNT_COLUMNS.get(name)
    if column is None or column not in frame:
        return frame
    small = frame[column].astype(float).to_numpy() < min_cell
    if not small.any():
        return frame
    out = frame.copy()
    numeric = [c for c in out.columns if c != column and c not in _KEPT.get(name, ())
               and pd.api.types.is_numeric_dtype(out[c]) and not pd.api.types.is_bool_dtype(out[c])]
    for c in numeric:
        out[c] = out[c].astype("Float64")
        out.loc[small, c] = pd.NA
    for c in _COUNTING_TEXT.get(name, ()):
        if c in out:
            out[c] = out[c].astype(object).where(~small, "")
    out[column] = out[column].astype(str).where(~small, SMALL.format(n=min_cell))
    return out
