def post_init_hook(env):
    env["crm.lead.stage.history"]._rebuild_from_tracking()


def uninstall_hook(env):
    env["sales.funnel.report"]._drop_median_function()
