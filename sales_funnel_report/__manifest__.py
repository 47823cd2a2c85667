{
    "name": "Sales Funnel Report",
    "summary": "Where and why deals are lost, and how long each stage takes",
    "version": "18.0.1.10.0",
    "category": "Sales/CRM",
    "license": "LGPL-3",
    "author": "Sales Funnel Report contributors",
    "development_status": "Beta",
    # sale_management rather than sale alone: the Sales app menu (sale.sale_menu_root),
    # which holds Sales > Funnel, stays inactive until sale_management activates it.
    "depends": ["sale_crm", "sale_management"],
    "data": [
        "security/ir.model.access.csv",
        "security/sales_funnel_security.xml",
        "data/sales_funnel_step_data.xml",
        "data/ir_cron_data.xml",
        "views/sales_funnel_step_views.xml",
        "views/crm_lead_stage_history_views.xml",
        "views/crm_lead_views.xml",
        "views/crm_lead_stuck_views.xml",
        "views/crm_team_views.xml",
        "views/res_config_settings_views.xml",
        "wizard/crm_lead_lost_views.xml",
        "report/sales_funnel_report_views.xml",
    ],
    "demo": [
        "demo/sales_funnel_demo.xml",
    ],
    "assets": {
        # graph and pivot are lazy-loaded views in Odoo 18: so are their funnel versions
        "web.assets_backend_lazy": [
            "sales_funnel_report/static/src/views/**/*",
        ],
        "web.assets_unit_tests": [
            "sales_funnel_report/static/tests/*.test.js",
        ],
        "web.assets_tests": [
            "sales_funnel_report/static/tests/tours/*.js",
        ],
    },
    "post_init_hook": "post_init_hook",
    "uninstall_hook": "uninstall_hook",
}
