from . import test_concurrency
from . import test_demo
from . import test_funnel_report
from . import test_funnel_ui
from . import test_rebuild
from . import test_russian
from . import test_stage_history
