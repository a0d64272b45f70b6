"""The web service: public pages, the transparency log over HTTP, sign-in, and the JSON API.

:func:`create_app` builds the FastAPI application from :class:`~candour.config.Settings`. Routes
are thin: they parse, call a domain function, and render a typed page model with a Jinja2
template built from the GOV.UK Frontend macros. See docs/web.md.
"""

from candour.web.app import create_app
from candour.web.identity import IdentityClaims, IdentityMatcher

__all__ = ["IdentityClaims", "IdentityMatcher", "create_app"]
