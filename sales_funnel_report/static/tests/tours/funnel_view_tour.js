/** @odoo-module */
import {queryAllTexts} from "@odoo/hoot-dom";
import {registry} from "@web/core/registry";
import {stepUtils} from "@web_tour/tour_service/tour_utils";

function assertEqual(found, expected, what) {
    if (JSON.stringify(found) !== JSON.stringify(expected)) {
        throw new Error(
            `${what}: ${JSON.stringify(found)}, expected ${JSON.stringify(expected)}`
        );
    }
}

// The scenario of tests/test_funnel_view_tour.py.
registry.category("web_tour.tours").add("sales_funnel_view_tour", {
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
            trigger: ".o_funnel_view .o_funnel_summary",
            content:
                "The funnel view first: the team's steps in order, with their numbers",
            run() {
                assertEqual(
                    queryAllTexts(".o_funnel_step_name"),
                    ["Primary contact", "Proposal", "Won (View tour team)"],
                    "steps"
                );
                assertEqual(
                    queryAllTexts(".o_funnel_band_value"),
                    ["9", "4", "1"],
                    "reached"
                );
                assertEqual(
                    queryAllTexts(".o_funnel_lost_label"),
                    ["Lost 3 (33.3%)", "Lost 1 (25.0%)"],
                    "lost"
                );
                assertEqual(
                    queryAllTexts(
                        ".o_funnel_step[data-step-name='Primary contact'] .o_funnel_reason"
                    ),
                    ["Not called back in time 2", "Price 1"],
                    "loss reasons"
                );
                assertEqual(
                    queryAllTexts(".o_funnel_transition"),
                    ["44.4% went on · 5 dropped off", "25.0% went on · 3 dropped off"],
                    "conversion"
                );
                const summary = document.querySelector(".o_funnel_summary").textContent;
                const leak =
                    "Most deals are lost at Primary contact (3 of 9, mostly “Not called back in time”).";
                if (!summary.startsWith(leak)) {
                    throw new Error(`sentence: ${summary}`);
                }
            },
        },
        {
            trigger: ".o_funnel_step[data-step-name='Primary contact'] .o_funnel_lost",
            content: "Click the lost part of Primary contact",
            run: "click",
        },
        {
            trigger: ".o_breadcrumb .active:contains('Primary contact · Lost')",
            content: "The deals lost at Primary contact",
        },
        {
            trigger: ".o_list_view .o_data_row",
            content: "Exactly the deals lost at Primary contact, archived as they are",
            run() {
                const names = queryAllTexts(".o_data_row [name='name']").sort();
                assertEqual(names, ["Lost 1", "Lost 2", "Lost 3"], "deals");
            },
        },
    ],
});
