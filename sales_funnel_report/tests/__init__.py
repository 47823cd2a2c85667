from . import test_concurrency
from . import test_stage_history
