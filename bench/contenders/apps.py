from django.apps import AppConfig


class ContendersConfig(AppConfig):
    name = "bench.contenders"
    label = "bench_contenders"
    verbose_name = "Benchmark contenders"

    def ready(self) -> None:
        from bench.contenders import latency

        latency.install()
