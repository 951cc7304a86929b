"""Ids are opaque and random: the prefix, then base32 characters drawn uniformly."""

from __future__ import annotations

from collections import Counter

from findesk.kit.ids import MESSAGE, new_id

ALPHABET = set("0123456789abcdefghjkmnpqrstvwxyz")


def test_an_id_is_its_prefix_and_twenty_base32_characters() -> None:
    made = [new_id(MESSAGE) for _ in range(20_000)]
    assert len(set(made)) == len(made)
    for value in made[:100]:
        prefix, _, body = value.partition("_")
        assert prefix == "msg" and len(body) == 20 and set(body) <= ALPHABET
    assert len(new_id("w", 6)) == len("w_") + 6


def test_every_character_is_drawn_as_often_as_the_others() -> None:
    """Each of the 32 characters, at each position, within 20% of its share: a bias (a
    modulo, bits left unused) would show as some characters never or too often drawn."""
    made = [new_id("x") for _ in range(32_000)]
    for position in (2, 11, 21):
        counts = Counter(value[position] for value in made)
        assert set(counts) == ALPHABET
        assert all(800 <= n <= 1200 for n in counts.values()), (position, counts)
