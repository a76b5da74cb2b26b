"""What operators watch: Prometheus metrics (`metrics`) and OpenTelemetry traces (`tracing`, `attempts`).

Metrics are always counted on the HTTP transports and served at `/metrics`; traces need the `otel` extra
and the standard `OTEL_*` variables. Neither ever carries the API key; labels never carry user text or ids.
"""
