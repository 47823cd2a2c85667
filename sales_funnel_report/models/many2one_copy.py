from odoo import fields


class Many2oneCopy(fields.Many2one):
    """A Many2one holding a copy of a deal's reference, stored without a foreign key.

    A stay copies the deal's salesperson, team and company when it opens, on
    every stage change. Checking a key is a query of its own per row written, on
    a table the transaction had not touched, and it locks the record's row (KEY
    SHARE): the keys of those three copies and of the stays' author columns were
    most of what key checks added to a stage write. The deal's own columns keep
    their keys, so a copy names an existing record when written; a record deleted
    later is forgotten in the copies as ``ON DELETE SET NULL`` did
    (``sales.funnel.recorded.mixin._forget_deleted``). It reads, groups and
    filters as any Many2one.
    """

    def update_db_foreign_key(self, model, column):
        return
