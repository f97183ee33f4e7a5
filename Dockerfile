# Production image: gunicorn serving the app (static files by whitenoise), also used for the
# Celery worker and beat. Build: docker build -t dealership-crm .
# Browser libraries (Chart.js) from the npm registry, pinned by package-lock.json.
FROM node:20-bookworm-slim AS assets
WORKDIR /assets
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts

FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production

RUN apt-get update \
 && apt-get install -y --no-install-recommends gettext postgresql-client \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
COPY --from=assets /assets/node_modules /app/node_modules
# Build-time values only: collectstatic and compilemessages import the settings.
RUN DATABASE_URL=postgres://build@localhost/build REDIS_URL=redis://localhost:6379/0 \
    SECRET_KEY=build-time-only-key-not-used-at-runtime-0123456789abcdef \
    python manage.py compilemessages --ignore=.venv -v 0 \
 && DATABASE_URL=postgres://build@localhost/build REDIS_URL=redis://localhost:6379/0 \
    SECRET_KEY=build-time-only-key-not-used-at-runtime-0123456789abcdef \
    python manage.py collectstatic --noinput -v 0 \
 && useradd --system --uid 10001 --home /app crm && chown -R crm /app/staticfiles
USER crm

EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "60", "--access-logfile", "-"]
