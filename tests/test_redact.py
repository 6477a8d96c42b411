"""The one redactor: each secret in every wire form, each token obtained, a bounded memory."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

from doorfix.redact import MAX_TOKENS, SecretRedactor

SECRET = 'se/cr+et=&"\\x'


def test_every_wire_form_of_a_secret_is_redacted() -> None:
    redactor = SecretRedactor()
    redactor.add(SECRET, user="client-id")
    forms = [
        SECRET,
        quote(SECRET, safe=""),
        quote_plus(SECRET),
        json.dumps(SECRET)[1:-1],
        base64.b64encode(f"client-id:{SECRET}".encode()).decode(),
    ]
    for form in forms:
        assert redactor.redact(f"echo: <{form}>") == "echo: <***>", form


def test_tokens_obtained_are_redacted_and_only_the_newest_are_kept() -> None:
    redactor = SecretRedactor()
    redactor.add("configured-secret")
    tokens = [f"token-{n:04d}-abcdefgh" for n in range(MAX_TOKENS + 10)]
    for token in tokens:
        redactor.add_token(token)
    assert redactor.redact(tokens[-1]) == "***"
    assert redactor.redact(tokens[0]) == tokens[0]  # long expired, forgotten
    assert redactor.redact("configured-secret") == "***"  # secrets are never forgotten
    assert redactor.redact("Authorization: Bearer anything.at-all") == "Authorization: Bearer ***"
