def migrate(cr, version):
    # The funnel rows got new columns in a new order (the fast ones first): let the
    # ORM create the table anew; post-migration fills it.
    cr.execute("DROP TABLE IF EXISTS sales_funnel_fact")
