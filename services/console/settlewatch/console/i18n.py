"""The console's words in zh-CN and en (SPEC §15). Every text a page shows comes from the message
catalogue (Babel's gettext: ``locale/zh_CN/LC_MESSAGES/console.po``; the English words are the
message ids) or, for the values the APIs return (statuses, kinds, history), from
common.catalogue, the same names the evidence PDF and the alerts use.

A person's language is the ``sw_lang`` cookie the switch sets, else the first of zh-CN and en
their browser's ``Accept-Language`` names, else zh-CN.
"""

from __future__ import annotations

import gettext
from collections.abc import Callable
from datetime import datetime
from io import BytesIO
from pathlib import Path
from typing import Any, get_args
from zoneinfo import ZoneInfo

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from settlewatch.common import catalogue
from settlewatch.common.events import profile_default
from settlewatch.common.findings import KINDS
from settlewatch.common.money import Locale, money

__all__ = ["LANG_COOKIE", "LOCALES", "Pages", "choose_locale", "translations"]

LOCALES: tuple[Locale, ...] = get_args(Locale)
LANG_COOKIE = "sw_lang"
_CATALOGUES = Path(__file__).parent / "locale"


def translations(locale: Locale) -> gettext.NullTranslations:
    """The catalogue of `locale`, compiled from its .po file (English: the ids themselves)."""
    if locale == "en":
        return gettext.NullTranslations()
    po = _CATALOGUES / locale.replace("-", "_") / "LC_MESSAGES" / "console.po"
    with po.open("rb") as source:
        catalog = read_po(source, locale=locale.replace("-", "_"))
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def choose_locale(request: Request) -> Locale:
    chosen = request.cookies.get(LANG_COOKIE)
    for locale in LOCALES:
        if chosen == locale:
            return locale
    wanted = []
    for part in request.headers.get("accept-language", "").split(","):
        tag, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            continue
        wanted.append((weight, tag.lower()))
    for _, tag in sorted(wanted, key=lambda w: -w[0]):
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return "zh-CN"


class Pages:
    """The templates, one Jinja environment per language (autoescaped: a bank's or a
    merchant's text is shown as text)."""

    def __init__(self) -> None:
        self._translations = {locale: translations(locale) for locale in LOCALES}
        self._envs = {locale: self._environment(locale) for locale in LOCALES}

    def gettext(self, request: Request) -> Callable[[str], str]:
        """The words of the request's language, for what a page sends but does not render
        (an export's headers)."""
        return self._translations[choose_locale(request)].gettext

    def render(
        self, request: Request, template: str, context: dict[str, Any], status: int = 200
    ) -> HTMLResponse:
        locale = choose_locale(request)
        page = self._envs[locale].get_template(template)
        context = {"request": request, "locale": locale, **context}
        return HTMLResponse(page.render(context), status_code=status)

    def _environment(self, locale: Locale) -> Environment:
        env = Environment(
            loader=PackageLoader("settlewatch.console", "templates"),
            autoescape=select_autoescape(default=True),
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.install_gettext_translations(self._translations[locale], newstyle=True)  # type: ignore[attr-defined]
        desk_zone = ZoneInfo(profile_default("timezone"))

        def when(value: str | None, zone: str | None = None) -> str:
            """An API time in the merchant's zone (the desk's by default), as the desk writes
            it: 2026-12-04 18:30."""
            if not value:
                return ""
            local = datetime.fromisoformat(value).astimezone(ZoneInfo(zone) if zone else desk_zone)
            return f"{local:%Y-%m-%d %H:%M}"

        env.filters["money"] = lambda minor, currency: money(minor, currency, locale)
        env.filters["when"] = when
        env.globals["payment_status"] = lambda v: catalogue.say(
            catalogue.PAYMENT_STATUSES, v, locale
        )
        env.globals["payment_kind"] = lambda v: catalogue.say(catalogue.PAYMENT_KINDS, v, locale)
        env.globals["history"] = lambda e: catalogue.history_text(e["code"], e["args"], locale)
        env.globals["payment_statuses"] = tuple(catalogue.PAYMENT_STATUSES)
        env.globals["alert_status"] = lambda v: catalogue.say(catalogue.ALERT_STATUSES, v, locale)
        env.globals["payout_status"] = lambda v: catalogue.say(catalogue.PAYOUT_STATUSES, v, locale)
        env.globals["finding_name"] = lambda v: KINDS[v].title[locale] if v in KINDS else v
        env.globals["webhook_type"] = lambda v: catalogue.webhook_type(v, locale)
        env.globals["desk_kind"] = lambda v: catalogue.say(catalogue.DESK_KINDS, v, locale)
        env.globals["desk_status"] = lambda v: catalogue.say(catalogue.DESK_STATUSES, v, locale)
        env.globals["desk_action"] = lambda v: catalogue.say(catalogue.DESK_ACTIONS, v, locale)
        return env
