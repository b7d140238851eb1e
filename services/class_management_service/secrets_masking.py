"""Passwords out of URLs: the one function log lines and error messages go through."""

from __future__ import annotations

import re

# scheme://user:password@ -> scheme://user:***@ for any scheme (postgresql+asyncpg, redis,
# ...). The password runs to the last '@' of its word: a password with an unescaped '@' is
# masked whole, and two URLs in one word are masked too much rather than too little.
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s'\"]*:)[^\s'\"]*@")
MASK = "***"


def mask_url_passwords(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``."""
    if "://" not in text:  # the usual case, at the cost of one scan
        return text
    return _URL_PASSWORD.sub(rf"\g<1>{MASK}@", text)
