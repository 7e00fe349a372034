"""Hostile and broken traffic, derived from a valid event: what a bus carries sooner or later.

    rng = random.Random(7)
    messages = hostile.messages(rng, valid_event_bytes, 10_000)

Twenty kinds: random bytes, truncations, nesting deeper than parsers' stacks, numbers beyond
float64, NaN and Infinity literals, over-long ids, names and values, bad UTF-8, byte order
marks, lone surrogates, a wrong type in any field, floods of model and feature names, oversized
and empty messages, tombstones. Some are valid on purpose (a long string value, a new model):
:func:`driftwire.schemas.accepts` tells which. The reliability tests and
``load_tests.bench_hostile`` send them among valid events.
"""

from __future__ import annotations

import random

import orjson

_FIELDS = ("event_id", "model", "model_version", "timestamp", "features", "prediction", "score")
_WRONG = (1, -2.5, True, None, "x", [], [1, "a"], {}, {"a": {"b": 1}})


def messages(rng: random.Random, valid: bytes, n: int, max_bytes: int = 1_048_576) -> list[bytes | None]:
    """``n`` messages of every kind, derived from the valid event ``valid`` (JSON bytes)."""
    makers = _makers(rng, valid, max_bytes)
    return [rng.choice(makers)() for _ in range(n)]


def _makers(rng: random.Random, valid: bytes, max_bytes: int) -> list:
    doc = orjson.loads(valid)
    features = doc.get("features", {})

    def mutated(**changes) -> bytes:
        return orjson.dumps({**doc, **changes})

    def extra(text: bytes) -> bytes:
        return valid[:-1] + b', "extra": ' + text + b"}"

    def deep() -> bytes:
        depth = rng.choice([900, 1100, 5_000, 20_000])
        opening, closing = rng.choice([(b"[", b"]"), (b'{"a":', b"}")])
        nested = opening * depth + (b"1" if opening == b'{"a":' else b"") + closing * depth
        return nested if rng.random() < 0.3 else extra(nested)

    return [
        lambda: rng.randbytes(rng.randint(0, 200)),
        lambda: valid[: rng.randint(0, len(valid) - 1)],
        deep,
        lambda: valid.replace(b'"model":', b'"big":1e400,"model":', 1),
        lambda: extra(b"9" * rng.randint(300, 400)),
        lambda: extra(rng.choice([b"NaN", b"Infinity", b"-Infinity"])),
        lambda: mutated(event_id="e" * rng.choice([257, 5_000, 500_000])),
        lambda: mutated(model="m" * rng.choice([257, 100_000])),
        lambda: mutated(features={**features, "f" * 300: 1.0}),
        lambda: mutated(features={**features, "note": "v" * rng.randint(1, 50_000)}),
        lambda: b"\xef\xbb\xbf" + valid,
        lambda: valid.replace(b'"model":', b'"\xff\xfe":1,"model":', 1),
        lambda: extra(b'"\\ud800"'),
        lambda: mutated(**{rng.choice(_FIELDS): rng.choice(_WRONG)}),
        lambda: mutated(model=f"flood-{rng.randrange(10**9)}"),
        lambda: mutated(features={f"c{rng.randrange(10**6)}": rng.random() for _ in range(rng.randint(1, 200))}),
        lambda: b"x" * (max_bytes + 1 + rng.randint(0, 10)),
        lambda: None,
        lambda: b"",
        lambda: rng.choice([b"[]", b"42", b'"s"', b"null", b"true"]),
    ]
