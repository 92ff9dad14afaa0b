"""Endpoint detection with Kaldi's online2 rules (``OnlineEndpointConfig``).

A rule fires when all of its conditions hold (``RuleActivated`` in Kaldi's
``online-endpoint.cc``):

- ``must_contain_nonsilence``: the segment has decoded something other than
  silence (its best path has a non-silence phone);
- the trailing silence (frames at the end of the best path whose phone is a
  silence phone) lasts at least ``min_trailing_silence`` seconds;
- the final relative cost (how much worse the best path that ends in a final
  state of the graph is than the best path at all) is at most
  ``max_relative_cost``;
- the segment lasts at least ``min_utterance_length`` seconds.

Seconds are output frames times the *output* frame shift, i.e. the feature
frame shift times the frame-subsampling factor: counting a 30 ms output frame
as 10 ms makes every rule fire three times too late (kaldi#1184).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from asr.config import check_range, option


@dataclass
class EndpointRule:
    """One endpoint rule (Kaldi's ``OnlineEndpointRule``); a rule in a YAML file gives all four keys.

    The rules' defaults differ (see :class:`EndpointConfig`), so a rule's keys
    have none of their own: half a rule would silently take another's.
    """

    must_contain_nonsilence: bool = option(doc="fire only after something other than silence was decoded")
    min_trailing_silence: float = option(doc="seconds of trailing silence at least")
    max_relative_cost: float | None = option(doc="final relative cost at most this (null: any, Kaldi's inf)")
    min_utterance_length: float = option(doc="seconds of segment at least")

    def check(self, where: str, prefix: str = "") -> None:
        check_range(where, f"{prefix}min_trailing_silence", self.min_trailing_silence >= 0, "a number >= 0",
                    self.min_trailing_silence)
        check_range(where, f"{prefix}min_utterance_length", self.min_utterance_length >= 0, "a number >= 0",
                    self.min_utterance_length)


def _rule(nonsilence: bool, silence: float, cost: float | None, length: float):
    return lambda: EndpointRule(nonsilence, silence, cost, length)


@dataclass
class EndpointConfig:
    """Endpointing of streaming recognition (``asr/conf/endpoint.yaml``; Kaldi's online2 defaults)."""

    rule1: EndpointRule = option(factory=_rule(False, 5.0, None, 0.0),
                                 doc="5 s of silence with nothing decoded")
    rule2: EndpointRule = option(factory=_rule(True, 0.5, 2.0, 0.0),
                                 doc="0.5 s of trailing silence after words, in a good final state")
    rule3: EndpointRule = option(factory=_rule(True, 1.0, 8.0, 0.0),
                                 doc="1 s of trailing silence, in a fairly good final state")
    rule4: EndpointRule = option(factory=_rule(True, 2.0, None, 0.0), doc="2 s of trailing silence")
    rule5: EndpointRule = option(factory=_rule(False, 0.0, None, 20.0),
                                 doc="maximum segment length (it also bounds the search's memory)")
    silence_phones: list[str] | None = option(
        None, "phones that count as silence (null: the lang dir's silence phones)")

    def check(self, where: str, prefix: str = "") -> None:
        # rule5 is the only rule that fires on speech: it must exist to bound memory
        r5 = self.rule5
        check_range(where, f"{prefix}rule5", not r5.must_contain_nonsilence and r5.min_trailing_silence == 0
                    and r5.max_relative_cost is None and 0 < r5.min_utterance_length <= 600,
                    "a maximum segment length: must_contain_nonsilence false, no silence or cost condition, "
                    "min_utterance_length in (0, 600] s", r5)

    def rules(self) -> list[tuple[str, EndpointRule]]:
        return [(f"rule{i}", getattr(self, f"rule{i}")) for i in range(1, 6)]

    def max_segment(self) -> float:
        """Seconds after which a segment always ends (rule5)."""
        return self.rule5.min_utterance_length


def rule_fires(rule: EndpointRule, nonsilence: bool, trailing_silence: float, relative_cost: float,
               length: float) -> bool:
    """Kaldi's ``RuleActivated``: every condition of ``rule`` holds."""
    max_cost = math.inf if rule.max_relative_cost is None else rule.max_relative_cost
    return ((nonsilence or not rule.must_contain_nonsilence)
            and trailing_silence >= rule.min_trailing_silence
            and relative_cost <= max_cost
            and length >= rule.min_utterance_length)


def endpoint_rule(cfg: EndpointConfig, num_frames: int, trailing_silence_frames: int, output_frame_shift: float,
                  relative_cost: float) -> str | None:
    """The first rule that fires (``"rule1"`` ...), or None (Kaldi's ``EndpointDetected``).

    Args:
      cfg: The rules.
      num_frames: Output frames decoded in this segment.
      trailing_silence_frames: Output frames of trailing silence on the best path.
      output_frame_shift: Seconds per *output* frame (feature shift x subsampling).
      relative_cost: Final relative cost (``math.inf`` when no final state is reachable).
    """
    if not 0 <= trailing_silence_frames <= num_frames:
        raise ValueError(f"trailing silence {trailing_silence_frames} not in 0..{num_frames} frames")
    length = num_frames * output_frame_shift
    silence = trailing_silence_frames * output_frame_shift
    nonsilence = num_frames > trailing_silence_frames
    for name, rule in cfg.rules():
        if rule_fires(rule, nonsilence, silence, relative_cost, length):
            return name
    return None


def trailing_silence(phone_starts: list[tuple[int, int]], num_frames: int, silence: set[int]) -> int:
    """Output frames at the end of a path spent in silence phones.

    Args:
      phone_starts: ``(frame, phone id)`` where each phone of the path starts, in order.
      num_frames: Frames of the path.
      silence: Ids of the silence phones.

    Returns:
      ``num_frames`` minus the start of the trailing run of silence phones
      (``num_frames`` for a path of silence only, 0 if it ends in speech).
    """
    start = num_frames
    for frame, phone in reversed(phone_starts):
        if phone not in silence:
            break
        start = frame
    else:
        start = 0  # nothing but silence (or no phone at all)
    return num_frames - start
