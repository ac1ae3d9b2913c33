"""`statusd push keys`: a VAPID key pair, the private key in a 0600 file (never overwritten) or on stdout."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from statusd.channels.webpush_keys import Signer, load
from statusd.commands import main

pytestmark = pytest.mark.unit


class TestKeys:
    """The key written is one py-vapid signs with, and the printed public key is its own."""

    def test_file_mode_and_public_key(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        out = tmp_path / "keys" / "vapid.pem"
        assert main(["push", "keys", "--out", str(out)]) == 0
        assert stat.S_IMODE(out.stat().st_mode) == 0o600
        printed = capsys.readouterr().out
        public = Signer(load(out.read_text()), "mailto:a@b.example").public_key
        assert public in printed
        assert f"vapid_key: {{file: {out.resolve()}}}" in printed
        assert "PRIVATE KEY" not in printed

    def test_never_overwrites(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        out = tmp_path / "vapid.pem"
        out.write_text("in use", encoding="ascii")
        assert main(["push", "keys", "--out", str(out)]) == 2
        assert out.read_text() == "in use"
        assert "exists already" in capsys.readouterr().err

    def test_print_for_a_secret_store(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["push", "keys", "--print"]) == 0
        captured = capsys.readouterr()
        assert captured.out.startswith("-----BEGIN PRIVATE KEY-----")
        public = Signer(load(captured.out), "mailto:a@b.example").public_key
        assert public in captured.err and "{credential: statusd-vapid}" in captured.err

    def test_the_header_is_for_the_origin(self) -> None:
        from statusd.channels.webpush_keys import generate

        signer = Signer(load(generate()[0]), "mailto:it@library.example")
        first = signer.header("https://fcm.googleapis.com", now=1_000_000.0)
        assert first.startswith("vapid t=") and f",k={signer.public_key}" in first
        assert signer.header("https://fcm.googleapis.com", now=1_000_000.0 + 3600) == first
        assert signer.header("https://fcm.googleapis.com", now=1_000_000.0 + 11.5 * 3600) != first

    def test_a_bad_key_is_one_sentence_without_the_key(self) -> None:
        with pytest.raises(ValueError, match="neither a PEM P-256 key") as caught:
            load("not-a-key-secret-value")
        assert "not-a-key-secret-value" not in str(caught.value)
