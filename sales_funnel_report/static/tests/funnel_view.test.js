import {mailModels} from "@mail/../tests/mail_test_helpers";
import {describe, expect, test} from "@odoo/hoot";
import {queryAll, queryAllTexts, queryOne} from "@odoo/hoot-dom";
import {
    contains,
    defineModels,
    fields,
    mockService,
    models,
    mountView,
    onRpc,
} from "@web/../tests/web_test_helpers";

describe.current.tags("desktop");

class SalesFunnelReport extends models.Model {
    _name = "sales.funnel.report";

    step_id = fields.Many2one({string: "Step", relation: "sales.funnel.step"});
    team_id = fields.Many2one({string: "Sales Team", relation: "crm.team"});
    lost_reason_id = fields.Many2one({
        string: "Loss Reason",
        relation: "crm.lost.reason",
    });
    state = fields.Selection({
        string: "Outcome at Stage",
        selection: [
            ["passed", "Passed"],
            ["lost", "Lost"],
            ["open", "Open"],
            ["won", "Won"],
        ],
    });
    create_date = fields.Datetime({string: "Deal Created"});
    lead_count = fields.Integer({string: "Reached"});
    lost_count = fields.Integer({string: "Lost"});
    expected_revenue = fields.Float({string: "Expected Revenue"});

    _records = [];
}

class SalesFunnelStep extends models.Model {
    _name = "sales.funnel.step";
    name = fields.Char();
}

class CrmTeam extends models.Model {
    _name = "crm.team";
    name = fields.Char();
}

class CrmLostReason extends models.Model {
    _name = "crm.lost.reason";
    name = fields.Char();
}

defineModels({
    ...mailModels,
    SalesFunnelReport,
    SalesFunnelStep,
    CrmTeam,
    CrmLostReason,
});

const ARCH = `
    <funnel string="Sales Funnel">
        <field name="lead_count" type="measure"/>
        <field name="expected_revenue" type="measure"/>
    </funnel>`;

const NEW = [1, "New"];
const PRIMARY = [2, "Primary contact"];
const PROPOSAL = [3, "Proposal"];
const WON = [4, "Won"];
const PAID = [7, "Paid"];

const SPAM = [11, "Spam"];
const NOT_CALLED = [12, "Not called back in time"];
const PRICE = [13, "Price"];
const COMPETITOR = [14, "Competitor"];
const TIMING = [15, "Timing"];

/** A step group as the report's web_read_group gives it (lazy=False). */
function stepGroup(step, values, extra = {}) {
    return {
        step_id: step,
        __count: values.lead_count,
        __domain: [["step_id", "=", step[0]]],
        lead_count: values.lead_count,
        passed_count: values.passed_count,
        lost_count: values.lost_count,
        open_count: values.open_count,
        stuck_count: values.stuck_count ?? 0,
        won_count: values.won_count,
        conversion_rate: values.conversion_rate ?? false,
        win_rate: values.win_rate ?? false,
        duration_days: values.duration_days ?? false,
        duration_median_days: values.duration_median_days ?? false,
        expected_revenue: values.expected_revenue,
        ...extra,
    };
}

// One pipeline; reached = passed + lost + open + won on every step.
const STEPS = [
    stepGroup(NEW, {
        lead_count: 100,
        passed_count: 80,
        lost_count: 15,
        open_count: 5,
        won_count: 0,
        conversion_rate: 80,
        win_rate: 10,
        duration_days: 2.5,
        duration_median_days: 2,
        expected_revenue: 200000,
    }),
    stepGroup(PRIMARY, {
        lead_count: 80,
        passed_count: 40,
        lost_count: 30,
        open_count: 10,
        stuck_count: 4,
        won_count: 0,
        conversion_rate: 50,
        win_rate: 12.5,
        duration_days: 6,
        duration_median_days: 5.5,
        expected_revenue: 194000,
    }),
    stepGroup(PROPOSAL, {
        lead_count: 40,
        passed_count: 12,
        lost_count: 20,
        open_count: 8,
        won_count: 0,
        conversion_rate: 30,
        win_rate: 25,
        duration_days: 9.25,
        duration_median_days: 7.5,
        expected_revenue: 144500,
    }),
    stepGroup(WON, {
        lead_count: 12,
        passed_count: 2,
        lost_count: 0,
        open_count: 0,
        won_count: 10,
        conversion_rate: 100 / 6,
        win_rate: 100,
        duration_days: 1,
        duration_median_days: 1,
        expected_revenue: 84500,
    }),
    // the last step: no conversion, no days
    stepGroup(PAID, {
        lead_count: 2,
        passed_count: 0,
        lost_count: 0,
        open_count: 0,
        won_count: 2,
        win_rate: 100,
        expected_revenue: 20000,
    }),
];

function outcome(step, state, reason, count, revenue) {
    return {
        step_id: step,
        state,
        lost_reason_id: reason,
        __count: count,
        lead_count: count,
        expected_revenue: revenue,
    };
}

const OUTCOMES = [
    outcome(NEW, "passed", false, 80, 194000),
    outcome(NEW, "lost", SPAM, 10, 1000),
    outcome(NEW, "lost", false, 5, 0),
    outcome(NEW, "open", false, 5, 5000),
    outcome(PRIMARY, "passed", false, 40, 144500),
    outcome(PRIMARY, "lost", NOT_CALLED, 14, 14000),
    outcome(PRIMARY, "lost", PRICE, 8, 8000),
    outcome(PRIMARY, "lost", COMPETITOR, 5, 20000),
    outcome(PRIMARY, "lost", SPAM, 2, 1000),
    outcome(PRIMARY, "lost", TIMING, 1, 500),
    outcome(PRIMARY, "open", false, 10, 6000),
    outcome(PROPOSAL, "passed", false, 12, 84500),
    outcome(PROPOSAL, "lost", PRICE, 20, 50000),
    outcome(PROPOSAL, "open", false, 8, 10000),
    outcome(WON, "passed", false, 2, 20000),
    outcome(WON, "won", false, 10, 64500),
    outcome(PAID, "won", false, 2, 20000),
];

/**
 * Answer the view's reads: the step groups, the outcome groups (their group-by
 * ends with state and lost_reason_id), and the comparison period's steps (read
 * on the second domain). Every read is recorded.
 */
function mockFunnel({steps = STEPS, outcomes = OUTCOMES, previous = null} = {}) {
    const reads = [];
    onRpc("get_update_notice", () => false);
    onRpc("sales.funnel.report", "web_read_group", ({kwargs}) => {
        reads.push(kwargs);
        let groups;
        if (kwargs.groupby.includes("lost_reason_id")) {
            groups = outcomes;
        } else if (previous && JSON.stringify(kwargs.domain).includes("previous")) {
            groups = previous;
        } else {
            groups = steps;
        }
        return {groups, length: groups.length};
    });
    return reads;
}

function stepTexts(selector) {
    return queryAll(".o_funnel_step").map((step) => {
        const el = step.querySelector(selector);
        return el ? el.textContent.replace(/\s+/g, " ").trim() : null;
    });
}

function widths() {
    return queryAll(".o_funnel_bar").map((bar) => bar.style.width);
}

test("bands in pipeline order, widths, numbers, conversion and drop-off", async () => {
    const reads = mockFunnel();
    await mountView({type: "funnel", resModel: "sales.funnel.report", arch: ARCH});

    expect(queryAllTexts(".o_funnel_step_name")).toEqual([
        "New",
        "Primary contact",
        "Proposal",
        "Won",
        "Paid",
    ]);
    expect(queryAllTexts(".o_funnel_band_value")).toEqual([
        "100",
        "80",
        "40",
        "12",
        "2",
    ]);
    expect(widths()).toEqual(["100%", "80%", "40%", "12%", "2%"]);
    // the lost part: its share of the band
    expect(queryAll(".o_funnel_lost").map((el) => el.style.width)).toEqual([
        "15%",
        "37.5%",
        "50%",
    ]);
    expect(stepTexts(".o_funnel_lost_label")).toEqual([
        "Lost 15 (15.0%)",
        "Lost 30 (37.5%)",
        "Lost 20 (50.0%)",
        null,
        null,
    ]);
    expect(stepTexts(".o_funnel_open")).toEqual([
        "Still open 5",
        "Still open 10",
        "Still open 8",
        null,
        null,
    ]);
    expect(stepTexts(".o_funnel_days")).toEqual([
        "2.5 days on average, median 2.0",
        "6.0 days on average, median 5.5",
        "9.3 days on average, median 7.5",
        "1.0 days on average, median 1.0",
        null,
    ]);
    // conversion to the next step and drop-off; none after the last step (Paid)
    expect(stepTexts(".o_funnel_transition")).toEqual([
        "80.0% went on · 20 dropped off",
        "50.0% went on · 40 dropped off",
        "30.0% went on · 28 dropped off",
        "16.7% went on · 10 dropped off",
        null,
    ]);
    // two reads without comparison: steps x measures, steps x outcomes x reasons
    expect(reads.map((kwargs) => kwargs.groupby)).toEqual([
        ["step_id"],
        ["step_id", "state", "lost_reason_id"],
    ]);
    expect(reads.every((kwargs) => kwargs.orderby === "step_id" && !kwargs.lazy)).toBe(
        true
    );
});

test("top three loss reasons with the rest as other", async () => {
    mockFunnel();
    await mountView({type: "funnel", resModel: "sales.funnel.report", arch: ARCH});

    const primary = ".o_funnel_step[data-step-id='2']";
    expect(queryAllTexts(`${primary} .o_funnel_reason`)).toEqual([
        "Not called back in time 14",
        "Price 8",
        "Competitor 5",
        "other 3",
    ]);
    // two reasons: no "other"; a lost deal without reason is named so
    expect(queryAllTexts(".o_funnel_step[data-step-id='1'] .o_funnel_reason")).toEqual([
        "Spam 10",
        "No reason given 5",
    ]);
});

test("biggest leak, slowest step and the sentence under the funnel", async () => {
    mockFunnel();
    await mountView({type: "funnel", resModel: "sales.funnel.report", arch: ARCH});

    expect(".o_funnel_leak .o_funnel_step_name").toHaveText("Primary contact");
    expect(".o_funnel_badge_leak").toHaveCount(1);
    expect(".o_funnel_slowest .o_funnel_step_name").toHaveText("Proposal");
    expect(".o_funnel_badge_slowest").toHaveCount(1);
    expect(".o_funnel_summary").toHaveText(
        "Most deals are lost at Primary contact (30 of 80, mostly “Not called back in time”). " +
            "Proposal takes longest (median 7.5 days)."
    );
});

test("expected revenue: widths, lost part, reasons and leak in revenue", async () => {
    const reads = mockFunnel();
    await mountView({type: "funnel", resModel: "sales.funnel.report", arch: ARCH});
    expect(".o_funnel_measure.active").toHaveText("Deals");

    await contains(".o_funnel_measure[data-measure='expected_revenue']").click();
    expect(".o_funnel_measure.active").toHaveText("Expected Revenue");
    expect(queryAllTexts(".o_funnel_band_value")).toEqual([
        "200k",
        "194k",
        "144.5k",
        "84.5k",
        "20k",
    ]);
    expect(widths()).toEqual(["100%", "97%", "72.25%", "42.25%", "10%"]);
    expect(queryAllTexts(".o_funnel_step[data-step-id='2'] .o_funnel_reason")).toEqual([
        "Competitor 20k",
        "Not called back in time 14k",
        "Price 8k",
        "other 1.5k",
    ]);
    expect(".o_funnel_leak .o_funnel_step_name").toHaveText("Proposal");
    expect(".o_funnel_summary").toHaveText(
        "Most expected revenue is lost at Proposal (50k of 144.5k, mostly “Price”). " +
            "Proposal takes longest (median 7.5 days)."
    );
    // switching reads nothing more
    expect(reads).toHaveLength(2);
});

test("comparison: third read on the previous period, changes with good and bad", async () => {
    const previousSteps = [
        stepGroup(NEW, {
            lead_count: 100,
            passed_count: 80,
            lost_count: 15,
            open_count: 5,
            won_count: 0,
            conversion_rate: 80,
            duration_median_days: 2,
            expected_revenue: 150000,
        }),
        stepGroup(PRIMARY, {
            lead_count: 70,
            passed_count: 42,
            lost_count: 20,
            open_count: 8,
            won_count: 0,
            conversion_rate: 60,
            duration_median_days: 4,
            expected_revenue: 100000,
        }),
    ];
    const reads = mockFunnel({previous: previousSteps});
    await mountView({
        type: "funnel",
        resModel: "sales.funnel.report",
        arch: ARCH,
        comparison: {
            domains: [
                {arrayRepr: [["create_date", ">=", "current"]], description: "2025"},
                {arrayRepr: [["create_date", ">=", "previous"]], description: "2024"},
            ],
            fieldName: "create_date",
        },
    });

    expect(reads.map((kwargs) => kwargs.domain)).toEqual([
        [["create_date", ">=", "current"]],
        [["create_date", ">=", "current"]],
        [["create_date", ">=", "previous"]],
    ]);
    expect(".o_funnel_comparison_legend").toHaveText("2025 vs 2024");
    const primary = ".o_funnel_step[data-step-id='2'] .o_funnel_delta";
    expect(queryAllTexts(primary)).toEqual([
        "Reached +10 (better)",
        "Lost +10 (worse)",
        "Conversion −10.0 pp (worse)",
        "Median days +1.5 days (worse)",
    ]);
    expect(
        queryAll(primary).map((el) => el.className.match(/o_funnel_(good|bad|same)/)[1])
    ).toEqual(["good", "bad", "bad", "bad"]);
    expect(queryAllTexts(".o_funnel_step[data-step-id='1'] .o_funnel_delta")).toEqual([
        "Reached ±0 (no change)",
        "Lost ±0 (no change)",
        "Conversion ±0.0 pp (no change)",
        "Median days ±0.0 days (no change)",
    ]);
    // Paid was not reached in the previous period: all new
    expect(queryAllTexts(".o_funnel_step[data-step-id='7'] .o_funnel_delta")).toEqual([
        "Reached +2 (better)",
        "Lost ±0 (no change)",
    ]);
});

test("a step nobody reached in this period, reached in the previous one", async () => {
    const previousSteps = [
        stepGroup(NEW, {
            lead_count: 3,
            passed_count: 1,
            lost_count: 1,
            open_count: 1,
            won_count: 0,
            conversion_rate: 100 / 3,
            expected_revenue: 300,
        }),
        stepGroup(PRIMARY, {
            lead_count: 1,
            passed_count: 0,
            lost_count: 0,
            open_count: 1,
            won_count: 0,
            conversion_rate: 0,
            expected_revenue: 100,
        }),
    ];
    mockFunnel({
        steps: [STEPS[0]].map((group) => ({...group})),
        outcomes: OUTCOMES.filter((group) => group.step_id === NEW),
        previous: previousSteps,
    });
    await mountView({
        type: "funnel",
        resModel: "sales.funnel.report",
        arch: ARCH,
        comparison: {
            domains: [
                {
                    arrayRepr: [["create_date", ">=", "current"]],
                    description: "This month",
                },
                {
                    arrayRepr: [["create_date", ">=", "previous"]],
                    description: "Last month",
                },
            ],
            fieldName: "create_date",
        },
    });
    expect(queryAllTexts(".o_funnel_step_name")).toEqual(["New", "Primary contact"]);
    expect(".o_funnel_step[data-step-id='2'] .o_funnel_band").toHaveCount(0);
    expect(".o_funnel_step[data-step-id='2'] .o_funnel_nobody").toHaveText(
        "0 · Nobody reached this step"
    );
    expect(queryAllTexts(".o_funnel_step[data-step-id='2'] .o_funnel_delta")).toEqual([
        "Reached −1 (worse)",
        "Lost ±0 (no change)",
    ]);
});

test("one deal: one band, full width, nothing lost", async () => {
    mockFunnel({
        steps: [
            stepGroup(NEW, {
                lead_count: 1,
                passed_count: 0,
                lost_count: 0,
                open_count: 1,
                won_count: 0,
                conversion_rate: 0,
                win_rate: 0,
                expected_revenue: 0,
            }),
        ],
        outcomes: [outcome(NEW, "open", false, 1, 0)],
    });
    await mountView({type: "funnel", resModel: "sales.funnel.report", arch: ARCH});
    expect(queryAllTexts(".o_funnel_band_value")).toEqual(["1"]);
    expect(widths()).toEqual(["100%"]);
    expect(".o_funnel_lost").toHaveCount(0);
    expect(".o_funnel_open").toHaveText("Still open 1");
    expect(".o_funnel_transition").toHaveCount(0);
    expect(".o_funnel_summary").toHaveText("No deal was lost.");
});

test("no data: the empty message, no funnel", async () => {
    mockFunnel({steps: [], outcomes: []});
    await mountView({type: "funnel", resModel: "sales.funnel.report", arch: ARCH});
    expect(".o_funnel_step").toHaveCount(0);
    expect(".o_funnel_empty").toHaveCount(1);
});

test("grouped by team: one funnel per team on the same scale", async () => {
    const teamA = [1, "Team A"];
    const teamB = [2, "Team B"];
    const withTeam = (team, group) => ({
        ...group,
        team_id: team,
        __domain: ["&", ["team_id", "=", team[0]], ...group.__domain],
    });
    const reads = mockFunnel({
        steps: [
            withTeam(teamA, STEPS[0]),
            withTeam(teamB, {
                ...STEPS[0],
                lead_count: 50,
                passed_count: 30,
                lost_count: 15,
                open_count: 5,
            }),
            withTeam(teamA, STEPS[1]),
            withTeam(teamB, {
                ...STEPS[1],
                lead_count: 30,
                passed_count: 0,
                lost_count: 30,
                open_count: 0,
            }),
        ],
        outcomes: [],
    });
    await mountView({
        type: "funnel",
        resModel: "sales.funnel.report",
        arch: ARCH,
        groupBy: ["team_id"],
    });
    expect(reads.map((kwargs) => kwargs.groupby)).toEqual([
        ["team_id", "step_id"],
        ["team_id", "step_id", "state", "lost_reason_id"],
    ]);
    expect(queryAllTexts(".o_funnel_pipeline_title")).toEqual(["Team A", "Team B"]);
    expect(widths()).toEqual(["100%", "80%", "50%", "30%"]);
    expect(queryAllTexts(".o_funnel_summary")).toEqual([
        "Most deals are lost at Primary contact (30 of 80). Primary contact takes longest (median 5.5 days).",
        "Most deals are lost at Primary contact (30 of 30). Primary contact takes longest (median 5.5 days).",
    ]);
});

test("stuck deals: counted next to the open ones, and opened", async () => {
    mockFunnel();
    const actions = [];
    mockService("action", {
        doAction(action) {
            actions.push(action);
        },
    });
    await mountView({type: "funnel", resModel: "sales.funnel.report", arch: ARCH});
    expect(queryAllTexts(".o_funnel_stuck")).toEqual(["4 stuck"]);
    // the deals won where they stand: not a drop-off
    expect(queryAllTexts(".o_funnel_won")).toEqual(["Won 10", "Won 2"]);
    await contains(".o_funnel_step[data-step-id='2'] .o_funnel_stuck").click();
    expect(actions.map((action) => [action.name, action.domain])).toEqual([
        [
            "Primary contact · Stuck Deals",
            [
                [
                    "funnel_report_ids",
                    "any",
                    [
                        "&",
                        ["step_id", "=", 2],
                        "&",
                        ["state", "=", "open"],
                        ["lead_id.is_stuck", "=", true],
                    ],
                ],
            ],
        ],
    ]);
});

test("drill-down: band, lost part, reason, other and still open open the deals", async () => {
    mockFunnel();
    const actions = [];
    mockService("action", {
        doAction(action) {
            actions.push(action);
        },
    });
    await mountView({type: "funnel", resModel: "sales.funnel.report", arch: ARCH});
    const primary = ".o_funnel_step[data-step-id='2']";
    await contains(`${primary} .o_funnel_band`).click();
    await contains(`${primary} .o_funnel_lost`).click();
    await contains(`${primary} .o_funnel_reason[data-reason-id='13']`).click();
    await contains(`${primary} .o_funnel_reason_other`).click();
    await contains(`${primary} .o_funnel_open`).click();

    const step = ["step_id", "=", 2];
    expect(actions.map((action) => [action.name, action.domain])).toEqual([
        ["Primary contact · Reached", [["funnel_report_ids", "any", [step]]]],
        [
            "Primary contact · Lost",
            [["funnel_report_ids", "any", ["&", step, ["state", "=", "lost"]]]],
        ],
        [
            "Primary contact · Lost · Price",
            [
                [
                    "funnel_report_ids",
                    "any",
                    [
                        "&",
                        step,
                        "&",
                        ["state", "=", "lost"],
                        ["lost_reason_id", "=", 13],
                    ],
                ],
            ],
        ],
        [
            "Primary contact · Lost · Other reasons",
            [
                [
                    "funnel_report_ids",
                    "any",
                    [
                        "&",
                        step,
                        "&",
                        ["state", "=", "lost"],
                        ["lost_reason_id", "not in", [12, 13, 14]],
                    ],
                ],
            ],
        ],
        [
            "Primary contact · Still open",
            [["funnel_report_ids", "any", ["&", step, ["state", "=", "open"]]]],
        ],
    ]);
    expect(actions[0]).toEqual({
        type: "ir.actions.act_window",
        name: "Primary contact · Reached",
        res_model: "crm.lead",
        views: [
            [false, "list"],
            [false, "kanban"],
            [false, "form"],
        ],
        domain: [["funnel_report_ids", "any", [step]]],
        context: {active_test: false},
        target: "current",
    });
});

test("keyboard: every clickable part is a button", async () => {
    mockFunnel();
    await mountView({type: "funnel", resModel: "sales.funnel.report", arch: ARCH});
    const clickable = queryAll(
        ".o_funnel_band, .o_funnel_lost, .o_funnel_reason, .o_funnel_lost_label, .o_funnel_open," +
            " .o_funnel_stuck, .o_funnel_won"
    );
    // bands, lost parts, reasons, lost labels, open, stuck (Primary contact), won (Won, Paid)
    expect(clickable).toHaveLength(5 + 3 + 7 + 3 + 3 + 1 + 2);
    expect(clickable.every((el) => el.tagName === "BUTTON")).toBe(true);
    expect(queryOne(".o_funnel_step[data-step-id='2'] .o_funnel_lost").ariaLabel).toBe(
        "Lost 30 (37.5%)"
    );
});
