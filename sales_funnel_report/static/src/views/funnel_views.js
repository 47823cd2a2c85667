import {registry} from "@web/core/registry";
import {GraphModel} from "@web/views/graph/graph_model";
import {GraphRenderer} from "@web/views/graph/graph_renderer";
import {graphView} from "@web/views/graph/graph_view";
import {listView} from "@web/views/list/list_view";
import {PivotModel} from "@web/views/pivot/pivot_model";
import {PivotRenderer} from "@web/views/pivot/pivot_renderer";
import {pivotView} from "@web/views/pivot/pivot_view";
import {FunnelUpdateNotice} from "./funnel_update_notice";
import {openFunnelDeals} from "./funnel_drilldown";

// The funnel's graph, pivot and list: Odoo's own, with the notice of a
// background update on top, the funnel's measures only (a row count means
// nothing here: "Reached" is the count of deals) and a drill-down to the deals
// behind the number clicked.
function withNotice(view, template) {
    const Controller = class extends view.Controller {
        static template = template;
        static components = {...view.Controller.components, FunnelUpdateNotice};
    };
    return {...view, Controller};
}

/**
 * Reorders the groups of the step in the funnel's order, at every level of the
 * tree grouped by it: with a comparison, the pivot appends the steps only the
 * second period has after all those of the first.
 */
function sortSteps(tree, groupBys, depth, stepOrder) {
    if (!tree.directSubTrees.size) {
        return;
    }
    if ((groupBys[depth] || "").split(":")[0] === "step_id") {
        const rank = (value) => {
            const index = stepOrder.indexOf(value);
            return index === -1 ? stepOrder.length : index;
        };
        const entries = [...tree.directSubTrees.entries()];
        entries.sort(([a], [b]) => rank(a) - rank(b));
        tree.directSubTrees = new Map(entries);
    }
    for (const subTree of tree.directSubTrees.values()) {
        sortSteps(subTree, groupBys, depth + 1, stepOrder);
    }
}

// Measures that are empty where they do not apply: blank, never 0.
const BLANK_WHEN_EMPTY = [
    "conversion_rate",
    "win_rate",
    "duration_days",
    "duration_median_days",
];

export class FunnelPivotModel extends PivotModel {
    _getMeasurements(group, config) {
        // with a comparison, the pivot turns an empty value into 0: keep it empty
        const measurements = super._getMeasurements(group, config);
        for (const name of BLANK_WHEN_EMPTY) {
            if (
                name in measurements &&
                [false, null, undefined].includes(group[name])
            ) {
                measurements[name] = undefined;
            }
        }
        return measurements;
    }

    async _loadData(config, prune) {
        delete config.metaData.measures.__count;
        if (config.metaData.origins.length > 1 && !this.stepOrder) {
            this.stepOrder = await this.orm.call(
                "sales.funnel.step",
                "get_funnel_order"
            );
        }
        return super._loadData(config, prune);
    }

    async _subdivideGroup(group, divisors, config) {
        await super._subdivideGroup(group, divisors, config);
        if (config.metaData.origins.length > 1 && this.stepOrder) {
            const {data, metaData} = config;
            sortSteps(data.rowGroupTree, metaData.fullRowGroupBys, 0, this.stepOrder);
            sortSteps(data.colGroupTree, metaData.fullColGroupBys, 0, this.stepOrder);
        }
    }

    exportData() {
        // a measure that does not apply is empty: a blank cell, not FALSE
        const data = super.exportData();
        for (const row of data.rows) {
            for (const cell of row.values) {
                if (cell.value === false || cell.value === null) {
                    cell.value = "";
                }
            }
        }
        return data;
    }
}

export class FunnelPivotRenderer extends PivotRenderer {
    openView(domain, views, context) {
        return openFunnelDeals(this.env, {
            domain,
            measure: this.clickedMeasure,
            context,
        });
    }

    onOpenView(cell) {
        this.clickedMeasure = cell.measure;
        return super.onOpenView(cell);
    }
}

export class FunnelGraphModel extends GraphModel {
    _buildMetaData(params) {
        const metaData = super._buildMetaData(params);
        delete metaData.measures.__count;
        return metaData;
    }

    async _loadDataPoints(metaData) {
        const dataPoints = await super._loadDataPoints(metaData);
        const [first] = metaData.groupBy;
        // with a comparison, the bars follow the first period's steps, then the
        // second's: put them back in the funnel's order
        if (metaData.domains.length > 1 && first && first.fieldName === "step_id") {
            const stepOrder = await this.orm.call(
                "sales.funnel.step",
                "get_funnel_order"
            );
            const rank = (dataPoint) => {
                const [raw] = JSON.parse(dataPoint.identifier);
                const value = raw[first.spec];
                const index = stepOrder.indexOf(value && value[0]);
                return index === -1 ? stepOrder.length : index;
            };
            dataPoints.sort((a, b) => rank(a) - rank(b));
        }
        return dataPoints;
    }
}

export class FunnelGraphRenderer extends GraphRenderer {
    openView(domain, views, context) {
        return openFunnelDeals(this.env, {
            domain,
            measure: this.model.metaData.measure,
            context,
        });
    }
}

const views = registry.category("views");
views.add("sales_funnel_graph", {
    ...withNotice(graphView, "sales_funnel_report.GraphView"),
    Model: FunnelGraphModel,
    Renderer: FunnelGraphRenderer,
});
views.add("sales_funnel_pivot", {
    ...withNotice(pivotView, "sales_funnel_report.PivotView"),
    Model: FunnelPivotModel,
    Renderer: FunnelPivotRenderer,
});
views.add("sales_funnel_list", withNotice(listView, "sales_funnel_report.ListView"));
