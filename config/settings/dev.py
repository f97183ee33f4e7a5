"""Local development (`make demo`): debug on, console email, in-process tasks unless a broker is set."""

from config.settings.base import *  # noqa: F403
from config.settings.env import env_bool

DEBUG = env_bool("DEBUG", True)
