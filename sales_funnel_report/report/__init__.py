from . import sales_funnel_fact
from . import sales_funnel_fact_rows
from . import sales_funnel_milestone
from . import sales_funnel_report
from . import sales_funnel_report_actions
from . import sales_funnel_report_measures
