from django.urls import path

from . import views

urlpatterns = [
    path("health/", views.health, name="health"),
    path("defects/", views.defects, name="defects"),
    path("version/", views.version, name="version"),
]
