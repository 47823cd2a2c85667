from odoo.tools import SQL

# The stays' copies of the deal's salesperson, team and company, which lost their
# foreign keys (see models/many2one_copy.py).
COPIES = ("user_id", "team_id", "company_id")
# The stays' author columns, gone (_log_access = False) with the keys of two of them.
AUTHOR_COLUMNS = ("create_uid", "create_date", "write_uid", "write_date")


def key_name(column):
    return f"crm_lead_stage_history_{column}_fkey"


def migrate(cr, version):
    for column in COPIES:
        cr.execute(
            SQL(
                "ALTER TABLE crm_lead_stage_history DROP CONSTRAINT IF EXISTS %s",
                SQL.identifier(key_name(column)),
            )
        )
    # Odoo never drops log access columns itself
    cr.execute(
        SQL(
            "ALTER TABLE crm_lead_stage_history %s",
            SQL(", ").join(
                SQL("DROP COLUMN IF EXISTS %s", SQL.identifier(column)) for column in AUTHOR_COLUMNS
            ),
        )
    )
    keys = [key_name(column) for column in (*COPIES, "create_uid", "write_uid")]
    cr.execute(SQL("DELETE FROM ir_model_constraint WHERE name = ANY(%s) AND type = 'f'", keys))
