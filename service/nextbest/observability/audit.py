"""Config changes told to people: a structlog line per audit record, and the rollback count
(changes of a config version are counted where they are installed, by kind)."""

from __future__ import annotations

from dataclasses import asdict

from nextbest.observability.logging import get_logger
from nextbest.observability.metrics import Metrics
from nextbest.policy.control import AuditRecord


class AuditTelemetry:
    """The :class:`~nextbest.policy.control.Told` of a server."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.log = get_logger("nextbest.audit")

    def changed(self, record: AuditRecord) -> None:
        if record.kind == "rollback":  # the model changed, not the config version
            m = self.metrics
            m.child(m.config_changes, record.policy, record.kind).inc()
        fields = asdict(record)
        fields["change"] = fields.pop("kind")
        self.log.info("config_change", **fields)
