"""settlewatch console (SPEC §15): the ops desk and merchants in a browser.

Server-rendered pages (FastAPI + Jinja2) that work without JavaScript. The console holds no
privilege of its own and no table: each page calls the services' APIs (``clients/``, one typed
client per service) with the token the person signed in with (``session``), so every scope rule
of the APIs holds unchanged, and an API's refusal is shown as the API worded it. Every word comes
from the message catalogue in zh-CN and en (``i18n``); pages live one per module in ``pages/``.
"""
