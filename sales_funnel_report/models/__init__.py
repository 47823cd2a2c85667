from . import crm_lead
from . import crm_lead_stage_history
from . import crm_stage
from . import res_config_settings
