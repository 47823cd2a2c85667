def post_init_hook(env):
    env["crm.lead.stage.history"]._rebuild_from_tracking()
