from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    # /admin/... belongs to the frontend (e.g. /admin/users/, guide section 8).
    path("django-admin/", admin.site.urls),
    path("api/", include("defects.urls")),
]
