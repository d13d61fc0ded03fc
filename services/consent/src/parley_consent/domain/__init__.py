"""Pure consent rules: no I/O, no Kafka, no SQL. Everything here is a function of its inputs."""

from parley_consent.domain.consent_state import ConsentRecord, ConsentState, address_key
from parley_consent.domain.decision import decide, decision_id_for

__all__ = ["ConsentRecord", "ConsentState", "address_key", "decide", "decision_id_for"]
