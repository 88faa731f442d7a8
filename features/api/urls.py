from django.urls import path

from features.api import views

urlpatterns = [
    path("bars", views.BarListIngestView.as_view(), name="market-bars"),
    path("symbols", views.MarketSymbolListView.as_view(), name="market-symbols"),
]
