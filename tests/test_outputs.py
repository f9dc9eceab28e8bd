"""CSV tables as written by write_csvs: same bytes however the rows are cut into blocks, nothing lost or reordered."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import trainmatch.outputs
from trainmatch.outputs import write_csv_fast, write_csvs


def mixed_frame(n: int) -> pd.DataFrame:
    """Every kind of column the outputs hold: categoricals with gaps, nullable ints, floats, Arrow and object text."""
    rng = np.random.default_rng(n)
    ids = [f"{i:07d}" for i in range(n)]
    module = pd.Categorical(rng.choice(["a.video", "=HYPERLINK(x)", "b, with comma", 'say "hi"'], n))
    module[:: 5] = np.nan
    return pd.DataFrame(
        {
            "person_id": pd.Categorical(ids),
            "module": module,
            "gap": pd.array(np.where(np.arange(n) % 4 == 0, None, np.arange(n) % 3 - 1), dtype="Int8"),  # -1 too
            "hours": rng.integers(-40, 400, n) / 4,  # negative numbers start with "-" and must stay numbers
            "level": pd.Categorical(rng.choice([-2, 0, 3], n)),  # a numeric categorical
            "site": pd.array(rng.choice(["+358 site", "North", "Ääkköset"], n), dtype="str"),
            "note": np.array(rng.choice(["@mention", "plain", "tab\tinside"], n), dtype=object),
        }
    )


@pytest.mark.parametrize("n", [0, 1, 7, 20])
def test_blocks_give_the_same_bytes_as_one_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    frame = mixed_frame(n)
    whole = write_csv_fast(frame, tmp_path / "whole.csv").read_bytes()
    monkeypatch.setattr(trainmatch.outputs, "CSV_BLOCK_ROWS", 3)
    cut = write_csv_fast(frame, tmp_path / "cut.csv").read_bytes()
    assert cut == whole
    assert whole.splitlines()[0] == b'"person_id","module","gap","hours","level","site","note"'  # one header, however many blocks


def test_values_come_back_neutralised_with_numbers_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trainmatch.outputs, "CSV_BLOCK_ROWS", 4)
    frame = mixed_frame(20)
    back = pd.read_csv(write_csv_fast(frame, tmp_path / "t.csv"), dtype={"person_id": str}, keep_default_na=False)
    assert back["person_id"].tolist() == list(frame["person_id"].astype(str))
    assert back["hours"].tolist() == frame["hours"].tolist() and (frame["hours"] < 0).any()
    assert back["gap"].astype(str).tolist() == ["" if pd.isna(v) else str(v) for v in frame["gap"]]
    assert back["level"].tolist() == frame["level"].astype(int).tolist()
    expect_module = ["" if pd.isna(v) else ("'" + v if v.startswith("=") else v) for v in frame["module"]]
    assert back["module"].tolist() == expect_module
    assert back["site"].tolist() == ["'" + v if v.startswith("+") else v for v in frame["site"]]
    assert back["note"].tolist() == ["'" + v if v.startswith("@") else v for v in frame["note"]]


def test_several_tables_share_the_pool_and_each_file_is_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trainmatch.outputs, "CSV_BLOCK_ROWS", 2)
    frames = {tmp_path / f"t{i}.csv": mixed_frame(n) for i, n in enumerate([9, 0, 5, 13])}
    written = write_csvs(frames, workers=2)
    assert written == list(frames)
    for path, frame in frames.items():
        assert len(pd.read_csv(path, dtype=str)) == len(frame)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["x", "=1+1", "-2", "", "ok, fine"]), max_size=30), st.integers(1, 8))
def test_any_block_size_keeps_every_row_in_order(tmp_path_factory: pytest.TempPathFactory, texts: list[str], rows: int) -> None:
    folder = tmp_path_factory.mktemp("blocks")
    frame = pd.DataFrame({"i": np.arange(len(texts)), "text": pd.Categorical(texts)})
    original = trainmatch.outputs.CSV_BLOCK_ROWS
    trainmatch.outputs.CSV_BLOCK_ROWS = rows
    try:
        back = pd.read_csv(write_csv_fast(frame, folder / "t.csv"), dtype={"text": str}, keep_default_na=False)
    finally:
        trainmatch.outputs.CSV_BLOCK_ROWS = original
    assert back["i"].tolist() == list(range(len(texts)))
    assert back["text"].tolist() == ["'" + t if t[:1] in ("=", "-") else t for t in texts]
