"""The shell's history file: what is typed is kept, but never a URL's credentials or signature (QA s13 #26)."""

from __future__ import annotations

import pytest


def test_history_file_keeps_no_typed_url_secret(tmp_path) -> None:
    """The history written at exit has the URL's user:password and signature as [redacted] (real readline)."""
    readline = pytest.importorskip("readline")
    from bot.front.shell import _save_history

    typed = "snapshots upload x7 https://u:HISTSECRET@example.invalid/a.zip?X-Amz-Signature=HISTSIG&x=1"
    readline.clear_history()
    try:
        readline.add_history("status")
        readline.add_history(typed)
        path = tmp_path / "shell-history"
        _save_history(str(path))
        saved = path.read_text()
    finally:
        readline.clear_history()
    assert "HISTSECRET" not in saved and "HISTSIG" not in saved
    assert "status" in saved
    assert "https://[redacted]@example.invalid/a.zip?X-Amz-Signature=[redacted]&x=1" in saved
