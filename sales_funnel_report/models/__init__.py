from . import crm_lead
from . import crm_lead_stage_history
from . import crm_stage
from . import crm_team
from . import res_config_settings
from . import sales_funnel_demo
