"""``facesearch serve``: a REST API under ``/api/v1`` and a web page over one gallery.

FastAPI on uvicorn, laid out as FastAPI's "Bigger Applications": ``app.create_app`` wires an
``APIRouter`` per resource (``routers/``), auth as a dependency (``auth``), one handler that maps
the library's errors to status codes (``errors``), response models built from the library's
``to_dict`` (``schemas``), and the page as static files (``static/``). The server holds no
recognition logic: every answer comes from ``FaceSearch``; ``batching`` only groups concurrent
identify requests into one ``FaceSearch.identify_batch`` call.

Needs the ``server`` extra (``pip install 'facesearch[server]'``); ``facesearch`` itself does not
import this package.
"""

from .app import create_app
from .settings import Settings

__all__ = ["create_app", "Settings"]
