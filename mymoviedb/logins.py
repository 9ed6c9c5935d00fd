"""The admin login's throttle: django-axes' backend, for logins that have a client."""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.http import HttpRequest


class ThrottledLoginBackend(AxesStandaloneBackend):
    """Axes' backend, except that ``authenticate()`` called without a request (a
    management command, a shell, the test client's ``login()``) is passed to the
    next backend instead of refused: there is no client there to throttle."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)  # type: ignore[no-any-return]
