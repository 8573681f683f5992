"""Pure parts of interrogation: substream choice, failure classification, and the credential budget."""

from __future__ import annotations

import zeep.exceptions

from agent.discovery.policy import AuthBudget, choose_substream, classify_fault
from agent.discovery.results import FailureReason, Profile

MAIN = Profile("main", "main", 1920, 1080, "H265")
SUB = Profile("sub", "sub", 640, 360, "H264")
TINY = Profile("tiny", "tiny", 176, 144, "H264")
SUB_JPEG = Profile("subj", "subj", 640, 360, "JPEG")


def test_substream_smallest_at_least_min_width() -> None:
    """The smallest profile at least 320 px wide wins; too-small ones are skipped."""
    assert choose_substream([MAIN, TINY, SUB], 320) == SUB


def test_substream_tie_prefers_h264() -> None:
    """Between two profiles of the same width, H.264 wins (cheapest to decode)."""
    assert choose_substream([SUB_JPEG, SUB], 320) == SUB


def test_substream_configurable_width_and_token() -> None:
    """A higher minimum picks the main stream; a forced token wins over everything."""
    assert choose_substream([MAIN, SUB], 800) == MAIN
    assert choose_substream([MAIN, SUB], 320, token="main") == MAIN


def test_substream_all_too_small_takes_largest() -> None:
    """When every profile is below the minimum, the largest is better than nothing."""
    assert choose_substream([TINY, Profile("t2", None, 240, 180, "H264")], 320).token == "t2"
    assert choose_substream([], 320) is None


def test_classify_auth_fault_and_clock_fault() -> None:
    """NotAuthorized is auth failed; an expired WS-Security message is clock skew; others are unsupported."""
    auth = zeep.exceptions.Fault("Sender not Authorized", subcodes=["ter:NotAuthorized"])
    expired = zeep.exceptions.Fault("The message has expired", code="wsse:MessageExpired")
    other = zeep.exceptions.Fault("Action not supported", subcodes=["ter:ActionNotSupported"])
    assert classify_fault(auth) is FailureReason.AUTH_FAILED
    assert classify_fault(expired) is FailureReason.CLOCK_SKEW
    assert classify_fault(other) is FailureReason.UNSUPPORTED
    assert classify_fault(TimeoutError()) is FailureReason.TIMEOUT
    assert classify_fault(ConnectionRefusedError()) is FailureReason.NO_ONVIF_ANSWER
    assert classify_fault(zeep.exceptions.TransportError("x", status_code=401)) is FailureReason.AUTH_FAILED


def test_auth_budget_three_per_ten_minutes() -> None:
    """Three attempts pass, the fourth is refused until the first is ten minutes old; success clears."""
    budget = AuthBudget(3, 600.0)
    assert [budget.take("cam", now=t) for t in (0.0, 1.0, 2.0, 3.0)] == [True, True, True, False]
    assert budget.retry_after_s("cam", now=3.0) == 597.0
    assert budget.take("cam", now=600.5) is True
    assert budget.take("other", now=3.0) is True
    budget.succeeded("cam")
    assert budget.remaining("cam", now=601.0) == 3
