from django.apps import AppConfig


class DriftConfig(AppConfig):
    name = "drift"
    verbose_name = "Drift monitoring"

    def ready(self) -> None:
        from drift import checks  # noqa: F401 - registers the webhook settings check
        from drift.metrics import collector_register

        collector_register()
