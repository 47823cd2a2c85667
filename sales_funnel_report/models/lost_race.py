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

from odoo.tools import SQL

_logger = logging.getLogger("odoo.sql_db")

# What a lost race raises; the other side goes on.
LOST_RACE = (errors.SerializationFailure, errors.DeadlockDetected, errors.LockNotAvailable)

SAVEPOINT = SQL("SAVEPOINT sales_funnel_race")
RELEASE = SQL("RELEASE SAVEPOINT sales_funnel_race")
ROLLBACK = SQL("ROLLBACK TO SAVEPOINT sales_funnel_race; RELEASE SAVEPOINT sales_funnel_race")


def execute_racing(cr, query, guard=None, fetched=True, then=None):
    """Run ``query`` (an ``SQL``) on ``cr``, logged as Odoo logs a failed query
    unless it lost a race; in a savepoint of ``guard``'s when given (``fetched``:
    whether its result is read). ``then``: a statement sent with it, run after
    the savepoint is released, whose result is read instead."""
    if guard is not None:
        query = guard.wrap(query, fetched and then is None)
    if then is not None:
        query = SQL("%s; %s", query, then)
    try:
        cr.execute(query, log_exceptions=False)
    except LOST_RACE:
        if guard is not None:
            guard.lost = True
        raise
    except Exception as error:
        _logger.error("bad query: %s\nERROR: %s", cr._obj.query or query, error)
        raise


class RaceGuard:
    """A savepoint around each statement that may lose a race, so that only
    that statement is undone, sent in the same round trip as the statement:
    a stage write's recording is two statements, and two more round trips
    were a twentieth of what it adds to the write.

    A statement whose result is read keeps its savepoint open until the next
    one or :meth:`close`; the others release theirs at once. ``lost`` tells a
    race lost by the guarded statement from one raised by any other: only the
    former may be rolled back to the savepoint."""

    def __init__(self, cr):
        self.cr = cr
        self.open = False
        self.lost = False

    def wrap(self, query, fetched):
        """``query`` in a savepoint, after the release of the one before; the
        result of a multi-statement query is its last statement's."""
        parts = [RELEASE] if self.open else []
        parts += [SAVEPOINT, query]
        if not fetched:
            parts.append(RELEASE)
        self.open = fetched
        return SQL("; ").join(parts)

    def rollback(self):
        """Undo the statement that lost the race (the transaction goes on; the
        statements before it stay)."""
        self.cr.execute(ROLLBACK)
        self.open = False
        self.lost = False

    def close(self):
        if self.open:
            self.cr.execute(RELEASE)
            self.open = False
