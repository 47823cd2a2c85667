import logging

from odoo import api, models

_logger = logging.getLogger(__name__)


class SalesFunnelRebuild(models.AbstractModel):
    """Set the funnel up from the data, the one way install, upgrades, the demo
    data, the command line and the settings' *Rebuild Stage History* do it:

    1. give every CRM stage its funnel step (``sales.funnel.step``);
    2. date the first confirmation of orders confirmed before
       (``sale.order._fill_funnel_confirmed_at``);
    3. replay the deals' stays from the chatter (``sales.funnel.replay``);
    4. rewrite their funnel rows (``sales.funnel.fact``).

    :meth:`_run` does it over every deal in one transaction, or over one batch
    of deals for the background job of *Rebuild Stage History*
    (``sales.funnel.job``), which runs steps 1 and 2 once, before its first
    batch (:meth:`_prepare`). Live recording is ``crm.lead.stage.history._record``.
    """

    _name = "sales.funnel.rebuild"
    _description = "Sales Funnel Set-up from the Data"

    @api.model
    def _run(self, lead_ids=None, replay=True):
        """Set the funnel up for ``lead_ids``, or every deal when ``None``.

        Over every deal it is for install, upgrades, the demo data and the
        command line, in one transaction: it rewrites the funnel table in bulk,
        which locks it. ``replay=False`` keeps the recorded stays (an upgrade
        whose funnel rows changed shape). ``lead_ids`` is a background batch:
        steps 3 and 4 only, row by row. Returns the replay's counts, logged
        for every deal."""
        if lead_ids is not None:
            counts = self.env["sales.funnel.replay"]._replay_stays(lead_ids) if replay else {}
            self.env["sales.funnel.fact"]._refresh(lead_ids)
            return counts
        self._prepare()
        counts = self.env["sales.funnel.replay"]._replay_stays(None) if replay else {}
        self.env["sales.funnel.fact"]._refresh_all_bulk()
        if replay:
            # everything is rebuilt: what was queued before (e.g. by the stages of
            # the data just installed) has nothing left to do
            self.env.cr.execute("DELETE FROM sales_funnel_job")
            self.env["sales.funnel.job"].invalidate_model()
            _logger.info("Stage history rebuilt from tracking: %s", counts)
        return counts

    @api.model
    def _prepare(self):
        """Steps 1 and 2: what the funnel rows rest on, so that they are whole."""
        self.env["sales.funnel.step"]._sync_with_stages()
        self.env["sale.order"]._fill_funnel_confirmed_at()
