"""ASGI entry point, as the guide's unit runs it: `uvicorn backend.asgi:application` from backend/."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")

application = get_asgi_application()
