"""Small shared pieces: SSE framing, secrets, settings, query files."""

from __future__ import annotations

import random

import pytest

from shared.config import ConfigError, Settings
from shared.errors import ModelNotFound, error_event, error_json
from shared.secrets import SecretBox, SecretKeyError, hash_client_key, new_client_key
from shared.sql import parse_query_file
from shared.sse import SSEDecoder, frame


def test_sse_decoder_handles_split_chunks_and_line_endings() -> None:
    stream = frame(b'{"a":1}') + b"data: x\r\ndata: y\r\n\r\n: comment\n\n" + frame(b"[DONE]")
    for size in (1, 2, 3, 7, len(stream)):
        decoder = SSEDecoder()
        events = []
        for i in range(0, len(stream), size):
            events += decoder.feed(stream[i : i + size])
        assert events == [b'{"a":1}', b"x\ny", b"[DONE]"], size


def test_sse_decoder_fast_path_agrees_with_the_line_by_line_rules() -> None:
    """Providers' usual framing (`data: …` and a blank line) takes a fast path; any
    other framing, even mid-stream, must decode exactly as line by line."""
    rng = random.Random(5)
    pieces = [frame(b'{"i":%d}' % i) for i in range(30)]
    pieces[7:7] = [b"data:no-space\n\n", b": keep-alive\n\n", b"data: a\ndata: b\n\n"]
    pieces[20:20] = [b"event: x\ndata: y\n\n", b"\n\n", frame(b"[DONE]")]
    stream = b"".join(pieces)
    reference = SSEDecoder()
    expected = reference._feed_lines(stream)
    assert len(expected) == 34
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(stream)), rng.randint(1, 40)))
        decoder, events = SSEDecoder(), []
        for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
            events += decoder.feed(stream[start:end])
        assert events == expected


def test_client_keys_are_random_and_only_hashes_are_kept() -> None:
    secret, prefix, digest = new_client_key()
    other, _, _ = new_client_key()
    assert secret != other
    assert secret.startswith(prefix)
    assert digest == hash_client_key(secret)
    assert secret not in digest
    assert len(secret) > 40


def test_secret_box_round_trip_and_wrong_key() -> None:
    box = SecretBox("a" * 32)
    sealed = box.encrypt("sk-upstream")
    assert "sk-upstream" not in sealed
    assert box.decrypt(sealed) == "sk-upstream"
    with pytest.raises(SecretKeyError):
        SecretBox("b" * 32).decrypt(sealed)
    with pytest.raises(ValueError, match="16"):
        SecretBox("short")


def test_settings_from_env() -> None:
    settings = Settings.from_env({"SLUICE_DATA_PLANE_PORT": "9000", "SLUICE_ADMIN_TOKEN": "t"})
    assert settings.data_plane_port == 9000
    assert settings.admin_token == "t"
    with pytest.raises(ConfigError, match="SLUICE_DATA_PLANE_PORT"):
        Settings.from_env({"SLUICE_DATA_PLANE_PORT": "eighty"})
    with pytest.raises(ConfigError, match="SLUICE_SECRET_KEY"):
        Settings().require("secret_key")


def test_error_rendering() -> None:
    exc = ModelNotFound("no such model", param="model")
    assert error_json(exc) == (
        b'{"error":{"message":"no such model","type":"invalid_request_error",'
        b'"param":"model","code":"model_not_found"}}'
    )
    assert error_event(exc) == b"data: " + error_json(exc) + b"\n\n"


def test_query_files() -> None:
    text = "-- header\n-- name: a\nSELECT 1;\n\n-- name: b\nSELECT 2\n"
    assert parse_query_file(text) == {"a": "SELECT 1", "b": "SELECT 2"}
    with pytest.raises(ValueError, match="twice"):
        parse_query_file("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;")
