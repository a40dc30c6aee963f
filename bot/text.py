"""Marker for translatable strings defined outside a request.

`N_` returns its argument unchanged; `pybabel extract -k N_` collects the
message ids, and the handler translates them into the viewer's language at
render time. This keeps the core free of any request-bound i18n context.
"""


def N_(message: str) -> str:
    return message
