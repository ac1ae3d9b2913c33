"""What the worker knows after a failed send or a look-up: sent, not sent, or cannot tell."""

from __future__ import annotations

import sys
from enum import Enum

import aiohttp

from statusd.channels.base import TransientError


class Presence(Enum):
    """The answer of a look-up: the post is there, it is not, or nobody can tell yet."""

    FOUND = "found"
    ABSENT = "absent"
    UNKNOWN = "unknown"


# The request never left, or the platform answered it with an error: nothing was posted.
_NOT_SENT: tuple[type[BaseException], ...] = (
    ConnectionRefusedError, aiohttp.ClientConnectorError, aiohttp.ClientResponseError,
)
_CHAIN_LIMIT = 12


def may_have_posted(err: TransientError) -> bool:
    """Whether a failed send may still have made its post.

    Only this attempt is judged: an earlier uncertain attempt stays uncertain
    whatever a later one answers (the caller keeps that).

    A platform's answer (an HTTP status the channel raised from, a rate limit)
    and a refused connection are definite: not posted. Anything that broke
    while the request was on its way (a timeout, a reset, a dropped answer, an
    error we do not know) may have reached the platform.
    """
    if err.retry_after is not None:
        return False
    not_sent = _NOT_SENT + _answers()
    cause = err.__cause__ or err.__context__
    if cause is None:
        return False  # raised from the platform's answer, not from a broken exchange
    for _ in range(_CHAIN_LIMIT):
        if isinstance(cause, not_sent):
            return False
        following = cause.__cause__ or cause.__context__
        if following is None:
            return True
        cause = following
    return True


def _answers() -> tuple[type[BaseException], ...]:
    """tweepy's error for an answer from X, once the X channel has loaded tweepy.

    Looked up, not imported: tweepy and requests cost a daemon without an X channel ~10 MB
    and 75 ms of start-up, and no tweepy error can be in a chain before tweepy is loaded.
    """
    tweepy = sys.modules.get("tweepy")
    return () if tweepy is None else (tweepy.errors.HTTPException,)
