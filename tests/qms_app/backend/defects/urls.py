from django.urls import path

from . import views

urlpatterns = [
    path("health/", views.health),
    path("version/", views.version),
    path("defects/", views.defect_list),
    path("me/", views.me),
    path("login/", views.login_view),
]
