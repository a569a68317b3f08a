"""Server-rendered console pages: sign-in and the device-flow approval page (Jinja2, no JS)."""
