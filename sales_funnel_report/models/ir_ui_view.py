from lxml import etree

from odoo import _, fields, models

# What a <funnel> arch may say: the root's attributes, and <field> children naming
# the measures it offers (deals or expected revenue).
FUNNEL_ATTRIBUTES = {"__validate__", "string", "js_class", "class", "sample", "measure"}
FUNNEL_FIELD_ATTRIBUTES = {"__validate__", "name", "type", "string", "invisible"}


class IrUiView(models.Model):
    _inherit = "ir.ui.view"

    type = fields.Selection(selection_add=[("funnel", "Funnel")], ondelete={"funnel": "cascade"})

    def _get_view_info(self):
        return {"funnel": {"icon": "fa fa-filter"}} | super()._get_view_info()

    def _validate_tag_funnel(self, node, name_manager, node_info):
        """A funnel view: only <field> children, on fields of the model."""
        if not node_info["validate"]:
            return
        unknown = set(node.attrib) - FUNNEL_ATTRIBUTES
        if unknown:
            self._raise_view_error(
                _("Invalid attributes in a funnel view: %s", ", ".join(sorted(unknown))),
                node,
            )
        for child in node.iterchildren(tag=etree.Element):
            if child.tag != "field":
                self._raise_view_error(
                    _("A <funnel> can only contain <field> nodes, found a <%s>", child.tag),
                    child,
                )
            unknown = set(child.attrib) - FUNNEL_FIELD_ATTRIBUTES
            if unknown:
                self._raise_view_error(
                    _("Invalid attributes in a funnel field: %s", ", ".join(sorted(unknown))),
                    child,
                )
