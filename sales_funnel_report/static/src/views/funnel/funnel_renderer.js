import {Component} from "@odoo/owl";
import {localization} from "@web/core/l10n/localization";
import {_t} from "@web/core/l10n/translation";
import {useService} from "@web/core/utils/hooks";
import {formatFloat, formatInteger} from "@web/views/fields/formatters";

/** Revenue in short: 144.5k, 200k (no ".0"), 500. */
export function formatCompact(value) {
    const text = formatFloat(value, {humanReadable: true, decimals: 1});
    const zero = `${localization.decimalPoint}0`;
    const at = text.lastIndexOf(zero);
    if (at >= 0 && !/\d/.test(text.slice(at + zero.length))) {
        return text.slice(0, at) + text.slice(at + zero.length);
    }
    return text;
}

// Below this share of the widest band, a band's number sits beside it.
const NARROW_BAND = 12;

/**
 * Draws one funnel per pipeline, side by side on the same scale: a band per
 * step (its width the deals or revenue that reached it), the lost part, the
 * loss reasons, the open deals, the days, the conversion to the next step, the
 * biggest leak and the slowest step, and the change against the comparison
 * period. Every number that stands for deals opens them.
 */
export class FunnelRenderer extends Component {
    static template = "sales_funnel_report.FunnelRenderer";
    static props = {model: Object};

    setup() {
        this.actionService = useService("action");
    }

    get funnels() {
        return this.props.model.getFunnels();
    }

    get isRevenue() {
        return this.props.model.metaData.measure === "expected_revenue";
    }

    get comparison() {
        const {data, metaData} = this.props.model;
        if (!data.hasComparison) {
            return null;
        }
        return {
            text: _t("%(current)s vs %(previous)s", {
                current: metaData.domains[0].description,
                previous: metaData.domains[1].description,
            }),
        };
    }

    isNarrow(band) {
        return band.width < NARROW_BAND;
    }

    // --- formatting -----------------------------------------------------------

    formatValue(value) {
        if (this.isRevenue) {
            return formatCompact(value);
        }
        return formatInteger(value);
    }

    formatPercent(value) {
        return value === null ? "" : `${formatFloat(value, {digits: [16, 1]})}%`;
    }

    formatDays(value) {
        return value === null ? "" : formatFloat(value, {digits: [16, 1]});
    }

    reachedLabel(band) {
        return this.isRevenue
            ? _t("%(value)s expected revenue reached %(step)s", {
                  value: this.formatValue(band.reached),
                  step: band.step.name,
              })
            : _t("%(value)s deals reached %(step)s", {
                  value: this.formatValue(band.reached),
                  step: band.step.name,
              });
    }

    lostText(band) {
        return _t("Lost %(value)s (%(share)s)", {
            value: this.formatValue(band.lost),
            share: this.formatPercent(band.lostShare),
        });
    }

    openText(band) {
        return _t("Still open %(value)s", {value: this.formatValue(band.open)});
    }

    wonText(band) {
        return _t("Won %(count)s", {count: band.won});
    }

    stuckText(band) {
        return _t("%(count)s stuck", {count: band.stuck});
    }

    daysText(band) {
        const {duration_days, duration_median_days} = band.step;
        if (duration_days === null) {
            return "";
        }
        if (duration_median_days === null) {
            return _t("%(average)s days on average", {
                average: this.formatDays(duration_days),
            });
        }
        return _t("%(average)s days on average, median %(median)s", {
            average: this.formatDays(duration_days),
            median: this.formatDays(duration_median_days),
        });
    }

    transitionText(band) {
        return _t("%(conversion)s went on · %(dropOff)s dropped off", {
            conversion: this.formatPercent(band.step.conversion_rate),
            dropOff: this.formatValue(band.dropOff),
        });
    }

    otherText(band) {
        return _t("other %(value)s", {
            value: this.formatValue(band.otherReasons.value),
        });
    }

    /** The sentence under a funnel: where most is lost and why, and the slowest step. */
    summary(funnel) {
        const sentences = [];
        const {leak, slowest} = funnel;
        if (leak) {
            const values = {
                step: leak.step.name,
                lost: this.formatValue(leak.lost),
                reached: this.formatValue(leak.reached),
            };
            const reason = leak.topReasons[0];
            if (reason && reason.id !== false) {
                values.reason = reason.name;
                sentences.push(
                    this.isRevenue
                        ? _t(
                              "Most expected revenue is lost at %(step)s (%(lost)s of %(reached)s, mostly “%(reason)s”).",
                              values
                          )
                        : _t(
                              "Most deals are lost at %(step)s (%(lost)s of %(reached)s, mostly “%(reason)s”).",
                              values
                          )
                );
            } else {
                sentences.push(
                    this.isRevenue
                        ? _t(
                              "Most expected revenue is lost at %(step)s (%(lost)s of %(reached)s).",
                              values
                          )
                        : _t(
                              "Most deals are lost at %(step)s (%(lost)s of %(reached)s).",
                              values
                          )
                );
            }
        } else if (funnel.bands.length) {
            sentences.push(_t("No deal was lost."));
        }
        if (slowest) {
            sentences.push(
                _t("%(step)s takes longest (median %(days)s days).", {
                    step: slowest.step.name,
                    days: this.formatDays(slowest.step.duration_median_days),
                })
            );
        }
        return sentences.join(" ");
    }

    // --- comparison -------------------------------------------------------------

    /**
     * The changes of a band against the comparison period, each with whether it
     * is good or bad for that measure (more reached or conversion is better,
     * more lost or days is worse) and that word in the text.
     */
    deltas(band) {
        const previous = band.step.previous;
        if (!previous) {
            return [];
        }
        const revenue = this.isRevenue;
        const step = band.step;
        const result = [];
        const add = (key, label, current, before, higherIsBetter, format) => {
            if (current === null || before === null) {
                return;
            }
            const diff = current - before;
            const rounded = Math.round(diff * 10) / 10;
            let quality = "same";
            if (rounded !== 0) {
                quality = rounded > 0 === higherIsBetter ? "good" : "bad";
            }
            const sign = rounded > 0 ? "+" : rounded < 0 ? "−" : "±";
            const amount = `${sign}${format(Math.abs(rounded))}`;
            const verdict = {
                good: _t("better"),
                bad: _t("worse"),
                same: _t("no change"),
            }[quality];
            result.push({key, label, amount, quality, verdict});
        };
        add(
            "reached",
            _t("Reached"),
            revenue ? step.expected_revenue : step.lead_count,
            revenue ? previous.expected_revenue : previous.lead_count,
            true,
            (v) => this.formatValue(v)
        );
        add(
            "lost",
            _t("Lost"),
            revenue ? step.lost_revenue : step.lost_count,
            revenue ? null : previous.lost_count,
            false,
            (v) => this.formatValue(v)
        );
        add(
            "conversion",
            _t("Conversion"),
            step.conversion_rate,
            previous.conversion_rate,
            true,
            (v) => _t("%(value)s pp", {value: formatFloat(v, {digits: [16, 1]})})
        );
        add(
            "days",
            _t("Median days"),
            step.duration_median_days,
            previous.duration_median_days,
            false,
            (v) => _t("%(value)s days", {value: formatFloat(v, {digits: [16, 1]})})
        );
        return result;
    }

    // --- drill-down -------------------------------------------------------------

    /**
     * Open the deals behind a part of a band: all that reached the step, the
     * lost ones, those lost for a reason, or the open ones. Lost deals are
     * archived: the list shows archived deals too.
     */
    openDeals(band, part = {}) {
        const model = this.props.model;
        const step = band.step;
        const titles = [step.name];
        if (step.pipelineLabel) {
            titles.unshift(step.pipelineLabel);
        }
        const options = {};
        if (part.state === "lost") {
            titles.push(_t("Lost"));
            options.state = "lost";
            if (part.reason) {
                titles.push(part.reason.name);
                options.reasonId = part.reason.id;
            } else if (part.other) {
                titles.push(_t("Other reasons"));
                options.otherThan = part.other.ids;
            }
        } else if (part.state === "won") {
            titles.push(_t("Won"));
            options.state = "won";
        } else if (part.state === "open" && part.stuck) {
            titles.push(_t("Stuck Deals"));
            options.state = "open";
            options.stuck = true;
        } else if (part.state === "open") {
            titles.push(_t("Still open"));
            options.state = "open";
        } else {
            titles.push(_t("Reached"));
        }
        const domain = model.getPartDomain(step, options);
        this.actionService.doAction({
            type: "ir.actions.act_window",
            name: titles.join(" · "),
            res_model: "crm.lead",
            views: [
                [false, "list"],
                [false, "kanban"],
                [false, "form"],
            ],
            domain: [["funnel_report_ids", "any", domain]],
            context: {active_test: false},
            target: "current",
        });
    }
}
