/**
 * Opens the deals behind a number of the funnel: the report says which deals
 * a measure counts in a group (``get_deals_action``) and names the list after
 * the step and the outcome, e.g. "Primary contact · Lost".
 *
 * @param {Object} env the component's env (services)
 * @param {Object} params
 * @param {Array} params.domain the group's domain on the funnel rows
 * @param {string} [params.measure] the measure clicked
 * @param {Object} [params.context]
 */
export async function openFunnelDeals(env, {domain, measure, context = {}}) {
    const action = await env.services.orm.call(
        "sales.funnel.report",
        "get_deals_action",
        [domain, measure || false],
        {context}
    );
    return env.services.action.doAction(action);
}
