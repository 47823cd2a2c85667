from . import sales_funnel_fact
from . import sales_funnel_report
