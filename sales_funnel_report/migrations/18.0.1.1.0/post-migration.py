from odoo import SUPERUSER_ID, api


def migrate(cr, version):
    api.Environment(cr, SUPERUSER_ID, {})["sales.funnel.fact"]._refresh_all_bulk()
