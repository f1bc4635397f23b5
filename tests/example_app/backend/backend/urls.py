from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    # Not /admin/: the frontend owns /admin/... pages (e.g. /admin/users).
    path("django-admin/", admin.site.urls),
    path("api/", include("quality.urls")),
]
