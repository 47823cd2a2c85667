from odoo import SUPERUSER_ID, api


def migrate(cr, version):
    # the recorded stays are kept: only the funnel rows are written anew
    api.Environment(cr, SUPERUSER_ID, {})["sales.funnel.rebuild"]._run(replay=False)
