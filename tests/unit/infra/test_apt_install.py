"""infra.host.apt_install: what a user who is not root is told to install."""

from __future__ import annotations

import pytest

from infra import host
from shared.errors import StackError


def test_a_user_who_is_not_root_is_told_the_command_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(host, "is_root", lambda: False)
    ran: list[object] = []
    monkeypatch.setattr(host, "run", lambda *args, **kwargs: ran.append(args))
    with pytest.raises(StackError) as raised:
        host.apt_install("hot path", ("gcc", "libc6-dev"), "no C compiler to build the hot path")
    assert str(raised.value) == (
        "no C compiler to build the hot path; install it: sudo apt-get install -y gcc libc6-dev"
    )
    assert ran == []
