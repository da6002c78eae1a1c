"""Entry point for ASGI servers run by hand (gunicorn with uvicorn workers, uvicorn --factory).

``gunicorn -k uvicorn.workers.UvicornWorker -w 4 'control_api.asgi:app_from_env()'`` or
``uvicorn --factory control_api.asgi:app_from_env``: each worker loads the settings from
the environment once and builds its application.
"""

from __future__ import annotations

from fastapi import FastAPI

from control_api.app import create_app
from control_api.observability import configure_logging
from driftline.settings import load_settings

__all__ = ["app_from_env"]


def app_from_env() -> FastAPI:
    """The API configured from ``DRIFTLINE_*`` environment variables, with JSON logs."""
    configure_logging()
    return create_app(load_settings())
