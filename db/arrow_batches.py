"""A query's rows as Arrow record batches, read with `COPY (…) TO STDOUT (FORMAT binary)` by the
Apache Arrow ADBC PostgreSQL driver, in a thread of its own (db/prefetch.py).

Binary COPY spares the server the text formatting of every value (about half its work in a CSV
COPY), and the driver decodes the rows straight into Arrow arrays in C++: no per-row Python and no
text parsing on either side. The driver takes a COPY only for a statement without bound parameters
(with them it would fetch the whole result at once), so the query arrives with its values inlined.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from db.prefetch import Prefetch, ReadError

# How many bytes of rows the driver gathers into one record batch (one Parquet row group):
# larger groups compress better and cost fewer per-group passes, at this much memory apiece.
BATCH_BYTES = 32 << 20
_BATCH_OPTION = "adbc.postgresql.batch_size_hint_bytes"


class ArrowBatches(Prefetch[Any]):
    """Iterate the `pyarrow.RecordBatch`es of `query` (SQL text, no parameters) run on a new
    connection from the libpq `conninfo`; `depth` batches wait at most."""

    def __init__(
        self, conninfo: str, query: str, *, batch_bytes: int = BATCH_BYTES, depth: int = 2
    ) -> None:
        super().__init__(depth=depth)
        self._conninfo, self._query, self._batch_bytes = conninfo, query, batch_bytes

    def _produce(self, put: Callable[[Any], None]) -> None:
        # The driver manager's low-level API: its DB-API module imports pyarrow.dataset and with
        # it pandas, half a second of start-up for every export.
        import adbc_driver_manager
        import adbc_driver_postgresql
        import pyarrow as pa

        try:
            # A new connection is in autocommit mode: a lone COPY needs no BEGIN of its own.
            with (
                adbc_driver_postgresql.connect(self._conninfo) as database,
                adbc_driver_manager.AdbcConnection(database) as conn,
                adbc_driver_manager.AdbcStatement(conn) as statement,
            ):
                statement.set_options(**{_BATCH_OPTION: str(self._batch_bytes)})
                statement.set_sql_query(self._query)
                stream, _rows = statement.execute_query()
                with pa.RecordBatchReader.from_stream(stream) as reader:
                    try:
                        for batch in reader:
                            put(batch)
                    except BaseException:
                        # The consumer has gone (or reading failed): stop the server's COPY
                        # rather than leave it running until the socket closes.
                        statement.cancel()
                        raise
        # The driver's own errors, and pyarrow's OSError for one met while reading the stream
        # (which would otherwise pass for a failure to write the file).
        except (adbc_driver_manager.Error, OSError) as exc:
            lines = str(exc).strip().splitlines()
            raise ReadError(lines[0] if lines else type(exc).__name__) from exc
