"""Severity and the recommendation: fix forward when the cause is attributed, roll back when the failure
is severe and the cause is unclear."""

from __future__ import annotations

from dataclasses import dataclass

from tracemend.records import Decision, Finding, TriageAction

_CRASH_KINDS = (
    "ImportError",
    "ModuleNotFoundError",
    "SyntaxError",
    "NameError",
    "AttributeError",
    "TypeError",
    "KeyError",
    "IndentationError",
    "RecursionError",
    "MemoryError",
)


@dataclass(frozen=True)
class Severity:
    failing_share: float
    crash: bool
    high: bool
    # A failure that raised nothing: the share is of the traces judged, failing a rule (or feedback).
    judged: bool = False

    def describe(self) -> str:
        level = "high" if self.high else "moderate"
        if self.judged:
            return f"{self.failing_share:.1%} of the traces judged failing the rule ({level} severity)"
        kind = "a crash-type error" if self.crash else "an error"
        return f"{self.failing_share:.1%} of traffic failing with {kind} ({level} severity)"


def severity_of(finding: Finding) -> Severity:
    share = finding.window_count / finding.window_exposure if finding.window_exposure else 0.0
    crash = any(t.rsplit(".", 1)[-1] in _CRASH_KINDS for t in finding.signature.exception_types)
    high = share >= 0.10 or (crash and share >= 0.03)
    judged = finding.exposure == "judged" or finding.signature.kind in ("judged_failure", "negative_feedback")
    return Severity(failing_share=share, crash=crash, high=high, judged=judged)


ROLL_BACK_BELOW = 0.6


def recommend(
    verdict_decision: Decision,
    confidence: float,
    caused: bool,
    severity: Severity,
    revert_cmd: str,
    signature_id: str,
) -> tuple[TriageAction, str, str]:
    """(action, recommendation text, the command to run next)."""
    diagnose_cmd = f"tracemend diagnose --signature {signature_id}"
    if not caused:
        return (
            "none",
            "The change is not the cause: look at inputs, upstream services or config outside the repository; "
            "the diagnosing agent can read the traces.",
            diagnose_cmd,
        )
    if verdict_decision == "roll_back" or (severity.high and confidence < ROLL_BACK_BELOW):
        why = (
            "the model recommends it"
            if verdict_decision == "roll_back"
            else f"severity is high ({severity.describe()}) and the cause is not attributed with confidence "
            f"({confidence:.0%} < {ROLL_BACK_BELOW:.0%})"
        )
        return "roll_back", f"Roll back: {why}. Then diagnose at leisure.", revert_cmd
    if verdict_decision == "ignore":
        return "none", "Keep the change: the failure is judged unrelated to it.", diagnose_cmd
    return (
        "fix_forward",
        f"Fix forward: the cause is attributed to the change with {confidence:.0%} confidence "
        f"({severity.describe()}).",
        diagnose_cmd,
    )
