"""The AWS Cost and Usage Report 2.0 format: the one SQL both engines run (:mod:`.sql`) and the
Parquet writer that turns a Bill into CUR rows (:mod:`.parquet`). No network I/O here: the engines
that fetch and query a real CUR live in ``sources/curduck.py`` (DuckDB) and ``sources/curathena.py``."""
