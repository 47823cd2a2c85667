/** @odoo-module */
import {queryAll} from "@odoo/hoot-dom";
import {registry} from "@web/core/registry";
import {stepUtils} from "@web_tour/tour_service/tour_utils";

// Pipeline order of the test's stages (not the alphabetical one), then fulfilment.
const PIPELINE = [
    "Zulu first",
    "Alpha second",
    "Mike third",
    "Bravo won",
    "Order",
    "Invoiced",
    "Paid",
];

function assertOrder(found, where) {
    if (JSON.stringify(found) !== JSON.stringify(PIPELINE)) {
        throw new Error(
            `${where}: steps ${JSON.stringify(found)}, expected ${JSON.stringify(PIPELINE)}`
        );
    }
}

registry.category("web_tour.tours").add("sales_funnel_report_tour", {
    url: "/odoo",
    steps: () => [
        stepUtils.showAppsMenuItem(),
        {
            trigger: ".o_app[data-menu-xmlid='sale.sale_menu_root']",
            content: "Open Sales",
            run: "click",
        },
        {
            trigger:
                ".o_menu_sections [data-menu-xmlid='sales_funnel_report.sales_funnel_report_menu_sale']",
            content: "Open Sales > Funnel",
            run: "click",
        },
        {
            trigger: ".o_funnel_view .o_funnel_step",
            content: "The funnel opens first, as the funnel view",
        },
        {
            trigger: ".o_switch_view.o_graph",
            content: "Switch to the graph",
            run: "click",
        },
        {
            trigger: ".o_graph_view .o_graph_canvas_container canvas",
            content: "The graph: stages in pipeline order, then fulfilment",
            run() {
                const canvas = document.querySelector(
                    ".o_graph_canvas_container canvas"
                );
                const chart = window.Chart.getChart(canvas);
                assertOrder(chart.data.labels, "graph");
            },
        },
        {
            trigger: ".o_switch_view.o_pivot",
            content: "Switch to the pivot",
            run: "click",
        },
        {
            trigger: ".o_pivot table tbody tr:nth-child(2) th",
            content: "The pivot lists the steps in the same order",
            run() {
                const headers = queryAll(
                    ".o_pivot table tbody th.o_pivot_header_cell_closed"
                ).map((th) => th.textContent.trim());
                assertOrder(headers, "pivot");
            },
        },
    ],
});
