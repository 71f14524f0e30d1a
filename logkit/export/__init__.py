"""OTLP export of logkit's own data: an output beside the router, fed by the pipeline.

``[export] otlp = "http://HOST:4318"`` adds :class:`~logkit.export.otlp.OtlpExporter` to the
pipeline's outputs: the run timeline leaves as OTLP traces (flows, steps, tool and model calls
as spans, with the ids the events carry) and, with ``signals = ["traces", "logs"]``, every event
as an OTLP log record. It sees events only after the redaction gate, like the stores, and is
never called from ``sinks/``. ``logkit export otlp --run R`` re-sends a stored run
(:func:`~logkit.export.otlp.send_events`). Needs the ``otlp`` extra (the OpenTelemetry SDK and
OTLP/HTTP exporter); ``import logkit`` never loads it.
"""
