"""Public, token-authenticated human-input routes: ``/api/form/human_input/…`` and the ``/form/…`` page."""
