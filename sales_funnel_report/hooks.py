def post_init_hook(env):
    env["crm.lead.stage.history"]._rebuild_from_tracking()


def uninstall_hook(env):
    env["sales.funnel.report"]._drop_median_function()
    env["crm.lead.stage.history"]._drop_record_function()
    env["sales.funnel.fact"]._drop_refresh_function()
