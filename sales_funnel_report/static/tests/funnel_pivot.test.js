import {mailModels} from "@mail/../tests/mail_test_helpers";
import {describe, expect, test} from "@odoo/hoot";
import {queryAllTexts} from "@odoo/hoot-dom";
import {mockDate} from "@odoo/hoot-mock";
import {
    contains,
    defineModels,
    fields,
    models,
    mountView,
    onRpc,
    patchWithCleanup,
    toggleMenuItem,
    toggleSearchBarMenu,
} from "@web/../tests/web_test_helpers";
import {download} from "@web/core/network/download";

describe.current.tags("desktop");

// Steps in funnel order: ids 1, 2, 3 whose names sort the other way round.
class SalesFunnelStep extends models.Model {
    _name = "sales.funnel.step";
    name = fields.Char();
    _records = [
        {id: 1, name: "Zulu first"},
        {id: 2, name: "Mike second"},
        {id: 3, name: "Alpha third"},
    ];
}

class SalesFunnelReport extends models.Model {
    _name = "sales.funnel.report";
    step_id = fields.Many2one({string: "Step", relation: "sales.funnel.step"});
    create_date = fields.Datetime({string: "Deal Created"});
    lead_count = fields.Integer({string: "Reached", aggregator: "sum"});
    conversion_rate = fields.Float({string: "Conversion (%)", aggregator: "avg"});
    // December: steps 1 and 3; November: steps 1, 2 and 3
    _records = [
        {id: 1, step_id: 1, create_date: "2016-12-05 10:00:00", lead_count: 1},
        {id: 2, step_id: 3, create_date: "2016-12-06 10:00:00", lead_count: 1},
        {id: 3, step_id: 1, create_date: "2016-11-05 10:00:00", lead_count: 1},
        {id: 4, step_id: 2, create_date: "2016-11-06 10:00:00", lead_count: 1},
        {id: 5, step_id: 3, create_date: "2016-11-07 10:00:00", lead_count: 1},
    ];
}

defineModels({...mailModels, SalesFunnelReport, SalesFunnelStep});

const PIVOT = `
    <pivot js_class="sales_funnel_pivot">
        <field name="step_id" type="row"/>
        <field name="lead_count" type="measure"/>
        <field name="conversion_rate" type="measure"/>
    </pivot>`;

// The report's own answers where the mock server cannot know them: no update
// running, and a conversion that does not apply at the last step (False).
function reportAnswers() {
    onRpc("sales.funnel.report", "get_update_notice", () => false);
    onRpc("sales.funnel.step", "get_funnel_order", () => [1, 2, 3]);
    // the pivot reads with read_group
    onRpc("sales.funnel.report", "read_group", async ({parent}) => {
        const groups = await parent();
        for (const group of groups) {
            group.conversion_rate =
                group.step_id && group.step_id[0] === 3 ? false : 50.0;
        }
        return groups;
    });
}

test("no Count among the measures: Reached counts the deals", async () => {
    reportAnswers();
    await mountView({type: "pivot", resModel: "sales.funnel.report", arch: PIVOT});
    await contains("button:contains(Measures)").click();
    const measures = queryAllTexts(".o-dropdown-item");
    expect(measures).toInclude("Reached");
    expect(measures).not.toInclude("Count");
});

test("a measure that does not apply is an empty cell in the xlsx", async () => {
    reportAnswers();
    let exported = null;
    patchWithCleanup(download, {
        _download: async ({data}) => {
            exported = JSON.parse(await data.data.text());
        },
    });
    await mountView({type: "pivot", resModel: "sales.funnel.report", arch: PIVOT});
    await contains(".o_pivot_download").click();
    const rows = exported.rows.map((row) => [
        row.title,
        ...row.values.map((v) => v.value),
    ]);
    expect(rows.find((row) => row[0] === "Alpha third")).toEqual([
        "Alpha third",
        2,
        "",
    ]);
    expect(rows.find((row) => row[0] === "Zulu first")).toEqual(["Zulu first", 2, 50]);
});

test("comparing periods keeps the steps in funnel order", async () => {
    reportAnswers();
    mockDate("2016-12-20T10:00:00");
    await mountView({
        type: "pivot",
        resModel: "sales.funnel.report",
        arch: PIVOT,
        searchViewArch: `
            <search>
                <filter name="created" date="create_date" default_period="month"/>
            </search>`,
        context: {search_default_created: 1},
    });
    await toggleSearchBarMenu();
    await toggleMenuItem("Deal Created: Previous period");
    // December has no deal at Mike second: without the funnel's order, the pivot
    // would add it after the steps of December
    expect(queryAllTexts("tbody th.o_pivot_header_cell_closed")).toEqual([
        "Zulu first",
        "Mike second",
        "Alpha third",
    ]);
});
