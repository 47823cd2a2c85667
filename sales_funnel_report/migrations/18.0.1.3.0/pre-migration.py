def migrate(cr, version):
    # A deal and step may have two rows from a race of the old full refresh: the
    # new unique key could not be added over them. post-migration refills the table.
    cr.execute("TRUNCATE sales_funnel_fact")
