def migrate(cr, version):
    # The funnel rows got the step axis and required columns: let the ORM create
    # the table anew; post-migration fills it.
    cr.execute("DROP TABLE IF EXISTS sales_funnel_fact")
