"""The service layer: one function per catalog operation, grouped by area.

The CLI, Prefect flows, notebooks and the Streamlit app call these and nothing below them.
"""

from .addm import *  # noqa: F401,F403
from .ash import *  # noqa: F401,F403
from .backup import *  # noqa: F401,F403
from .demo import *  # noqa: F401,F403
from .performance import *  # noqa: F401,F403
from .reports import *  # noqa: F401,F403
from .snapshots import *  # noqa: F401,F403
from .system import *  # noqa: F401,F403
from .targets import *  # noqa: F401,F403
from .workload import *  # noqa: F401,F403
