def post_init_hook(env):
    env["sales.funnel.rebuild"]._run()


def uninstall_hook(env):
    env["sales.funnel.report"]._drop_median_function()
