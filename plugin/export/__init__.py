"""Exporters: stored tracemend traces out to OpenTelemetry backends and Opik, and Opik traces in.

Every exporter reads from the :class:`~tracemend.store.Store`, never from the recorder, so export costs
nothing on the traced call's path. The heavy libraries (opentelemetry-sdk, opik) are imported by the
submodules that use them: ``tracemend.export.otel``, ``tracemend.export.opik``,
``tracemend.capture.opik_tap`` and ``tracemend.export.cases``.
"""
