# first: the stays (here) and the funnel rows (report/) inherit its mixin
from . import sales_funnel_queue
from . import account_move
from . import crm_lead
from . import crm_lead_stage_history
from . import crm_stage
from . import crm_team
from . import ir_actions
from . import ir_module_module
from . import ir_ui_view
from . import mail_message
from . import res_config_settings
from . import sale_order
from . import sale_order_line
from . import sales_funnel_job
from . import sales_funnel_rebuild
from . import sales_funnel_step
