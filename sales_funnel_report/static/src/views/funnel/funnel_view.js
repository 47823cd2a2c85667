import {_t} from "@web/core/l10n/translation";
import {registry} from "@web/core/registry";
import {FunnelArchParser} from "./funnel_arch_parser";
import {FunnelController} from "./funnel_controller";
import {FunnelModel, MEASURES} from "./funnel_model";
import {FunnelRenderer} from "./funnel_renderer";

/**
 * The funnel view type ("funnel", registered on the Python side as an
 * ir.ui.view type): one funnel per pipeline of sales.funnel.report.
 */
export const funnelView = {
    type: "funnel",
    Controller: FunnelController,
    Renderer: FunnelRenderer,
    Model: FunnelModel,
    ArchParser: FunnelArchParser,
    searchMenuTypes: ["filter", "groupBy", "comparison", "favorite"],

    props: (genericProps, view) => {
        let modelParams;
        if (genericProps.state) {
            modelParams = genericProps.state.metaData;
        } else {
            const {arch, fields, resModel} = genericProps;
            const archInfo = new view.ArchParser().parse(arch);
            const measures = archInfo.measures.filter(
                (name) => MEASURES.includes(name) && name in fields
            );
            modelParams = {
                fields,
                fieldAttrs: {lead_count: {string: _t("Deals")}},
                measures: measures.length ? measures : ["lead_count"],
                measure: measures[0] || "lead_count",
                resModel,
                title: archInfo.title || _t("Funnel"),
            };
        }
        return {
            ...genericProps,
            modelParams,
            Model: view.Model,
            Renderer: view.Renderer,
        };
    },
};

registry.category("views").add("funnel", funnelView);
