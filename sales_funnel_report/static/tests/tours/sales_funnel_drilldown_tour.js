/** @odoo-module */
import {queryAll, queryOne} from "@odoo/hoot-dom";
import {registry} from "@web/core/registry";
import {stepUtils} from "@web_tour/tour_service/tour_utils";

// The pivot's cell of a step (row header) and a measure (column header).
function pivotCell(step, measure) {
    const measures = queryAll(".o_pivot table thead th.o_pivot_measure_row").map((th) =>
        th.textContent.trim()
    );
    const column = measures.indexOf(measure);
    const row = queryAll(".o_pivot table tbody tr").find(
        (tr) => tr.querySelector("th")?.textContent.trim() === step
    );
    if (column === -1 || !row) {
        throw new Error(
            `no pivot cell for ${step} x ${measure} (measures: ${measures})`
        );
    }
    return row.querySelectorAll("td")[column];
}

registry.category("web_tour.tours").add("sales_funnel_report_drilldown_tour", {
    url: "/odoo",
    steps: () => [
        stepUtils.showAppsMenuItem(),
        {
            trigger: ".o_app[data-menu-xmlid='sale.sale_menu_root']",
            run: "click",
        },
        {
            trigger:
                ".o_menu_sections [data-menu-xmlid='sales_funnel_report.sales_funnel_report_menu_sale']",
            run: "click",
        },
        {
            trigger: ".o_facet_value:contains('Drill team')",
            content: "One pipeline: the reader's team, as a filter that can be removed",
        },
        {
            trigger: ".o_switch_view.o_pivot",
            run: "click",
        },
        {
            trigger: ".o_pivot table tbody th:contains('Drill first')",
            content: "Lost at the first step: 2",
            run() {
                const cell = pivotCell("Drill first", "Lost");
                if (cell.textContent.trim() !== "2") {
                    throw new Error(`Lost at Drill first: ${cell.textContent}`);
                }
                cell.click();
            },
        },
        {
            trigger: ".o_breadcrumb .active:contains('Drill first · Lost')",
            content:
                "The deals behind the number, named after the step and the outcome",
        },
        {
            trigger: ".o_list_view .o_data_row",
            run() {
                const names = queryAll(".o_list_view .o_data_row td[name='name']")
                    .map((td) => td.textContent.trim())
                    .sort();
                const expected = ["Drill lost 1", "Drill lost 2"];
                if (JSON.stringify(names) !== JSON.stringify(expected)) {
                    throw new Error(
                        `deals ${JSON.stringify(names)}, expected ${expected}`
                    );
                }
                queryOne(".o_list_view");
            },
        },
    ],
});
