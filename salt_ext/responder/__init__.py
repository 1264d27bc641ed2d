"""The responder: Salt step results → a structured answer (spec §2.3 step 5, §3.2.1 stage 5).

``respond(question, intent, results, inventory=...)`` applies template rules
to the real return shapes of the Salt functions the planner uses and returns
a :class:`Response` (summary, findings with evidence, recommendations,
suggested write actions that still need approval, follow-up questions and
the minions that did not answer).  It is pure: no Salt call, no I/O.
"""

from salt_ext.responder.model import Derivation, Evidence, Finding, Response, SuggestedAction
from salt_ext.responder.numbers import fmt_num, numbers_in
from salt_ext.responder.provenance import check_evidence, unsupported_numbers
from salt_ext.responder.compose import respond
from salt_ext.responder.thresholds import DEFAULT_THRESHOLDS, Thresholds

__all__ = [
    "DEFAULT_THRESHOLDS",
    "Derivation",
    "Evidence",
    "Finding",
    "Response",
    "SuggestedAction",
    "Thresholds",
    "check_evidence",
    "fmt_num",
    "numbers_in",
    "respond",
    "unsupported_numbers",
]
