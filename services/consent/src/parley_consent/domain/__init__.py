"""Pure consent rules: no I/O, no Kafka, no SQL. Everything here is a function of its inputs."""

from parley_consent.domain.consent_state import ConsentRecord, ConsentState, address_key
from parley_consent.domain.debtor_state import DebtorState, Hold, PastContact
from parley_consent.domain.decision import Decision, Reason, decide, decision_id_for
from parley_consent.domain.rules import RuleSet, default_rule_set

__all__ = [
    "ConsentRecord",
    "ConsentState",
    "DebtorState",
    "Decision",
    "Hold",
    "PastContact",
    "Reason",
    "RuleSet",
    "address_key",
    "decide",
    "decision_id_for",
    "default_rule_set",
]
