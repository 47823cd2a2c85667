import {visitXML} from "@web/core/utils/xml";

/**
 * Reads a <funnel> arch: its title and the measures it offers, in order (the
 * first one is shown first). Only deals (lead_count) and expected revenue are
 * drawn; other fields are ignored.
 */
export class FunnelArchParser {
    parse(arch) {
        const archInfo = {title: null, measures: []};
        visitXML(arch, (node) => {
            if (node.tagName === "funnel") {
                archInfo.title = node.getAttribute("string");
            } else if (
                node.tagName === "field" &&
                node.getAttribute("type") === "measure" &&
                !["1", "True", "true"].includes(node.getAttribute("invisible"))
            ) {
                archInfo.measures.push(node.getAttribute("name"));
            }
        });
        return archInfo;
    }
}
