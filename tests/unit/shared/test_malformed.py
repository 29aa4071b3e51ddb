"""Every malformed message the fuzz tests publish is rejected by the consumers' decode and
validation with a SchemaError or a ValidationError: never accepted, never another exception,
never taken for a newer schema version."""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.errors import SchemaError, UpgradeNeededError, ValidationError
from shared.schemas import decode, encode
from shared.validation import validate
from tests.malformed import KINDS, MODELS, good_message, malformed


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_the_good_messages_are_valid(model: type) -> None:
    for n in range(20):
        validate(decode(encode(good_message(model, n)), model))


# `make test` tries 500; FUZZ_EXAMPLES=20000 for the long form.
@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "500")), deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    model=st.sampled_from(MODELS),
    kind=st.sampled_from(KINDS),
)
def test_every_malformed_message_is_rejected_with_a_reason(
    seed: int, model: type, kind: str
) -> None:
    rng = random.Random(seed)  # noqa: S311 (reproducible test data, not secrets)
    raw = malformed(encode(good_message(model, rng.randrange(1000))), model, kind, rng)
    with pytest.raises((SchemaError, ValidationError)) as caught:
        validate(decode(raw, model))
    assert not isinstance(caught.value, UpgradeNeededError)
    assert str(caught.value)
    assert len(str(caught.value)) < 2000  # a reason names the problem, it never echoes megabytes
