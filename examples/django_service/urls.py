"""The example's URLconf: the two views and leakscope's endpoints."""

import views
from django.urls import include, path

urlpatterns = [
    path("leaky/items/<int:item_id>", views.item, name="leaky-item"),
    path("clean/items/<int:item_id>", views.clean_item, name="clean-item"),
    path("_leakscope/", include("leakscope.django.urls")),
]
