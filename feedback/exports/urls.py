from django.urls import path

from . import views

urlpatterns = [
    path("manage/exports/", views.manage_exports, name="manage-exports"),
    path("manage/exports/<int:pk>/download/", views.export_download, name="manage-export-download"),
]
