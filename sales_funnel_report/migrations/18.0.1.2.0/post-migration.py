from odoo import SUPERUSER_ID, api


def migrate(cr, version):
    env = api.Environment(cr, SUPERUSER_ID, {})
    env["sales.funnel.step"]._sync_with_stages()
    env["sale.order"]._fill_funnel_confirmed_at()
    env["sales.funnel.fact"]._refresh_all_bulk()
