"""Reading a table a chunk at a time gives the cells read_table gives, and the same one-line errors."""

from __future__ import annotations

import json

import pytest

from conftest import write
from data_modules.readers import read_table
from data_modules.table_chunks import iter_table_chunks
from medtext.core.errors import DataError

CSV = ('\ufeffpmid,text,journal\nA,"first, with a comma",J1\nB,"two\nlines",J2\n\n  \nC,third,\nD,"=x",J4\n'
       'E,last,J5\n\n \n')


def chunked(path, columns, rows, **kwargs) -> dict[str, list[str]]:
    cells = {c: [] for c in columns}
    starts = []
    for chunk in iter_table_chunks(path, columns, rows, **kwargs):
        starts.append(chunk.start)
        for c in columns:
            cells[c] += chunk.columns[c]
    assert starts == list(range(0, len(cells[columns[0]]), rows))
    return cells


@pytest.mark.parametrize("rows", [1, 2, 100])
def test_csv_chunks_hold_the_cells_read_table_reads(tmp_path, rows):
    path = write(tmp_path / "a.csv", CSV)
    whole = read_table(path)
    assert chunked(path, ["text", "pmid", "journal"], rows) == {c: whole[c].tolist() for c in ("text", "pmid", "journal")}
    assert whole["pmid"].tolist() == ["A", "B", "", "  ", "C", "D", "E"], "blank lines inside are rows, at the end not"


def test_tsv_jsonl_and_parquet_chunks_hold_the_cells_read_table_reads(tmp_path):
    pytest.importorskip("pyarrow")
    frame = read_table(write(tmp_path / "a.csv", CSV))
    tsv = write(tmp_path / "a.tsv", frame.to_csv(sep="\t", index=False).replace('"', ""))
    jsonl = write(tmp_path / "a.jsonl", "".join(json.dumps({"pmid": p, "text": t, "n": i}) + "\n\n"
                                                 for i, (p, t) in enumerate(zip(frame.pmid, frame.text))))
    frame.to_parquet(tmp_path / "a.parquet")
    for path in (tsv, jsonl, tmp_path / "a.parquet"):
        whole = read_table(path)
        assert chunked(path, ["pmid"], 3) == {"pmid": whole["pmid"].tolist()}, path
    assert chunked(jsonl, ["n"], 2)["n"] == [str(i) for i in range(7)]


@pytest.mark.parametrize("content, message", [
    (b"pmid,text\nA,ok\nB,caf\xe9\n", r"a.csv: line 3: invalid UTF-8 byte 0xe9"),
    (b"pmid,text\nA,ok\nB,x,y\n", r"a.csv: row 2: expected 2 fields, found 3"),
    (b"text,text\nA,ok\n", r"a.csv: header: column 'text' appears twice"),
    (b"pmid,abstract\nA,ok\n", r"a.csv: text column 'text' not found; the columns are \['pmid', 'abstract'\]"),
    (b"pmid,text\n", r"a.csv: no data rows"),
    (b"", r"a.csv: file is empty"),
])
def test_bad_tables_get_the_one_line_errors_of_read_table(tmp_path, content, message):
    path = write(tmp_path / "a.csv", content)
    with pytest.raises(DataError, match=message):
        list(iter_table_chunks(path, ["text"], 1))


def test_a_bad_json_line_and_a_missing_key_name_the_row(tmp_path):
    bad = write(tmp_path / "a.jsonl", '{"text": "a"}\n{"text": "b", "text": "c"}\n')
    with pytest.raises(DataError, match=r"a.jsonl: row 2: key 'text' appears twice"):
        list(iter_table_chunks(bad, ["text"], 10))
    missing = write(tmp_path / "b.jsonl", '{"abstract": "a"}\n')
    with pytest.raises(DataError, match=r"b.jsonl: text column 'text' not found"):
        list(iter_table_chunks(missing, ["text"], 10))


def test_a_field_longer_than_the_csv_module_s_limit_is_read_and_the_limit_put_back(tmp_path):
    import csv

    before = csv.field_size_limit()
    path = write(tmp_path / "a.csv", f"text\n{'x' * (before + 10)}\nshort\n")
    assert [len(t) for t in chunked(path, ["text"], 1)["text"]] == [before + 10, 5]
    assert csv.field_size_limit() == before
