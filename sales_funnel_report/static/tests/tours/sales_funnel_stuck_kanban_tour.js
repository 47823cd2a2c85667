/** @odoo-module */
import {queryAll} from "@odoo/hoot-dom";
import {registry} from "@web/core/registry";
import {stepUtils} from "@web_tour/tour_service/tour_utils";

const DEALS = ["Fresh call", "Late call", "Slow proposal"];

// The deals shown on the kanban's cards, sorted (a card's name is plain text).
function cardNames() {
    return queryAll(".o_kanban_record:not(.o_kanban_ghost)")
        .map((card) => DEALS.find((name) => card.textContent.includes(name)))
        .sort();
}

function expectCards(expected) {
    const names = cardNames();
    if (JSON.stringify(names) !== JSON.stringify(expected)) {
        throw new Error(
            `cards ${JSON.stringify(names)}, expected ${JSON.stringify(expected)}`
        );
    }
}

registry.category("web_tour.tours").add("sales_funnel_report_stuck_kanban_tour", {
    url: "/odoo",
    steps: () => [
        stepUtils.showAppsMenuItem(),
        {
            trigger: ".o_app[data-menu-xmlid='crm.crm_menu_root']",
            run: "click",
        },
        {
            trigger:
                ".o_kanban_record:contains('Late call') .o_funnel_stuck:contains('9 d · limit 5')",
            content:
                "Stuck by the stage's Days to rot: a red badge with its age and the limit",
        },
        {
            trigger:
                ".o_kanban_record:contains('Slow proposal') .o_funnel_stuck:contains('4 d · usually 3')",
            content: "Stuck by the learned limit: how long deals usually stay there",
        },
        {
            trigger:
                ".o_kanban_record:contains('Fresh call') .o_funnel_stage_age:contains('1 d · limit 5')",
            content: "Not stuck: its age in muted text, no badge",
            run() {
                const fresh = queryAll(".o_kanban_record").find((card) =>
                    card.textContent.includes("Fresh call")
                );
                if (fresh.querySelector(".o_funnel_stuck")) {
                    throw new Error(
                        "a deal within its stage's limit has the stuck badge"
                    );
                }
                expectCards(DEALS);
            },
        },
        {
            trigger: ".o_searchview_dropdown_toggler",
            run: "click",
        },
        {
            trigger: ".o_filter_menu .o-dropdown-item:contains('Stuck')",
            run: "click",
        },
        {
            trigger:
                ".o_searchview_facet:contains('Stuck'):not(:contains('My Pipeline'))",
            content:
                "Stuck is a filter of its own, combined with My Pipeline (not OR-ed)",
        },
        {
            trigger:
                ".o_kanban_renderer:not(:contains('Fresh call')):contains('Late call')",
            content: "The Stuck filter keeps the two late deals",
            run() {
                expectCards(["Late call", "Slow proposal"]);
            },
        },
    ],
});
