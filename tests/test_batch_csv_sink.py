"""The results file's rows are written exactly as `CsvWriter` writes them.

`_CsvSink.write` makes each cell's text itself (and remembers the text of list cells, which
repeat) instead of calling ``csv.writer`` per row; any row, however odd its cells, must come
out byte for byte as `CsvWriter` writes it with the lists joined by ``;``.
"""

from __future__ import annotations

import io
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hipscreen._batch import _stream
from hipscreen._batch._stream import CSV_COLUMNS, CsvWriter, _CsvSink

LISTS = [i for i, name in enumerate(CSV_COLUMNS) if name in _stream.LIST_COLUMNS]

TEXT = st.text(alphabet=st.sampled_from('ab ,;"\r\n\x00é\udcff\t'), max_size=8) | st.text(
    max_size=6
)
SCALARS = (
    TEXT
    | st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=True)
    | st.sampled_from([_stream.Path("x"), 1.5, 0.0])
)
LIST_CELL = st.none() | st.lists(TEXT, max_size=4).map(tuple) | st.lists(TEXT, max_size=3)


@st.composite
def rows(draw: st.DrawFn) -> tuple[Any, ...]:
    row = tuple(draw(LIST_CELL) if i in LISTS else draw(SCALARS) for i in range(len(CSV_COLUMNS)))
    # Now and then a wider row (a narrower one fails either way).
    return row + tuple(draw(st.lists(SCALARS, max_size=2)) if draw(st.integers(0, 9)) == 0 else [])


def expected(batches: list[list[tuple[Any, ...]]]) -> str:
    out = io.StringIO()
    writer = CsvWriter(out)
    writer.writerow(CSV_COLUMNS)
    for batch in batches:
        for row in batch:
            cells = list(row)
            for i in LISTS:
                if cells[i] is not None:
                    cells[i] = ";".join(cells[i])
            writer.writerow(cells)
    return out.getvalue()


@settings(deadline=None)
@given(batches=st.lists(st.lists(rows(), max_size=6), max_size=4))
def test_rows_are_written_as_csv_writer_writes_them(batches: list[list[tuple[Any, ...]]]) -> None:
    out = io.StringIO()
    sink = _CsvSink(out, CSV_COLUMNS)
    for batch in batches:
        # Twice through the remembered list texts: the same rows again give the same text.
        sink.write(batch)
    assert out.getvalue() == expected(batches)


def test_a_repeated_list_cell_with_a_carriage_return_still_quotes_its_row() -> None:
    row = (0, 1, "c", True, None, ("a\rb",), "info", None, ("x",), ("y, z",), "1")
    out = io.StringIO()
    sink = _CsvSink(out, CSV_COLUMNS, header=False)
    sink.write([row, row])
    assert out.getvalue() == expected([[row, row]]).split("\n", 1)[1]
    assert out.getvalue().startswith('"0","1","c"')


def test_the_batch_command_leaves_the_collector_as_it_found_it() -> None:
    """`settled_heap` (around the command's screening) freezes the heap and collects less often
    while it lasts, and restores both afterwards."""
    import gc

    from hipscreen._batch._pipeline import _GC_THRESHOLDS, settled_heap

    before = gc.get_threshold()
    frozen = gc.get_freeze_count()
    with settled_heap():
        assert gc.get_threshold() == _GC_THRESHOLDS
        assert gc.get_freeze_count() > frozen
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
