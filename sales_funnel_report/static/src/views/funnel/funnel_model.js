import {_t} from "@web/core/l10n/translation";
import {Domain} from "@web/core/domain";
import {KeepLast} from "@web/core/utils/concurrency";
import {Model} from "@web/model/model";

// What the funnel reads per step, in one read_group: counts, rates and days are
// the report's own measures, computed by the server under its counting rules.
export const STEP_MEASURES = [
    "lead_count:sum",
    "passed_count:sum",
    "lost_count:sum",
    "open_count:sum",
    "stuck_count:sum",
    "won_count:sum",
    "conversion_rate:avg",
    "win_rate:avg",
    "duration_days:avg",
    "duration_median_days:avg",
    "expected_revenue:sum",
];
// Per step, outcome and loss reason: the lost part, the reasons and the revenue
// of each outcome.
export const OUTCOME_MEASURES = ["lead_count:sum", "expected_revenue:sum"];
export const MEASURES = ["lead_count", "expected_revenue"];
export const TOP_REASONS = 3;

/** read_group gives False for an aggregate over no value: null here. */
function valueOrNull(value) {
    return value === false || value === undefined || value === null ? null : value;
}

function groupKey(value) {
    return JSON.stringify(Array.isArray(value) ? value[0] : value);
}

/**
 * The funnel's data: per pipeline (one, or one per value of the first group-by
 * that is not the step), its steps in pipeline order (the report orders step_id
 * by pipeline), with counts, rates, days, loss reasons and the comparison period.
 *
 * At most three RPCs per load: steps x measures, steps x outcomes x loss reasons,
 * and the steps x measures of the comparison period.
 */
export class FunnelModel extends Model {
    setup(params) {
        this.metaData = {...params};
        this.data = null;
        this.keepLast = new KeepLast();
    }

    async load(searchParams) {
        const {comparison, context, domain, groupBy} = searchParams;
        const measure = context.funnel_measure || this.metaData.measure;
        const metaData = {
            ...this.metaData,
            context,
            measure: this.metaData.measures.includes(measure)
                ? measure
                : this.metaData.measures[0] || "lead_count",
            splitBy:
                (groupBy || []).find((gb) => gb.split(":")[0] !== "step_id") || null,
        };
        if (comparison) {
            metaData.domains = comparison.domains.map((d) => ({
                domain: d.arrayRepr,
                description: d.description,
            }));
        } else {
            metaData.domains = [{domain, description: null}];
        }
        const data = await this.keepLast.add(this._fetch(metaData));
        this.metaData = metaData;
        this.data = data;
    }

    hasData() {
        return Boolean(this.data && this.data.pipelines.length);
    }

    /** Deals or expected revenue: no new read, the data holds both. */
    setMeasure(measure) {
        this.metaData = {...this.metaData, measure};
        this.notify();
    }

    async _fetch(metaData) {
        const {resModel} = metaData;
        const groupby = metaData.splitBy ? [metaData.splitBy, "step_id"] : ["step_id"];
        const read = (domain, fields, groupbys) =>
            this.orm
                .webReadGroup(resModel, domain, fields, groupbys, {
                    lazy: false,
                    orderby: "step_id",
                    context: metaData.context,
                })
                .then((result) => result.groups);
        const [current, previous] = metaData.domains;
        const [steps, outcomes, previousSteps] = await Promise.all([
            read(current.domain, STEP_MEASURES, groupby),
            read(current.domain, OUTCOME_MEASURES, [
                ...groupby,
                "state",
                "lost_reason_id",
            ]),
            previous ? read(previous.domain, STEP_MEASURES, groupby) : null,
        ]);
        return this._process(metaData, steps, outcomes, previousSteps);
    }

    _splitLabel(metaData, value) {
        if (Array.isArray(value)) {
            return value[1];
        }
        if (value === false || value === null || value === undefined) {
            return _t("None");
        }
        const field = metaData.fields[metaData.splitBy.split(":")[0]];
        if (field && field.type === "selection") {
            const option = field.selection.find(([key]) => key === value);
            return option ? option[1] : String(value);
        }
        return String(value);
    }

    _process(metaData, steps, outcomes, previousSteps) {
        const pipelines = new Map();
        const pipelineOf = (group) => {
            const value = metaData.splitBy ? group[metaData.splitBy] : null;
            const key = groupKey(value);
            if (!pipelines.has(key)) {
                pipelines.set(key, {
                    key,
                    label: metaData.splitBy ? this._splitLabel(metaData, value) : null,
                    steps: new Map(),
                });
            }
            return pipelines.get(key);
        };
        // Pipeline order of all steps on screen: the report's order of step_id.
        const stepOrder = new Map();
        const emptyStep = (stepValue, pipeline) => ({
            id: stepValue[0],
            name: stepValue[1],
            pipelineLabel: pipeline.label,
            domain: null,
            lead_count: 0,
            passed_count: 0,
            lost_count: 0,
            open_count: 0,
            stuck_count: 0,
            won_count: 0,
            conversion_rate: null,
            win_rate: null,
            duration_days: null,
            duration_median_days: null,
            expected_revenue: 0,
            lost_revenue: 0,
            open_revenue: 0,
            passed_revenue: 0,
            reasons: [],
            previous: null,
        });
        const stepOf = (group, pipeline) => {
            const stepValue = group.step_id;
            if (!stepOrder.has(stepValue[0])) {
                stepOrder.set(stepValue[0], stepOrder.size);
            }
            if (!pipeline.steps.has(stepValue[0])) {
                pipeline.steps.set(stepValue[0], emptyStep(stepValue, pipeline));
            }
            return pipeline.steps.get(stepValue[0]);
        };
        const readMeasures = (group) => ({
            lead_count: group.lead_count || 0,
            passed_count: group.passed_count || 0,
            lost_count: group.lost_count || 0,
            open_count: group.open_count || 0,
            stuck_count: group.stuck_count || 0,
            won_count: group.won_count || 0,
            conversion_rate: valueOrNull(group.conversion_rate),
            win_rate: valueOrNull(group.win_rate),
            duration_days: valueOrNull(group.duration_days),
            duration_median_days: valueOrNull(group.duration_median_days),
            expected_revenue: group.expected_revenue || 0,
        });
        for (const group of steps) {
            if (!group.step_id) {
                continue;
            }
            const step = stepOf(group, pipelineOf(group));
            Object.assign(step, readMeasures(group));
            step.domain = group.__domain;
        }
        for (const group of outcomes) {
            if (!group.step_id) {
                continue;
            }
            const step = stepOf(group, pipelineOf(group));
            const revenue = group.expected_revenue || 0;
            if (group.state === "lost") {
                step.lost_revenue += revenue;
                const reason = group.lost_reason_id;
                step.reasons.push({
                    id: reason ? reason[0] : false,
                    name: reason ? reason[1] : _t("No reason given"),
                    lead_count: group.lead_count || 0,
                    expected_revenue: revenue,
                });
            } else if (group.state === "open") {
                step.open_revenue += revenue;
            } else if (group.state === "passed") {
                step.passed_revenue += revenue;
            }
        }
        if (previousSteps) {
            for (const group of previousSteps) {
                if (!group.step_id) {
                    continue;
                }
                const step = stepOf(group, pipelineOf(group));
                step.previous = readMeasures(group);
            }
        }
        const result = [];
        for (const pipeline of pipelines.values()) {
            const ordered = [...pipeline.steps.values()].sort(
                (a, b) => stepOrder.get(a.id) - stepOrder.get(b.id)
            );
            if (previousSteps) {
                for (const step of ordered) {
                    step.previous = step.previous || readMeasures({});
                }
            }
            result.push({key: pipeline.key, label: pipeline.label, steps: ordered});
        }
        return {pipelines: result, hasComparison: Boolean(previousSteps)};
    }

    /**
     * The funnel of each pipeline in the current measure: bands, the biggest
     * leak and the slowest step, the loss reasons (top three and "other").
     */
    getFunnels() {
        if (!this.data) {
            return [];
        }
        const revenue = this.metaData.measure === "expected_revenue";
        const reachedOf = (step) => (revenue ? step.expected_revenue : step.lead_count);
        const lostOf = (step) => (revenue ? step.lost_revenue : step.lost_count);
        let scale = 0;
        for (const pipeline of this.data.pipelines) {
            for (const step of pipeline.steps) {
                scale = Math.max(scale, reachedOf(step));
            }
        }
        return this.data.pipelines.map((pipeline) => {
            const bands = pipeline.steps.map((step, index) => {
                const reached = reachedOf(step);
                const lost = lostOf(step);
                const open = revenue ? step.open_revenue : step.open_count;
                const passed = revenue ? step.passed_revenue : step.passed_count;
                const reasons = [...step.reasons].sort(
                    (a, b) =>
                        (revenue
                            ? b.expected_revenue - a.expected_revenue
                            : b.lead_count - a.lead_count) ||
                        b.lead_count - a.lead_count ||
                        String(a.name).localeCompare(String(b.name))
                );
                const top = reasons.slice(0, TOP_REASONS).map((reason) => ({
                    ...reason,
                    value: revenue ? reason.expected_revenue : reason.lead_count,
                }));
                const rest = reasons.slice(TOP_REASONS);
                const other = rest.length
                    ? {
                          ids: top.map((reason) => reason.id),
                          value: rest.reduce(
                              (sum, reason) =>
                                  sum +
                                  (revenue
                                      ? reason.expected_revenue
                                      : reason.lead_count),
                              0
                          ),
                      }
                    : null;
                return {
                    step,
                    index,
                    isLast: index === pipeline.steps.length - 1,
                    reached,
                    lost,
                    open,
                    // a count of deals in both modes: who to call today
                    stuck: step.stuck_count,
                    won: step.won_count,
                    dropOff: reached - passed,
                    lostShare: reached ? (lost / reached) * 100 : null,
                    width: scale ? (reached / scale) * 100 : 0,
                    topReasons: top,
                    otherReasons: other,
                };
            });
            let leak = null;
            let slowest = null;
            for (const band of bands) {
                if (band.lost > 0 && (!leak || band.lost > leak.lost)) {
                    leak = band;
                }
                const median = band.step.duration_median_days;
                if (
                    median !== null &&
                    median > 0 &&
                    (!slowest || median > slowest.step.duration_median_days)
                ) {
                    slowest = band;
                }
            }
            return {
                key: pipeline.key,
                label: pipeline.label,
                bands,
                leak,
                slowest,
            };
        });
    }

    /** The report domain of a part of a band (its deals: the outcome, the reason). */
    getPartDomain(step, {state, reasonId, otherThan, stuck} = {}) {
        const parts = [step.domain || this._stepDomain(step)];
        if (state) {
            parts.push([["state", "=", state]]);
        }
        if (stuck) {
            parts.push([["lead_id.is_stuck", "=", true]]);
        }
        if (reasonId !== undefined) {
            parts.push([["lost_reason_id", "=", reasonId]]);
        }
        if (otherThan) {
            const ids = otherThan.filter((id) => id !== false);
            if (ids.length) {
                parts.push([["lost_reason_id", "not in", ids]]);
            }
            if (otherThan.includes(false)) {
                parts.push([["lost_reason_id", "!=", false]]);
            }
        }
        return Domain.and(parts).toList();
    }

    /** A step without rows in this period (reached in the other one only). */
    _stepDomain(step) {
        return Domain.and([
            this.metaData.domains[0].domain,
            [["step_id", "=", step.id]],
        ]).toList();
    }
}
