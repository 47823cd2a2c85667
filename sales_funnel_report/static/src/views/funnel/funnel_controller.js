import {Component, useRef} from "@odoo/owl";
import {useModelWithSampleData} from "@web/model/model";
import {useSetupAction} from "@web/search/action_hook";
import {CogMenu} from "@web/search/cog_menu/cog_menu";
import {Layout} from "@web/search/layout";
import {SearchBar} from "@web/search/search_bar/search_bar";
import {useSearchBarToggler} from "@web/search/search_bar/search_bar_toggler";
import {standardViewProps} from "@web/views/standard_view_props";
import {FunnelUpdateNotice} from "../funnel_update_notice";

export class FunnelController extends Component {
    static template = "sales_funnel_report.FunnelView";
    static components = {Layout, SearchBar, CogMenu, FunnelUpdateNotice};
    static props = {
        ...standardViewProps,
        Model: Function,
        modelParams: Object,
        Renderer: Function,
    };

    setup() {
        this.model = useModelWithSampleData(this.props.Model, this.props.modelParams);
        useSetupAction({
            rootRef: useRef("root"),
            getLocalState: () => ({metaData: this.model.metaData}),
            getContext: () => ({funnel_measure: this.model.metaData.measure}),
        });
        this.searchBarToggler = useSearchBarToggler();
    }

    get measureChoices() {
        const {fields, fieldAttrs, measures} = this.model.metaData;
        return measures.map((name) => ({
            name,
            label: (fieldAttrs[name] && fieldAttrs[name].string) || fields[name].string,
        }));
    }

    onMeasureSelected(measure) {
        this.model.setMeasure(measure);
    }
}
