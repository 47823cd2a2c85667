from odoo.tools import SQL

# The funnel rows' copies of a deal's stage, salesperson, team, company and loss
# reason, which lost their foreign keys (see sales_funnel_fact.py).
COPIES = ("stage_id", "user_id", "team_id", "company_id", "lost_reason_id")


def migrate(cr, version):
    for column in COPIES:
        name = f"sales_funnel_fact_{column}_fkey"
        cr.execute(
            SQL(
                "ALTER TABLE sales_funnel_fact DROP CONSTRAINT IF EXISTS %s",
                SQL.identifier(name),
            )
        )
        cr.execute(SQL("DELETE FROM ir_model_constraint WHERE name = %s AND type = 'f'", name))
    # the unique key (lead_id, step_id) serves the lookups by deal
    cr.execute("DROP INDEX IF EXISTS sales_funnel_fact__lead_id_index")
