{
    "name": "Sales Funnel Report",
    "summary": "Where and why deals are lost, and how long each stage takes",
    "version": "18.0.1.0.0",
    "category": "Sales/CRM",
    "license": "LGPL-3",
    "author": "Sales Funnel Report contributors",
    "website": "https://github.com/sales-funnel-report/sales_funnel_report",
    "depends": ["sale_crm", "sale_management"],
    "data": [],
    "installable": True,
    "application": False,
}
