import {registry} from "@web/core/registry";
import {graphView} from "@web/views/graph/graph_view";
import {listView} from "@web/views/list/list_view";
import {pivotView} from "@web/views/pivot/pivot_view";
import {FunnelUpdateNotice} from "./funnel_update_notice";

// The funnel's graph, pivot and list: Odoo's own, with the notice of a
// background update on top.
function withNotice(view, template) {
    const Controller = class extends view.Controller {
        static template = template;
        static components = {...view.Controller.components, FunnelUpdateNotice};
    };
    return {...view, Controller};
}

const views = registry.category("views");
views.add("sales_funnel_graph", withNotice(graphView, "sales_funnel_report.GraphView"));
views.add("sales_funnel_pivot", withNotice(pivotView, "sales_funnel_report.PivotView"));
views.add("sales_funnel_list", withNotice(listView, "sales_funnel_report.ListView"));
