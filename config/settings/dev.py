"""Local development and the demo (`make demo`, `make serve`): console email, in-process tasks unless
a broker is set.

Debug pages are off unless asked for (`DEBUG=1 make serve`): a refused or missing page shows the
product's own 403/404/500 pages, as in production, and never Django's list of URL patterns. Static
files are served by WhiteNoise straight from the source folders in both modes (no collectstatic, a
changed file is served at once).
"""

from config.settings.base import *  # noqa: F403
from config.settings.base import STORAGES
from config.settings.env import env_bool

DEBUG = env_bool("DEBUG", False)
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
