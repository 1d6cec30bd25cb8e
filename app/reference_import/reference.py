"""Reading a numbas-lti-provider v4.x ("the reference") database: read-only, one snapshot.

The connection is opened read-only (`SET default_transaction_read_only = on`, and a read-only
REPEATABLE READ transaction), so the import can never write to the reference, and every query
of one run sees the same state even if the reference is still in use.
"""

from __future__ import annotations

import psycopg2
import psycopg2.extensions
import psycopg2.extras

from reference_import.diffs import resolve


class ReferenceUnreadable(Exception):
    pass


class Reference:
    def __init__(self, url: str):
        try:
            self.conn = psycopg2.connect(url, connect_timeout=10)
        except psycopg2.Error as error:
            raise ReferenceUnreadable(f"cannot connect to the reference database: {error}".strip()) from None
        with self.conn.cursor() as cursor:
            cursor.execute("SET default_transaction_read_only = on")
        self.conn.commit()
        self.conn.set_session(isolation_level=psycopg2.extensions.ISOLATION_LEVEL_REPEATABLE_READ, readonly=True)
        missing = [t for t in ("numbas_lti_resource", "numbas_lti_attempt", "numbas_lti_scormelement",
                               "numbas_lti_lti_11_consumer", "numbas_lti_ltiuserdata")
                   if not self.scalar("SELECT to_regclass(%s) IS NOT NULL", [t])]
        if missing:
            raise ReferenceUnreadable("this is not a numbas-lti-provider v4 database (missing tables: "
                                      + ", ".join(missing) + ")")

    def close(self) -> None:
        self.conn.rollback()
        self.conn.close()

    def rows(self, sql: str, params=()) -> list[dict]:
        with self.conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    def scalar(self, sql: str, params=()):
        with self.conn.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        return None if row is None else row[0]

    def table_exists(self, table: str) -> bool:
        return bool(self.scalar("SELECT to_regclass(%s) IS NOT NULL", [table]))

    def count(self, table: str, where: str = "") -> int:
        if not self.table_exists(table):
            return 0
        return int(self.scalar(f"SELECT count(*) FROM {table} {where}"))

    # --- attempts' run-time data --------------------------------------------------------------

    def attempt_elements(self, attempt_ids: list[int]) -> dict[int, list[tuple]]:
        """Attempt id -> its SCORM element history, oldest first, as (key, real value, time), with
        every stored suspend-data diff turned back into the value it stands for."""
        with self.conn.cursor() as cursor:
            cursor.execute(
                "SELECT id, attempt_id, key, value, time FROM numbas_lti_scormelement WHERE attempt_id = ANY(%s) "
                "ORDER BY attempt_id, time, counter, id", [attempt_ids])
            rows = cursor.fetchall()
            cursor.execute(
                "SELECT d.element_id, d.diff_of_id FROM numbas_lti_scormelementdiff d JOIN numbas_lti_scormelement e "
                "ON e.id = d.element_id WHERE e.attempt_id = ANY(%s)", [attempt_ids])
            diffs = dict(cursor.fetchall())
        values = resolve({row[0]: row[3] for row in rows}, diffs) if diffs else None
        history: dict[int, list[tuple]] = {pk: [] for pk in attempt_ids}
        for element_id, attempt_id, key, value, time in rows:
            history[attempt_id].append((key, values[element_id] if values is not None else value, time))
        return history
