import {Component, onWillStart, onWillUnmount, useState} from "@odoo/owl";
import {useService} from "@web/core/utils/hooks";

// How often the notice asks again while the funnel is being updated.
const POLL_MS = 5000;

/**
 * Says that the funnel is being updated in the background after a pipeline
 * change or a rebuild, with its progress; when the update ends, the view
 * reloads so that its numbers are the new ones.
 */
export class FunnelUpdateNotice extends Component {
    static template = "sales_funnel_report.FunnelUpdateNotice";
    static props = {};

    setup() {
        this.orm = useService("orm");
        this.state = useState({notice: false});
        onWillStart(() => this.refresh());
        onWillUnmount(() => clearTimeout(this.timer));
    }

    async refresh() {
        const wasPending = Boolean(this.state.notice);
        const notice = await this.orm.call(
            "sales.funnel.report",
            "get_update_notice",
            []
        );
        this.state.notice = notice;
        if (notice) {
            this.timer = setTimeout(() => this.refresh(), POLL_MS);
        } else if (wasPending) {
            this.env.searchModel.search();
        }
    }
}
