"""SQL functions that run the write path's statements for a transaction's few deals.

At each commit, PostgreSQL planned the recording statements anew, and planning
their CTEs took longer than running them (index scans over a few deals). A
PL/pgSQL function keeps the plan of each statement for its connection; with
``plan_cache_mode = force_generic_plan`` that plan is made once, at the first
call, instead of after five custom plans. The bodies are rendered from the
same ``SQL`` the models run directly, at install and upgrade (``init``).
"""

from odoo.tools import SQL

# Up to this many deals, statements go through the functions: a transaction's
# deals. The generic plan is made for a few deals (PostgreSQL assumes an array
# parameter of 10 elements); background batches (1,000 deals) and rebuilds are
# planned for their size with the statements run directly.
FEW_DEALS = 100


def create_function(cr, signature, returns, body):
    """Create or replace the PL/pgSQL function ``signature`` (an ``SQL``) whose
    body is ``body`` (an ``SQL``, rendered to text with its parameters)."""
    cr.execute(SQL(
        """
        CREATE OR REPLACE FUNCTION %s RETURNS %s
        LANGUAGE plpgsql VOLATILE
        SET plan_cache_mode = force_generic_plan
        AS %s
        """,
        signature, returns, cr.mogrify(SQL("BEGIN\n%s;\nEND", body)).decode(),
    ))


def drop_function(cr, signature):
    cr.execute(SQL("DROP FUNCTION IF EXISTS %s", signature))
