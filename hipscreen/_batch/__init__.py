"""Batch screening: many intake forms in, exactly one outcome per form out, in input order.

One concept per module; imports run down this list, never up::

    _extras      optional dependencies (pandas, pyarrow, polars, tqdm, matplotlib)
    _outcomes    RowError, BatchInterrupted, table records, BatchSummary and its tally
    _pipeline    the worker pipeline: exact cache, chunks, processes (capped), screener per worker
    _columns     the flat column convention, derived from IntakeForm and its vocabularies
    _tables      table rows to forms: bounded cells, TableReader, rows through the pipeline
    _forms       assess_many, assess_iter and BatchResult
    _frames      assess_frame (pandas, polars, pyarrow), result_meta, spark_schema
    _csvframe    CSV framing: records with line numbers, framing errors reported
    _signals     stop signals: held while a chunk is written, a stop kept until the run stops
    _stream      screen_csv: CSV in, CSV or Parquet out, partial files, resume
    _command     the ``hipscreen batch`` command

Presentation (HTML, frames) is imported inside the methods that present, never by the data
types at module level.
"""
