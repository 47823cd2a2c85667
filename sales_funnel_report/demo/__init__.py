from . import sales_funnel_demo
