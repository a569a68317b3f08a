"""The client side of the ``sluice`` CLI: device-flow login, app listing and streamed runs over
the user API (``/openapi/v1``), as Dify's ``difyctl`` uses it."""
