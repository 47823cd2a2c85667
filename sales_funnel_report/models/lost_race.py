"""Races between users' transactions and the background job's batches.

Both write the stays and funnel rows of the same deals. Under Odoo's
REPEATABLE READ, a transaction that writes a deal's rows changed by another
one that committed after it began fails to serialize; the loser is the batch
(``sales.funnel.job``, tried again) or the recording of a user's transaction
(``sales.funnel.queue``, left to the job). Either way it is handled: its
statement is not logged as a bad query, which Odoo does at ERROR level.
"""

import logging

from psycopg2 import errors

_logger = logging.getLogger("odoo.sql_db")

# What a lost race raises; the other side goes on.
LOST_RACE = (errors.SerializationFailure, errors.DeadlockDetected, errors.LockNotAvailable)


def execute_racing(cr, query):
    """Run ``query`` (an ``SQL``) on ``cr``, logged as Odoo logs a failed query
    unless it lost a race."""
    try:
        cr.execute(query, log_exceptions=False)
    except LOST_RACE:
        raise
    except Exception as error:
        _logger.error("bad query: %s\nERROR: %s", cr._obj.query or query, error)
        raise
