"""The minimal console API (``/console/api``) and the console session shared with the pages."""
