from odoo import api, models
from odoo.tools.safe_eval import safe_eval

from .sales_funnel_outcomes import WON_MEANS_PARAM


class SalesFunnelReport(models.Model):
    """What the funnel's screens call: the menu's action on the reader's pipeline,
    the deals behind a number, a row's deal and the notice of a running update."""

    _inherit = "sales.funnel.report"  # pylint: disable=consider-merging-classes-inherited

    @api.model
    @api.readonly
    def get_update_notice(self):
        """The notice the funnel's views show while a background job updates it
        (``False`` when none runs): readers see the numbers are moving."""
        self.check_access("read")
        progress = self.env["sales.funnel.job"]._progress()
        if "history" in progress:
            done = progress["history"]
            return (
                self.env._("Rebuilding the stage history from the chatter: %(done)s %%", done=done)
                if done is not None
                else self.env._("Rebuilding the stage history from the chatter...")
            )
        if "facts" in progress:
            done = progress["facts"]
            return (
                self.env._("Updating the funnel after a pipeline change: %(done)s %%", done=done)
                if done is not None
                else self.env._("Updating the funnel after a pipeline change...")
            )
        return False

    @api.model
    def action_open_funnel(self):
        """Sales > Funnel: one pipeline at a time, the reader's own sales team's
        (the one CRM gives them) or, without one, the team with the most deals
        they see; the team filter shows in the search bar and can be removed."""
        self.check_access("read")
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "sales_funnel_report.sales_funnel_report_action"
        )
        team = self.env.user.sale_team_id
        if not team:
            rows = self.env["crm.lead"]._read_group(
                [("team_id", "!=", False)], ["team_id"], ["__count"], order="__count DESC", limit=1
            )
            team = rows[0][0] if rows else team
        if team:
            context = dict(safe_eval(action.get("context") or "{}"))
            context["search_default_team_id"] = team.id
            action["context"] = context
        return action

    @api.model
    @api.readonly
    def get_deals_action(self, domain, measure=False):
        """The deals behind the number ``measure`` gives for the funnel rows of
        ``domain`` (a cell of the pivot, a bar of the graph): the ``crm.lead``
        views on exactly those deals, named after the step and the outcome.
        The deals are searched with the reader's rights on deals."""
        self.check_access("read")
        domain = list(domain or [])
        # core's checks and errors for a bad domain, before anything else
        self._search(domain)
        [(steps, step_ids)] = self._read_group(
            domain, [], ["step_id:count_distinct", "step_id:array_agg"]
        )
        outcome = {
            "passed_count": [("state", "=", "passed")],
            "lost_count": [("state", "=", "lost")],
            "open_count": [("state", "=", "open")],
            "won_count": [("state", "=", "won")],
            "stuck_count": [("state", "=", "open"), ("lead_id.is_stuck", "=", True)],
            "won_deal_count": self._won_in_the_end_domain(),
            "win_rate": self._won_in_the_end_domain(),
        }.get(measure, [])
        if steps > 1 and measure != "passed_count":
            # over several steps the funnel counts each deal once, at its position
            outcome = [*outcome, ("state", "!=", "passed")]
        names = []
        if steps == 1:
            names.append(self.env["sales.funnel.step"].browse(step_ids[0]).display_name)
        field = self._fields.get(measure) if measure else None
        if field is not None and measure not in ("lead_count", "expected_revenue"):
            names.append(field._description_string(self.env))
        return {
            "type": "ir.actions.act_window",
            "name": " · ".join(names) or self.env._("Deals in the Funnel"),
            "res_model": "crm.lead",
            "views": [
                (self.env.ref("crm.crm_case_tree_view_oppor").id, "list"),
                (self.env.ref("crm.crm_case_kanban_view_leads").id, "kanban"),
                (self.env.ref("crm.crm_lead_view_form").id, "form"),
            ],
            "domain": [("funnel_report_ids", "any", [*domain, *outcome])],
            # lost deals are archived
            "context": {"active_test": False, "create": False},
        }

    def _won_in_the_end_domain(self):
        means = self.env["ir.config_parameter"].sudo().get_param(WON_MEANS_PARAM, "stage")
        if means == "paid":
            return [("deal_state", "=", "paid")]
        return [("deal_state", "in", ["won", "paid"])]

    def action_open_lead(self):
        """A funnel row opens its deal (the list's rows); the reader must see the row."""
        self.ensure_one()
        self.check_access("read")
        return {
            "type": "ir.actions.act_window",
            "res_model": "crm.lead",
            "res_id": self.lead_id.id,
            "views": [(False, "form")],
        }
