"""The planning pipeline: a question in, a checked plan out (nothing is executed).

Stages, one module each, each a plain function:

- ``normalize``  normalise + spelling correction       (normalize.py)
- ``extract_entities``  servers, groups, topics, objects (entities.py)
- ``merge_followup``  context from the conversation      (context.py)
- ``classify_intent``  the spec's eight intents          (intent.py)
- ``resolve_targets``  names -> minion ids (SRV001 ...)  (targets.py)
- ``build_steps``  steps from the module registry       (planner.py)
- ``check_plan``  the policy, for any plan               (policy.py)

``plan_question`` (offline.py) chains them.
"""

from salt_ext.pipeline.model import Entities, IntentResult, Normalized, PlanResult, PlanStep, TargetResolution
from salt_ext.pipeline.offline import plan_question
from salt_ext.pipeline.policy import check_plan

__all__ = [
    "Entities",
    "IntentResult",
    "Normalized",
    "PlanResult",
    "PlanStep",
    "TargetResolution",
    "check_plan",
    "plan_question",
]
