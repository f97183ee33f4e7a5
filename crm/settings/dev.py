"""Local development (`make demo`): debug on, console email, in-process tasks unless a broker is set."""

from crm.settings.base import *  # noqa: F403
from crm.settings.env import env_bool

DEBUG = env_bool("DEBUG", True)
