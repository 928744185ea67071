"""Serve a trained run over HTTP: ``glassnet serve RUN`` or ``glassnet.serve.serve(run)``.

``create_app(run, **settings)`` builds the FastAPI application (for tests and other ASGI servers);
``serve`` runs it with uvicorn. Requests that arrive together share one forward pass
(``MicroBatcher``). FastAPI, uvicorn, python-multipart and prometheus-client are the ``serve``
extra: ``pip install 'glassnet[serve]'``.
"""

from __future__ import annotations

from glassnet.serve.app import ServeSettings, create_app, serve
from glassnet.serve.batching import MicroBatcher

__all__ = ["MicroBatcher", "ServeSettings", "create_app", "serve"]
