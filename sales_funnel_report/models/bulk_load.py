"""Loading a whole table at once: for install, upgrades and the command line only
(``sales.funnel.rebuild._run`` over every deal), never in a user's request. Every
TRUNCATE and ALTER TABLE of the addon is here, in :func:`loaded_in_bulk`: callers
reach it as ``bulk_load.loaded_in_bulk`` so that a test can forbid it
(``tests/test_background_jobs.py``)."""

from contextlib import contextmanager

from odoo.tools import SQL

# Sorts and hashes over every deal spill to disk at PostgreSQL's default of 4 MB:
# at a million deals, gigabytes of temporary files.
BULK_WORK_MEM = "256MB"


@contextmanager
def more_work_mem(cr):
    """Raise ``work_mem`` for this transaction's statements inside the block."""
    cr.execute("SELECT current_setting('work_mem')")
    [before] = cr.fetchone()
    cr.execute(SQL("SELECT set_config('work_mem', %s, true)", BULK_WORK_MEM))
    yield
    cr.execute(SQL("SELECT set_config('work_mem', %s, true)", before))


@contextmanager
def loaded_in_bulk(cr, table):
    """Empty ``table`` for the block to fill it again, without its foreign keys,
    unique and exclusion constraints and other indexes (all but its primary key),
    put back after: PostgreSQL then checks each key in one pass and builds each
    index from sorted rows, instead of row by row. It locks the table and those
    its keys point to (deals, stages, users...)."""
    cr.execute(
        SQL(
            """
        SELECT conname, pg_get_constraintdef(oid)
          FROM pg_constraint
         WHERE conrelid = %(table)s::regclass AND contype IN ('f', 'u', 'x')
        """,
            table=table,
        )
    )
    keys = cr.fetchall()
    cr.execute(
        SQL(
            """
        SELECT c.relname, pg_get_indexdef(i.indexrelid)
          FROM pg_index i
          JOIN pg_class c ON c.oid = i.indexrelid
         WHERE i.indrelid = %(table)s::regclass
           AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
        """,
            table=table,
        )
    )
    indexes = cr.fetchall()
    for name, _definition in keys:
        cr.execute(
            SQL("ALTER TABLE %s DROP CONSTRAINT %s", SQL.identifier(table), SQL.identifier(name))
        )
    for name, _definition in indexes:
        cr.execute(SQL("DROP INDEX %s", SQL.identifier(name)))
    cr.execute(SQL("TRUNCATE %s", SQL.identifier(table)))
    yield
    # the definitions are PostgreSQL's own text of what it just dropped
    for _name, definition in indexes:
        cr.execute(SQL(definition))
    for name, definition in keys:
        cr.execute(
            SQL(
                "ALTER TABLE %s ADD CONSTRAINT %s %s",
                SQL.identifier(table),
                SQL.identifier(name),
                SQL(definition),
            )
        )
